"""`fewcolor adapt` for every registered method: weights change, the checkpoint loads, the held-out check."""

from __future__ import annotations

import logging
import shutil

import pytest
import torch
from click.testing import CliRunner

from fewcolor.bench.adapt_folder import adapt_folder
from fewcolor.cli import main
from fewcolor.methods.registry import available_methods, build_method, load_method, save_method


@pytest.fixture()
def few(emoji_dir, tmp_path):
    """Three heart emoji: a user's few images."""
    out = tmp_path / "few"
    out.mkdir()
    for p in sorted((emoji_dir / "heart").glob("*.png"))[:3]:
        shutil.copy(p, out / p.name)
    return out


@pytest.mark.parametrize("name", sorted(available_methods()))
def test_adapt_changes_the_weights_and_writes_a_loadable_checkpoint(name, few, tmp_path) -> None:
    torch.manual_seed(0)
    method = build_method(name, "tiny", {"image_size": 32})
    model = save_method(method, tmp_path / "model.safetensors")
    report = adapt_folder(model, few, tmp_path / "adapted.safetensors", steps=2, holdout=False, progress=False)
    assert report.images == 3 and report.steps == 2
    adapted = load_method(report.path)
    assert adapted.name == name
    before, after = method.state_dict(), adapted.state_dict()
    if name == "grey":
        assert before == {} and after == {} and report.how == "own"  # nothing to learn, by design
    else:
        changed = [k for k, v in before.items() if v.is_floating_point() and not torch.equal(after[k], v)]
        assert changed, f"{name}: adapt changed no weight"
    ab = adapted.predict_ab(torch.zeros(1, 1, 32, 32))
    assert ab.shape == (1, 2, 32, 32) and torch.isfinite(ab).all()


def test_the_held_out_image_is_scored_before_and_after(few, tmp_path) -> None:
    model = save_method(build_method("lut", "tiny"), tmp_path / "lut.safetensors")
    report = adapt_folder(model, few, tmp_path / "out.safetensors", progress=False)
    assert report.held_out == sorted(p.name for p in few.iterdir())[-1]
    assert report.steps == build_method("lut").adapt_settings().steps  # the method's default
    assert report.before is not None and report.after is not None
    # an empty table is grey; the table of two other hearts colours the third much closer to its truth
    assert report.after["delta_e2000"] < 0.7 * report.before["delta_e2000"]
    assert load_method(report.path).count.sum() > 0


def test_an_untrained_memopainter_adapts_with_no_before_score(few, tmp_path, caplog) -> None:
    torch.manual_seed(0)
    model = save_method(build_method("memopainter", "tiny", {"image_size": 32}), tmp_path / "memo.safetensors")
    with caplog.at_level(logging.WARNING):
        report = adapt_folder(model, few, tmp_path / "out.safetensors", steps=1, progress=False)
    assert report.held_out is not None and report.before is None and report.after is not None
    assert "cannot colorize" in caplog.text and "memory is empty" in caplog.text


def _grey_copy(src, dst) -> None:
    from fewcolor.io.image import read_rgb, write_rgb

    write_rgb(dst, read_rgb(src).mean(0, keepdim=True).expand(3, -1, -1))


def test_a_grey_image_is_skipped_with_a_count(few, tmp_path, caplog) -> None:
    last = sorted(few.iterdir())[-1]
    _grey_copy(last, few / "zz_grey.png")  # sorts last: it would be held out, and taught, if it were kept
    model = save_method(build_method("lut", "tiny"), tmp_path / "lut.safetensors")
    with caplog.at_level(logging.INFO):
        report = adapt_folder(model, few, tmp_path / "out.safetensors", progress=False)
    assert report.images == 3 and report.held_out == last.name and report.grey_skipped == ["zz_grey.png"]
    said = [m for m in caplog.messages if "look grey" in m]
    assert len(said) == 1 and "1 of 4 images" in said[0] and "zz_grey.png" in said[0] and "skipped" in said[0]
    from fewcolor.io.checkpoint import read_metadata

    assert read_metadata(report.path)["adaptation"]["grey_skipped"] == ["zz_grey.png"]
    r = CliRunner().invoke(main, ["adapt", str(model), "--data", str(few), "-o", str(tmp_path / "cli.safetensors")])
    assert r.exit_code == 0 and "to 3 images (1 grey image skipped, above)" in r.output, r.output


