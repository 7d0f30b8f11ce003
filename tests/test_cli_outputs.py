"""What the command line writes, and what it refuses before any work (the session-21 new-user walkthrough):
existing outputs are replaced only with --overwrite, -o is checked against the kind of input, options are
checked before a model loads, a failed run leaves no empty folder, and the help names every choice."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from fewcolor.cli import main
from fewcolor.io.image import read_rgb
from fewcolor.io.video import is_clip
from fewcolor.methods.options import InferenceOptionError
from fewcolor.methods.registry import available_methods, build_method, save_method
from helpers import error_line as _error_line
from helpers import run_cli as _cli


def _picture(path: Path, seed: int = 0, size: tuple[int, int] = (24, 20)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = (np.random.default_rng(seed).random((size[1], size[0], 3)) * 255).astype(np.uint8)
    Image.fromarray(arr).save(path)
    return path


def _gif(path: Path, frames: int = 3) -> Path:
    images = [Image.fromarray(np.full((16, 16, 3), 40 * i + 20, np.uint8)) for i in range(frames)]
    images[0].save(path, save_all=True, append_images=images[1:], duration=100)
    return path


@pytest.fixture()
def tiny_model(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return save_method(build_method("unet", "tiny"), tmp_path / "tiny.safetensors")


@pytest.fixture()
def few(tmp_path: Path) -> Path:
    for i in range(2):
        _picture(tmp_path / "few" / f"p{i}.png", seed=i)
    return tmp_path / "few"


@pytest.fixture()
def no_model_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refusal that must come before the model loads fails the test if it loads."""
    from fewcolor.pipeline import Colorizer

    monkeypatch.setattr(Colorizer, "from_checkpoint", classmethod(lambda *a, **k: pytest.fail("model loaded")))


# ------------------------------------------------------------------ 1: never silently replace a file
def test_colorize_refuses_existing_outputs_before_loading_until_overwrite(tmp_path, few, tiny_model, monkeypatch):
    out = tmp_path / "out4"
    mine = _picture(out / "p0.png", seed=9)  # a file with an output's name
    before = mine.read_bytes()
    with monkeypatch.context() as m:
        from fewcolor.pipeline import Colorizer

        m.setattr(Colorizer, "from_checkpoint", classmethod(lambda *a, **k: pytest.fail("model loaded")))
        code, text = _cli(["colorize", tiny_model, few, "-o", out])
        line = _error_line(text)
        assert code == 2 and str(out / "p0.png") in line and "1 of the 2" in line and "--overwrite" in line
    assert mine.read_bytes() == before and not (out / "p1.png").exists()
    code, text = _cli(["colorize", tiny_model, few, "-o", out, "--overwrite"])
    assert code == 0, text
    assert mine.read_bytes() != before and (out / "p1.png").is_file()
    code, text = _cli(["colorize", tiny_model, few, "-o", out])  # the same command again
    assert code == 2 and "2 of the 2" in _error_line(text)


def test_adapt_never_replaces_an_existing_model_unless_told(tmp_path, few, tiny_model):
    keep = tmp_path / "keep.safetensors"
    keep.write_bytes(b"a model that took hours")
    for args in (["adapt", "exemplar", "--preset", "tiny", "--data", few, "-o", keep],
                 ["adapt", tiny_model, "--data", few, "-o", keep, "--steps", 0]):
        code, text = _cli(args)
        assert code == 2 and f"-o {keep} exists" in _error_line(text) and "--overwrite" in _error_line(text)
        assert keep.read_bytes() == b"a model that took hours"
    code, text = _cli(["adapt", "exemplar", "--preset", "tiny", "--data", few, "-o", keep, "--overwrite"])
    assert code == 0, text
    assert keep.read_bytes() != b"a model that took hours"


