import json
import os

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from fewcolor.cli import main
from fewcolor.io.image import read_rgb
from fewcolor.methods.registry import build_method, save_method


@pytest.fixture()
def tiny_model(tmp_path):
    torch.manual_seed(0)
    return save_method(build_method("unet", "tiny"), tmp_path / "tiny.safetensors")


def test_methods_and_info(tiny_model):
    runner = CliRunner()
    res = runner.invoke(main, ["methods"])
    assert res.exit_code == 0 and "unet" in res.output
    res = runner.invoke(main, ["info", str(tiny_model)])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["method"] == "unet"


def _all_commands(group, prefix=""):
    import click

    for name, cmd in group.commands.items():
        yield f"{prefix}{name}", cmd
        if isinstance(cmd, click.Group):
            yield from _all_commands(cmd, f"{prefix}{name} ")


def test_help_explains_every_option():
    import click

    runner = CliRunner()
    for name, cmd in _all_commands(main):
        assert cmd.help, f"`fewcolor {name}` has no help text"
        for param in cmd.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert param.help, f"`fewcolor {name}` option {param.opts} has no help"
        res = runner.invoke(main, [*name.split(), "--help"])
        assert res.exit_code == 0, name


def test_colorize_large_photo_keeps_size(tmp_path, tiny_model):
    skimage_data = pytest.importorskip("skimage.data")
    photo = Image.fromarray(skimage_data.astronaut()).resize((1024, 768))
    src = tmp_path / "in" / "astronaut.jpg"
    src.parent.mkdir()
    photo.save(src, quality=95)
    res = CliRunner().invoke(main, ["colorize", str(tiny_model), str(src), "-o", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    out = read_rgb(tmp_path / "out" / "astronaut.png")
    assert out.shape == (3, 768, 1024)


def test_colorize_folder_skips_corrupt_file_and_keeps_layout(tmp_path, tiny_model):
    src = tmp_path / "photos"
    (src / "sub").mkdir(parents=True)
    for name in ["a.png", "sub/b.jpg"]:
        Image.fromarray((np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)).save(src / name)
    (src / "sub" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    res = CliRunner().invoke(main, ["colorize", str(tiny_model), str(src), "-o", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out" / "a.png").exists() and (tmp_path / "out" / "sub" / "b.png").exists()
    assert "colorized 2 of 3" in res.output
    assert "broken.jpg" in res.output  # reported (stderr is mixed into output by CliRunner)


def test_colorize_rejects_unknown_option_for_method(tmp_path, tiny_model):
    src = tmp_path / "a.png"
    Image.new("RGB", (16, 16), (200, 10, 10)).save(src)
    res = CliRunner().invoke(
        main, ["colorize", str(tiny_model), str(src), "-o", str(tmp_path / "o"), "--temperature", "0.2"]
    )
    assert res.exit_code != 0 and "does not take inference option" in res.output


def test_train_then_resume_from_cli(tmp_path, emoji_dir):
    runner = CliRunner()
    args = [
        "train",
        "--method",
        "unet",
        "--preset",
        "tiny",
        "--data",
        str(emoji_dir),
        "-o",
        str(tmp_path / "run"),
        "--batch-size",
        "4",
        "--checkpoint-every",
        "2",
        "--sample-every",
        "0",
    ]
    res = runner.invoke(main, [*args, "--steps", "2"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, [*args, "--steps", "2"])
    assert res.exit_code != 0 and "--resume" in res.output
    res = runner.invoke(main, [*args, "--steps", "4", "--resume"])
    assert res.exit_code == 0, res.output
    assert "for 4 steps" in res.output


def test_train_minutes_stops_saves_and_resumes(tmp_path, emoji_dir):
    # A time budget far shorter than one step: the run stops after its first step, saves a loadable model and
    # says how to go on; --resume continues towards --steps.
    args = ["train", "--method", "unet", "--preset", "tiny", "--data", str(emoji_dir), "-o", str(tmp_path / "run"),
            "--batch-size", "2", "--sample-every", "0", "--steps", "3"]
    res = CliRunner().invoke(main, [*args, "--minutes", "0.00001"])
    assert res.exit_code == 0, res.output
    assert "for 1 steps" in res.output and "stopped by --minutes" in res.output
    assert (tmp_path / "run" / "model.safetensors").is_file()
    res = CliRunner().invoke(main, [*args, "--resume", "--minutes", "100"])  # reaches --steps well within it
    assert res.exit_code == 0, res.output
    assert "for 3 steps" in res.output and "stopped by --minutes" not in res.output


def test_train_val_writes_the_held_out_curve_and_refuses_a_folder_inside_the_data(tmp_path, emoji_dir):
    args = ["train", "--method", "unet", "--preset", "tiny", "--data", str(emoji_dir), "-o", str(tmp_path / "run"),
            "--batch-size", "2", "--sample-every", "0", "--steps", "3"]
    res = CliRunner().invoke(main, [*args, "--val", str(emoji_dir)])
    assert res.exit_code == 2 and "--val" in res.output and "share images" in res.output
    res = CliRunner().invoke(main, [*args, "--val", str(emoji_dir.parent)])  # a folder holding the data
    assert res.exit_code == 2 and "share images" in res.output
    val = tmp_path / "val"
    val.mkdir()
    for i, img in enumerate(sorted(emoji_dir.rglob("*.png"))[:3]):
        (val / f"{i}.png").write_bytes(img.read_bytes())
    (val / "broken.png").write_bytes(b"not an image")
    res = CliRunner().invoke(main, [*args, "--val", str(val), "--val-every", "2", "--val-images", "4"])
    assert res.exit_code == 0, res.output
    assert "skipped" in res.output and "broken.png" in res.output
    lines = (tmp_path / "run" / "validation.csv").read_text().splitlines()
    assert lines[0].split(",") == ["step", "delta_cf_abs", "delta_e2000", "lpips", "psnr"]
    assert [line.split(",")[0] for line in lines[1:]] == ["2", "3"]
    res = CliRunner().invoke(main, ["train", "--method", "exemplar", "--preset", "tiny", "--data", str(emoji_dir),
                                    "-o", str(tmp_path / "ex"), "--val", str(val)])
    assert res.exit_code == 2 and "learns nothing in steps" in res.output


def test_train_without_preset_on_cpu_uses_the_cpu_preset(tmp_path, emoji_dir):
    res = CliRunner().invoke(main, ["train", "--method", "unet", "--data", str(emoji_dir), "-o", str(tmp_path / "r"),
                                    "--device", "cpu", "--steps", "1", "--batch-size", "2", "--sample-every", "0",
                                    "--size", "64"])
    assert res.exit_code == 0, res.output
    assert "using the `cpu` preset" in res.output and "--preset paper" in res.output
    from fewcolor.io.checkpoint import read_metadata

    config = read_metadata(tmp_path / "r" / "model.safetensors")["config"]
    assert config["base_channels"] == build_method("unet", "cpu").config.base_channels


def test_train_takes_the_presets_batch_size(tmp_path, emoji_dir):
    # fabbri-g carries Fabbri & Islam's batch 32 (no --batch-size given); --batch-size still wins.
    import json

    common = ["train", "--method", "cgan", "--preset", "fabbri-g", "--set", "cic_widths=[4,8,8,8,8,8,8,4]",
              "--size", "32", "--data", str(emoji_dir), "--steps", "1", "--sample-every", "0"]
    res = CliRunner().invoke(main, [*common, "-o", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "a" / "run.json").read_text())["options"]["batch_size"] == 32
    res = CliRunner().invoke(main, [*common, "-o", str(tmp_path / "b"), "--batch-size", "2"])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "b" / "run.json").read_text())["options"]["batch_size"] == 2


# ------------------------------------------------- the CLI audit: outputs, option files, conflicting options
def _cli(args):
    res = CliRunner().invoke(main, [str(a) for a in args])
    unexpected = res.exception is not None and not isinstance(res.exception, SystemExit)
    assert not unexpected, f"{args}: uncaught {res.exception!r}\n{res.output}"
    assert "Traceback" not in res.output, res.output
    return res.exit_code, res.output


def _error_line(output):
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, output
    return errors[0]


def _picture(path, seed=0, size=(24, 20)):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = (np.random.default_rng(seed).random((size[1], size[0], 3)) * 255).astype(np.uint8)
    Image.fromarray(arr).save(path)
    return path


@pytest.fixture()
def few(tmp_path):
    """Two small colour pictures in a folder of their own."""
    for i in range(2):
        _picture(tmp_path / "few" / f"p{i}.png", seed=i)
    return tmp_path / "few"


def _no_training(monkeypatch):
    """Stub the training loop: these tests are about what the CLI refuses before any training."""
    import fewcolor.train.loop as loop

    calls = []
    monkeypatch.setattr(loop, "train", lambda *a, **k: calls.append(a) or pytest.fail("trained"))
    return calls


def test_memory_inspect_never_overwrites_its_inputs(tmp_path):
    model = tmp_path / "memo.safetensors"
    model.write_bytes(b"a model")
    query = _picture(tmp_path / "q.png")
    before = query.read_bytes()
    for out in (query, model, tmp_path / "page"):
        code, out_text = _cli(["memory", "inspect", model, query, "-o", out])
        assert code == 2 and "-o" in _error_line(out_text) and ".html" in _error_line(out_text)
    assert query.read_bytes() == before and model.read_bytes() == b"a model"
    code, out_text = _cli(["memory", "inspect", "base", query, "-o", tmp_path / "p.html"])
    assert code == 2 and "needs a memopainter checkpoint" in _error_line(out_text)


def test_colorize_inside_input_never_replaces_a_file_it_did_not_write(tmp_path, tiny_model):
    folder = tmp_path / "c"
    _picture(folder / "x.jpg")
    mine = _picture(folder / "x.png", seed=5)  # the user's own file, not an input of this run
    before = mine.read_bytes()
    code, out = _cli(["colorize", tiny_model, folder / "x.jpg", "-o", folder, "--inside-input"])
    assert code == 0, out
    assert mine.read_bytes() == before
    assert (folder / "x_2.png").is_file() and "x_2.png" in out


def test_demo_replaces_only_its_own_run_and_never_writes_into_the_data(tmp_path, few, monkeypatch):
    import fewcolor.demo as demo

    monkeypatch.setattr(demo, "calibrate_steps", lambda *a, **k: 20)
    _no_training(monkeypatch)
    code, out = _cli(["demo", "--data", few, "-o", few / "demo", "--seconds", "1"])
    assert code == 2 and "inside the input folder" in _error_line(out)
    code, out = _cli(["demo", "--data", few, "-o", few, "--seconds", "1"])
    assert code == 2 and "inside the input folder" in _error_line(out)
    keep = tmp_path / "out" / "run" / "notes.txt"  # a folder named run that no demo made
    keep.parent.mkdir(parents=True)
    keep.write_text("mine")
    code, out = _cli(["demo", "--data", few, "-o", tmp_path / "out", "--seconds", "1"])
    assert code == 2 and "not an earlier demo run" in _error_line(out)
    assert keep.read_text() == "mine"


def test_adapt_interrupted_says_nothing_was_written(tmp_path, few, tiny_model, monkeypatch):
    import signal
    from pathlib import Path

    import fewcolor.train.adapt as adapt_module
    from fewcolor.train.loop import TrainingInterrupted

    def interrupted(*args, **kwargs):
        raise TrainingInterrupted(3, Path("/tmp/fewcolor-adapt-x/run/checkpoints/last.safetensors"), signal.SIGINT)

    monkeypatch.setattr(adapt_module, "adapt", interrupted)
    out_path = tmp_path / "m.safetensors"
    res = CliRunner().invoke(main, ["adapt", str(tiny_model), "--data", str(few), "-o", str(out_path),
                                    "--steps", "7"])
    assert res.exit_code == 128 + signal.SIGINT, res.output
    assert "nothing was written" in res.output and "it takes 7 steps" in res.output
    assert "--resume" not in res.output and "fewcolor-adapt-x" not in res.output
    assert not out_path.exists()


def test_adapt_base_is_the_bundled_model(tmp_path, few):
    from fewcolor.pretrained import bundled_model_path

    if bundled_model_path() is None:
        pytest.skip("the bundled base model is not installed")
    code, out = _cli(["adapt", "base", "--data", few, "-o", tmp_path / "b.safetensors", "--steps", "0"])
    assert code == 0, out
    assert "learns from data" not in out and (tmp_path / "b.safetensors").is_file()


def test_adapt_refuses_options_that_do_not_apply(tmp_path, few, tiny_model):
    code, out = _cli(["adapt", "lut", "--data", few, "-o", tmp_path / "l.safetensors", "--lr-factor", "2",
                      "--no-holdout"])
    assert code == 2 and "--lr-factor, --no-holdout" in _error_line(out)
    code, out = _cli(["adapt", tiny_model, "--data", few, "-o", tmp_path / "t.safetensors", "--preset", "cpu",
                      "--steps", "0"])
    assert code == 2 and "--preset" in _error_line(out)
    assert not (tmp_path / "l.safetensors").exists() and not (tmp_path / "t.safetensors").exists()


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc, a folder nothing can be created in")
def test_outputs_that_cannot_be_written_fail_first_naming_the_option(tmp_path, few, tiny_model, monkeypatch):
    _no_training(monkeypatch)
    memo = tmp_path / "memo.safetensors"
    memo.write_bytes(b"a model")
    cases = [
        (["adapt", "lut", "--data", few, "-o", "/proc/x.safetensors"], "-o /proc/x.safetensors"),
        (["export", tiny_model, "-o", "/proc/x.onnx"], "-o /proc/x.onnx"),
        (["train", "--method", "unet", "--preset", "tiny", "--data", few, "-o", "/proc/x", "--steps", 1], "-o /proc/x"),
        (["evaluate", "--pred", few, "--truth", few / "..", "-o", "/proc/x", "--no-fid"], "-o /proc/x"),
        (["data", "prepare", "emoji-xstyle", "--cache-dir", "/proc/x"], "--cache-dir /proc/x"),
        (["memory", "inspect", memo, few / "p0.png", "-o", "/proc/p.html"], "-o /proc/p.html"),
        (["colorize", tiny_model, few, "-o", "/proc/x"], "-o /proc/x"),
    ]
    for args, named in cases:
        code, out = _cli(args)
        assert code == 2 and f"{named}: cannot write there" in _error_line(out), (args, out)
    code, out = _cli(["paper-eval", "retrieval", "--data", few, "-o", memo, "--episodes", 1, "--steps", 1])
    assert code == 2 and "-o" in _error_line(out) and "is a file" in _error_line(out)
    assert memo.read_bytes() == b"a model"


def test_colorize_clip_output_suffix_is_checked_before_colouring(tmp_path):
    frames = [Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)) for i in range(3)]
    gif = tmp_path / "anim.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100)
    code, out = _cli(["colorize", gif, "-o", tmp_path / "result.png"])
    assert code == 2 and "-o" in _error_line(out) and "'.png' clips" in _error_line(out)
    assert "colorized" not in out


def test_a_bad_option_file_is_one_error_naming_the_option(tmp_path, few):
    model = save_method(build_method("exemplar", "tiny"), tmp_path / "ex.safetensors")
    bad = tmp_path / "notimage.png"
    bad.write_text("not an image")
    code, out = _cli(["colorize", model, few, "-o", tmp_path / "out", "--reference", bad])
    assert code == 2 and "--reference" in _error_line(out) and "skipped" not in out
    assert not (tmp_path / "out").exists()
    code, out = _cli(["evaluate", model, "--data", few, "-o", tmp_path / "ev", "--no-fid", "--reference", bad])
    assert code == 2 and "--reference" in _error_line(out) and "skipped" not in out


def test_commands_that_colour_once_do_not_offer_sweeps(tmp_path, few, tiny_model):
    assert "--variants" in CliRunner().invoke(main, ["colorize", "--help"]).output
    for command in (["export"], ["evaluate", "--variant", "1"], ["paper-eval", "semantic", "--variant", "1"]):
        res = CliRunner().invoke(main, [*command, "--help"])
        assert res.exit_code == 0 and "--variants" not in res.output, command
    code, out = _cli(["paper-eval", "semantic", "base", "--data", few, "-o", tmp_path / "s.json", "--variants", 2])
    assert code == 2 and "one colouring per image" in _error_line(out) and "--variant 2" in _error_line(out)


def test_paper_eval_errors_name_the_option(tmp_path, few):
    notes = tmp_path / "notes.txt"
    notes.write_text("class a is 3")
    code, out = _cli(["paper-eval", "semantic", "base", "--data", few, "-o", tmp_path / "s", "--label-map", notes])
    assert code == 2 and "--label-map" in _error_line(out)
    for scales in ("a,b", "-1", "0.5,0"):
        code, out = _cli(["paper-eval", "memory-sweep", "--data", few, "-o", tmp_path / "m", "--memory-scales",
                          scales])
        assert code == 2 and "--memory-scales" in _error_line(out), scales
    code, out = _cli(["paper-eval", "memory-sweep", "--data", few, "-o", tmp_path / "m", "--thresholds", "x"])
    assert code == 2 and "--thresholds" in _error_line(out)


def test_serve_busy_port_or_foreign_host_is_one_line(tmp_path):
    import socket

    pytest.importorskip("uvicorn")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, out = _cli(["serve", "--port", port])
    assert code == 2 and f"--port {port}: address already in use; choose another port" in _error_line(out)
    code, out = _cli(["serve", "--host", "203.0.113.7", "--port", port])  # TEST-NET-3: no machine's own address
    assert code == 2 and "--host 203.0.113.7" in _error_line(out)


def test_conflicting_options_are_refused(tmp_path, few, monkeypatch):
    import fewcolor.bench.runner as runner

    _no_training(monkeypatch)
    monkeypatch.setattr(runner, "run_benchmark", lambda *a, **k: pytest.fail("benchmarked"))
    train = ["train", "--method", "unet", "--preset", "tiny", "--data", few, "--batch-size", 2]
    code, out = _cli([*train, "-o", tmp_path / "r", "--steps", 5, "--epochs", 1])
    assert code == 2 and "--epochs" in _error_line(out) and "--steps" in _error_line(out)
    val = tmp_path / "val"
    _picture(val / "v.png")
    code, out = _cli([*train, "-o", val / "run", "--val", val])  # its samples would be scored next round
    assert code == 2 and "inside the input folder" in _error_line(out)
    code, out = _cli(["bench", "emoji-xstyle", "--methods", "grey,lut", "--smoke", "--size", "paper"])
    assert code == 2 and "--smoke" in _error_line(out)
    code, out = _cli(["bench", "emoji-xstyle", "--methods", "grey,lut", "--preset", "cpus", "--smoke"])
    assert code == 2 and "--preset" in _error_line(out) and "'cpu'" in _error_line(out)


def test_usage_mistakes_exit_2_and_nothing_is_written_first(tmp_path, few, tiny_model):
    code, out = _cli(["export", tiny_model, "-o", tmp_path / "x.onnx", "--temperature", 0.5])
    assert code == 2 and "temperature" in _error_line(out) and not (tmp_path / "x.onnx").exists()
    code, out = _cli(["evaluate", tiny_model, "--data", few, "-o", tmp_path / "e", "--no-fid", "--temperature", 0.5])
    assert code == 2 and "temperature" in _error_line(out)
    code, out = _cli(["colorize", tiny_model, few, "-o", tmp_path / "new", "--temperature", 0.5])
    assert code == 2 and not (tmp_path / "new").exists()
    bad = tmp_path / "notimage.png"
    bad.write_text("not an image")
    code, out = _cli(["export", tiny_model, "-o", tmp_path / "y.onnx", "--check-image", bad])
    assert code == 2 and "--check-image" in _error_line(out) and not (tmp_path / "y.onnx").exists()
    code, out = _cli(["paper-eval", "inception-score", "base", "--data", few, "-o", tmp_path / "i", "--seed", -1])
    assert code == 2 and "--seed" in _error_line(out)  # `base` itself is accepted: the bundled model
    code, out = _cli(["paper-eval", "representation", "base", "--data", few, "-o", tmp_path / "r"])
    assert code == 2 and "needs a cic checkpoint" in _error_line(out)