@pytest.mark.parametrize("model", ["checkpoint", "exemplar"])
def test_a_folder_of_grey_images_is_refused_in_one_line(model, few, tmp_path) -> None:
    grey = tmp_path / "grey"
    grey.mkdir()
    for p in sorted(few.iterdir()):
        _grey_copy(p, grey / p.name)
    with pytest.raises(ValueError, match=r"no usable images.*3 grey"):
        adapt_folder(save_method(build_method("lut", "tiny"), tmp_path / "lut.safetensors"), grey,
                     tmp_path / "g.safetensors", progress=False)
    # the command line, a checkpoint or a method name alike: one Error line with advice it can follow
    name = str(tmp_path / "lut.safetensors") if model == "checkpoint" else model
    r = CliRunner().invoke(main, ["adapt", name, "--data", str(grey), "-o", str(tmp_path / "g.safetensors")])
    errors = [line for line in r.output.splitlines() if line.startswith("Error:")]
    assert r.exit_code == 1 and len(errors) == 1 and "Traceback" not in r.output, r.output
    assert errors[0].endswith("3 grey (skipped: grey images carry no colour to learn from; give colour images)")
    assert "skip_grey" not in r.output and not (tmp_path / "g.safetensors").exists()


def test_fewer_than_three_images_skip_the_check(few, tmp_path) -> None:
    (few / sorted(p.name for p in few.iterdir())[0]).unlink()
    model = save_method(build_method("lut", "tiny"), tmp_path / "lut.safetensors")
    report = adapt_folder(model, few, tmp_path / "out.safetensors", progress=False)
    assert report.held_out is None and report.images == 2


def test_cli_adapt_prints_the_check_and_refuses_bad_calls(few, tmp_path, monkeypatch) -> None:
    model = save_method(build_method("unet", "tiny", {"image_size": 32}), tmp_path / "unet.safetensors")
    runner = CliRunner()
    r = runner.invoke(main, ["adapt", str(model), "--data", str(few), "-o", str(tmp_path / "a.safetensors"),
                             "--steps", "3", "--lr-factor", "2"])
    assert r.exit_code == 0, r.output
    assert "held-out" in r.output and "before" in r.output and "-> after" in r.output
    assert "unet: adapted (finetune) to 3 images in 3 steps, lr x2" in r.output
    r = runner.invoke(main, ["adapt", str(model), "--data", str(few), "-o", str(model)])
    assert r.exit_code == 2 and "is the model being adapted" in r.output  # a user mistake: usage status
    # no MODEL and no bundled base model: one clear line, no traceback
    import fewcolor.pretrained as pretrained

    monkeypatch.setattr(pretrained, "BUNDLED_MODEL", tmp_path / "absent" / "base.safetensors")
    r = runner.invoke(main, ["adapt", "--data", str(few), "-o", str(tmp_path / "b.safetensors")])
    assert r.exit_code == 1 and "no bundled base model" in r.output and "Traceback" not in r.output
    assert r.output.count("\n") == 1


def test_no_model_uses_the_bundled_one_when_it_exists(few, tmp_path, monkeypatch) -> None:
    import fewcolor.pretrained as pretrained

    bundled = save_method(build_method("lut", "tiny"), tmp_path / "weights" / "base.safetensors")
    monkeypatch.setattr(pretrained, "BUNDLED_MODEL", bundled)
    assert pretrained.bundled_model_path() == bundled
    report = adapt_folder(None, few, tmp_path / "mine.safetensors", holdout=False, progress=False)
    assert report.method == "lut" and report.path.is_file()