def test_clip_outputs_are_not_replaced_and_a_replaced_frame_folder_keeps_no_stale_frame(tmp_path, tiny_model):
    clip = _gif(tmp_path / "clip.gif")
    base = tmp_path / "base.gif"
    base.write_bytes(b"an earlier clip")
    code, text = _cli(["colorize", tiny_model, clip, "-o", base])
    assert code == 2 and f"-o {base} exists" in _error_line(text) and base.read_bytes() == b"an earlier clip"
    frames = tmp_path / "frames"
    for i in range(5):  # an earlier, longer clip
        _picture(frames / f"frame_{i:05d}.png", seed=i)
    code, text = _cli(["colorize", tiny_model, clip, "-o", frames])
    assert code == 2 and "frame_00000.png exists" in _error_line(text) and "and 4 more" in _error_line(text)
    code, text = _cli(["colorize", tiny_model, clip, "-o", frames, "--overwrite"])
    assert code == 0, text
    assert sorted(p.name for p in frames.iterdir()) == [f"frame_{i:05d}.png" for i in range(3)]


def test_other_commands_refuse_existing_outputs_before_any_work(tmp_path, few, tiny_model):
    onnx = tmp_path / "x.onnx"
    onnx.write_bytes(b"graph")
    memo = tmp_path / "memo.safetensors"
    memo.write_bytes(b"a model")
    page = tmp_path / "p.html"
    page.write_text("mine")
    result = tmp_path / "r.json"
    result.write_text("{}")
    for name in ("metrics.json", "index.html"):
        (tmp_path / "done" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "done" / name).write_text("mine")
    truth = tmp_path / "truth"
    _picture(truth / "p0.png")
    cases = [
        (["export", tiny_model, "-o", onnx], f"-o {onnx} exists"),
        (["memory", "inspect", memo, few / "p0.png", "-o", page], f"-o {page} exists"),
        (["paper-eval", "retrieval", "--data", few, "-o", result, "--episodes", 1], f"-o {result} exists"),
        (["evaluate", "--pred", few, "--truth", truth, "-o", tmp_path / "done", "--no-fid"], "metrics.json exists"),
        (["cluster", few, "--k", 1, "-o", tmp_path / "done"], "index.html exists"),
    ]
    for args, needle in cases:
        code, text = _cli(args)
        assert code == 2 and needle in _error_line(text) and "--overwrite" in _error_line(text), (args, text)
    assert onnx.read_bytes() == b"graph" and page.read_text() == "mine" and result.read_text() == "{}"
    # a page's image folder alone counts too: its images would be replaced
    for folder in ("q_files", "only/report_files", "only/index_files"):
        (tmp_path / folder).mkdir(parents=True)
    cases = [
        (["memory", "inspect", memo, few / "p0.png", "-o", tmp_path / "q.html"], "q_files exists"),
        (["evaluate", "--pred", few, "--truth", truth, "-o", tmp_path / "only", "--no-fid"], "report_files exists"),
        (["cluster", few, "--k", 1, "-o", tmp_path / "only"], "index_files exists"),
    ]
    for args, needle in cases:
        code, text = _cli(args)
        assert code == 2 and needle in _error_line(text) and "--overwrite" in _error_line(text), (args, text)


# ------------------------------------------------------------------ 2, 3, 6: -o and the kind of input
def test_a_folder_of_frames_with_a_clip_output_points_to_clip(tmp_path, few, tiny_model, no_model_load):
    for name in ("x.mp4", "x.gif"):
        code, text = _cli(["colorize", tiny_model, few, "-o", tmp_path / name])
        assert code == 2 and "--clip" in _error_line(text) and "names a clip" in _error_line(text)
        assert not (tmp_path / name).exists()


def test_a_clip_among_images_must_be_given_alone(tmp_path, few, tiny_model, no_model_load):
    clip = _gif(tmp_path / "clip.gif")
    code, text = _cli(["colorize", tiny_model, clip, few / "p0.png", "-o", tmp_path / "mix"])
    assert code == 2 and "a clip is colorized alone" in _error_line(text) and str(clip) in _error_line(text)
    assert "skipped" not in text and not (tmp_path / "mix").exists()
    still = tmp_path / "still.gif"  # a still GIF is an image among images
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(still)
    assert is_clip(clip) and not is_clip(still)


