import json

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