def test_a_still_gif_alone_is_an_image(tmp_path, tiny_model):
    still = tmp_path / "still.gif"
    Image.fromarray(np.full((18, 30, 3), 90, np.uint8)).save(still)
    code, text = _cli(["colorize", tiny_model, still, "-o", tmp_path / "still.png"])
    assert code == 0, text
    assert read_rgb(tmp_path / "still.png").shape == (3, 18, 30)


def test_one_image_can_be_written_to_one_file(tmp_path, few, tiny_model):
    src = _picture(tmp_path / "grey" / "image.png", size=(30, 18))
    code, text = _cli(["colorize", tiny_model, src, "-o", tmp_path / "result.png"])
    assert code == 0, text
    assert read_rgb(tmp_path / "result.png").shape == (3, 18, 30)
    assert "colorized 1 of 1 image into" in text  # singular
    code, text = _cli(["colorize", tiny_model, src, "-o", src])
    assert code == 2 and "is an input" in _error_line(text)
    code, text = _cli(["colorize", tiny_model, src, "-o", tmp_path / "result.pgm"])
    assert code == 2 and "cannot write .pgm" in _error_line(text)
    code, text = _cli(["colorize", tiny_model, few, "-o", tmp_path / "r.png"])  # a folder: -o is a folder
    assert code == 2 and "output folder" in _error_line(text) and not (tmp_path / "r.png").exists()


# ------------------------------------------------------------------ 4: options before the model, no empty folder
def test_option_values_are_checked_before_the_model_loads(tmp_path, few, tiny_model, no_model_load):
    out9 = tmp_path / "out9"
    code, text = _cli(["colorize", tiny_model, few / "p0.png", "-o", out9, "--fallback", "foo"])
    line = _error_line(text)
    assert code == 2 and "--fallback" in line and "attention" in line and "existing file" in line
    assert not out9.exists()
    clip = _gif(tmp_path / "clip.gif")
    key = _picture(tmp_path / "key.png")
    code, text = _cli(["colorize", tiny_model, clip, "-o", tmp_path / "o.gif", "--keyframe", key])
    line = _error_line(text)
    assert code == 2 and "--keyframe" in line and "keyframes need an exemplar model" in line and "unet" in line
    exemplar = save_method(build_method("exemplar", "tiny"), tmp_path / "ex.safetensors")
    grey_key = tmp_path / "grey_key.png"
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(grey_key)
    code, text = _cli(["colorize", exemplar, clip, "-o", tmp_path / "o.gif", "--keyframe", grey_key])
    line = _error_line(text)
    assert code == 2 and "--keyframe" in line and f"{grey_key} looks grey" in line
    assert not (tmp_path / "o.gif").exists()


def test_a_failed_run_leaves_no_empty_output_folder(tmp_path, tiny_model):
    notes = tmp_path / "mixed" / "notes.png"
    notes.parent.mkdir()
    notes.write_text("not an image")
    code, text = _cli(["colorize", tiny_model, notes, "-o", tmp_path / "o12" / "sub"])
    assert code == 1 and "skipped" in text
    assert not (tmp_path / "o12").exists()


# ------------------------------------------------------------------ 5: training-free methods
@pytest.mark.parametrize(("name", "why"), [("exemplar", "training-free"), ("lut", "one pass")])
def test_adapt_refuses_steps_where_they_would_be_ignored_and_reports_truthfully(tmp_path, few, name, why):
    new = ["adapt", name, "--preset", "tiny", "--data", few, "-o", tmp_path / "a.safetensors", "--steps", 5]
    code, text = _cli(new)
    assert code == 2 and "--steps" in _error_line(text) and "for adapting a checkpoint" not in _error_line(text)
    code, text = _cli([*new, "--device", "cpu"])
    assert code == 2 and "for adapting a checkpoint" in _error_line(text)  # --device applies to a checkpoint of it
    model = save_method(build_method(name, "tiny"), tmp_path / "m.safetensors")
    code, text = _cli(["adapt", model, "--data", few, "-o", tmp_path / "k.safetensors", "--steps", 2])
    assert code == 2 and "--steps" in _error_line(text) and why in _error_line(text)
    assert not (tmp_path / "k.safetensors").exists()
    code, text = _cli(["adapt", model, "--data", few, "-o", tmp_path / "k.safetensors"])
    assert code == 0, text
    last = text.strip().splitlines()[-1]
    assert f"{why}: no steps" in last and " steps, lr" not in last and "own mechanism" in last


# ------------------------------------------------------------------ 7: help
def _all_commands(group: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    import click

    for name, cmd in group.commands.items():
        yield f"{prefix}{name}", cmd
        if isinstance(cmd, click.Group):
            yield from _all_commands(cmd, f"{prefix}{name} ")


def test_top_level_help_has_whole_summaries():
    for name, cmd in _all_commands(main):
        assert cmd.short_help and cmd.short_help.endswith("."), name
    for group in ([], ["data"], ["memory"], ["paper-eval"]):
        res = CliRunner().invoke(main, [*group, "--help"], terminal_width=80)
        assert res.exit_code == 0, group
        listed = res.output.split("Commands:", 1)[1]
        assert not any(line.rstrip().endswith("...") for line in listed.splitlines()), res.output
        flat = " ".join(listed.split())
        cmds = main.commands if not group else main.commands[group[0]].commands
        for cmd in cmds.values():
            assert " ".join(cmd.short_help.split()) in flat, (group, cmd.name)


def test_help_lists_registered_choices_and_plain_seeds():
    text = " ".join(CliRunner().invoke(main, ["train", "--help"]).output.split())
    assert all(name in text.split("--method", 1)[1] for name in available_methods())
    presets = available_methods()["exemplar"].presets
    assert "exemplar: " + ", ".join(sorted(presets)) in text
    assert "9223372036854775807" not in text and "--seed INTEGER" in text
    colorize = " ".join(CliRunner().invoke(main, ["colorize", "--help"]).output.split())
    assert "--fallback [attention|stats|bundled|FILE]" in colorize
    evaluate = " ".join(CliRunner().invoke(main, ["evaluate", "--help"]).output.split())
    # evaluate's help stays fast (no registry import, tests/test_cli_start.py) and says where they are listed
    assert "fewcolor methods NAME" in evaluate and "fewcolor colorize" in evaluate
    code, text = _cli(["train", "--method", "unet", "--data", ".", "-o", "r", "--seed", -1])
    assert code == 2 and "--seed" in _error_line(text) and "2^63" in _error_line(text)


# ------------------------------------------------------------------ 8, 9
def test_inside_input_refusal_is_one_message_for_folders_and_files(tmp_path, few, tiny_model):
    code, by_folder = _cli(["colorize", tiny_model, few, "-o", few])
    code2, by_file = _cli(["colorize", tiny_model, few / "p0.png", "-o", few])
    assert code == code2 == 2
    assert _error_line(by_folder) == _error_line(by_file) and "--inside-input" in _error_line(by_file)


def test_a_misspelt_method_gets_a_suggestion(tmp_path, few):
    code, text = _cli(["adapt", "exemplr", "--data", few, "-o", tmp_path / "m.safetensors"])
    assert code == 2 and "did you mean exemplar?" in _error_line(text)
    code, text = _cli(["train", "--method", "exemplr", "--data", few, "-o", tmp_path / "run"])
    assert code == 2 and "did you mean exemplar?" in _error_line(text) and "--method" in _error_line(text)


def test_the_last_line_counts_the_skipped_inputs(tmp_path, tiny_model):
    folder = tmp_path / "mixed"
    _picture(folder / "ok.png")
    (folder / "notes.png").write_text("not an image")
    code, text = _cli(["colorize", tiny_model, folder, "-o", tmp_path / "out"])
    assert code == 0
    assert re.fullmatch(r"colorized 1 of 2 images into .*out; 1 skipped \(above\)", text.strip().splitlines()[-1])


# ------------------------------------------------------------------ what the walkthrough's other fixes print
def test_a_grey_reference_is_refused_naming_the_file(tmp_path, few):
    model = save_method(build_method("exemplar", "tiny"), tmp_path / "ex.safetensors")
    grey = tmp_path / "grey.png"
    Image.fromarray(np.full((20, 24, 3), 128, np.uint8)).save(grey)
    out = tmp_path / "out"
    code, text = _cli(["colorize", model, few / "p0.png", "-o", out, "--reference", grey])
    assert code == 2 and "looks grey" in _error_line(text) and f"--reference {grey}" in _error_line(text)
    assert not out.exists()  # nothing coloured, no folder left


def test_evaluate_says_fid_on_few_images_is_unreliable(tmp_path, few):
    pytest.importorskip("scipy")
    pred = tmp_path / "pred"
    pred.mkdir()
    for f in few.iterdir():
        (pred / f.name).write_bytes(f.read_bytes())
    code, text = _cli(["evaluate", "--pred", pred, "--truth", few, "-o", tmp_path / "rep", "--size", 32])
    if code != 0 and "Inception" in text:
        pytest.skip("no Inception weights for FID here")
    assert code == 0, text
    assert re.search(r"FID \S+ \(unreliable: 2 images\)", text), text


def test_a_grey_reference_is_refused_for_memopainter_too():
    # every image-rgb option is a colour source: the declared check refuses a grey one, whatever the method
    method = build_method("memopainter", "tiny")
    grey = torch.full((3, 16, 16), 0.5)
    with pytest.raises(InferenceOptionError, match=r"memopainter: the reference image looks grey"):
        method.check_options({"reference": grey})
    method.check_options({"reference": torch.rand(3, 16, 16)})  # a colour one passes



def test_an_untrained_memopainter_is_one_line_before_any_image(tmp_path):
    model = save_method(build_method("memopainter", "tiny"), tmp_path / "memo.safetensors")
    src = _picture(tmp_path / "in" / "image.png", size=(32, 32))
    code, text = _cli(["colorize", model, src, "-o", tmp_path / "out"])
    assert code == 2 and "memory is empty" in _error_line(text) and "Traceback" not in text
    assert not (tmp_path / "out").exists()
    # a palette that does not parse: one line before any image, naming the entry
    code, text = _cli(["colorize", model, src, "-o", tmp_path / "out", "--palette", "#e03c31,notacolor"])
    assert code == 2 and "palette: entry 2 'notacolor' is not a hex colour" in _error_line(text)
    assert not (tmp_path / "out").exists()
    # memory inspect takes no palette: its message must not offer one
    code, text = _cli(["memory", "inspect", model, src, "-o", tmp_path / "page.html"])
    line = _error_line(text)
    assert code == 2 and "memory is empty" in line and "nothing to inspect" in line and "palette" not in line
    assert not (tmp_path / "page.html").exists()


def test_one_image_swept_into_a_file_name_says_which_files(tmp_path):
    torch.manual_seed(0)
    method = build_method("memopainter", "tiny", {"memory_slots": 2})
    for slot in range(2):  # two distinct colours in memory: two variants to sweep
        method.memory.write(slot, torch.randn(method.memory.keys.shape[1]), torch.rand(method.memory.values.shape[1]))
    model = save_method(method, tmp_path / "memo.safetensors")
    src = _picture(tmp_path / "in" / "image.png", size=(32, 32))
    code, text = _cli(["colorize", model, src, "-o", tmp_path / "out.png", "--variants", 2])
    assert code == 0, text
    assert (tmp_path / "out_v1.png").exists() and (tmp_path / "out_v2.png").exists()
    assert f"into {tmp_path / 'out_v1.png'} ... {tmp_path / 'out_v2.png'}" in text


def test_a_file_appearing_during_colorize_is_kept_and_reported(tmp_path, tiny_model, monkeypatch):
    from fewcolor.pipeline import Colorizer

    src = _picture(tmp_path / "in" / "image.png", size=(32, 32))
    out = tmp_path / "out.png"
    real = Colorizer.colorize

    def colorize_while_another_program_writes(self, *args, **kwargs):
        out.write_text("another program's file")  # after the up-front check, before the write
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Colorizer, "colorize", colorize_while_another_program_writes)
    code, text = _cli(["colorize", tiny_model, src, "-o", out])
    assert code == 1 and "skipped" in text and f"{out} exists; it is kept" in text
    assert out.read_text() == "another program's file"
