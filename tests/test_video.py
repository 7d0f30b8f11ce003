"""Clips coloured with the exemplar method: the previous frame as a support, the CLI end to end."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from fewcolor.backbones.weights import get_spec, missing_message, package_file
from fewcolor.cli import main
from fewcolor.color.lab import grey_rgb_from_l, rgb_to_l
from fewcolor.io.image import write_rgb
from fewcolor.io.video import read_clip, write_clip
from fewcolor.methods.exemplar import Supports
from fewcolor.methods.registry import build_method, load_method, save_method
from fewcolor.metrics.color import mean_delta_e2000
from fewcolor.pipeline import Colorizer
from fewcolor.video import colorize_clip

pytestmark = pytest.mark.weights


@pytest.fixture(scope="module", autouse=True)
def _vgg() -> None:
    if package_file(get_spec("vgg16")) is None:
        pytest.skip(missing_message(get_spec("vgg16")))


def astronaut_pan(n: int, size: int = 48, step: int = 24) -> list[torch.Tensor]:
    """``n`` frames of a camera pan over scikit-image's astronaut (a 320 px window moving ``step`` px)."""
    data = pytest.importorskip("skimage.data")
    rgb = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float() / 255
    crops = [rgb[:, 40: 360, 60 + i * step: 380 + i * step] for i in range(n)]
    return [F.interpolate(c[None], size=(size, size), mode="bilinear", antialias=True)[0] for c in crops]


def grey(frames: list[torch.Tensor]) -> list[torch.Tensor]:
    return [grey_rgb_from_l(rgb_to_l(f[None]))[0] for f in frames]


def coloured_closer_than_grey(frames: list[torch.Tensor], truth: list[torch.Tensor], ratio: float = 0.8) -> bool:
    """Whether ``frames`` are nearer the ``truth`` than its grey input is, in mean ΔE00, by ``ratio``."""
    de = mean_delta_e2000(torch.stack(frames), torch.stack(truth)).mean()
    de_grey = mean_delta_e2000(torch.stack(grey(truth)), torch.stack(truth)).mean()
    return bool(de < ratio * de_grey)


def test_previous_frame_is_a_support_weighted_by_its_confidence():
    truth = astronaut_pan(4)
    model = build_method("exemplar", "tiny", {"fallback": "stats"})
    colorizer = Colorizer(model, device="cpu", size=48)
    key = [truth[0]]
    propagated = colorize_clip(colorizer, grey(truth), key, propagate=True, progress=False)
    per_frame = colorize_clip(colorizer, grey(truth), key, propagate=False, progress=False)
    assert len(propagated) == 4 and propagated[0].shape == truth[0].shape
    assert torch.allclose(propagated[0], per_frame[0])  # frame 0 has no previous frame
    assert not torch.allclose(propagated[3], per_frame[3], atol=1e-3)  # later frames also match their predecessor
    assert coloured_closer_than_grey(propagated[1:], truth[1:], ratio=0.6)

    # a support pixel with confidence 0 is not used while another one matches
    with torch.no_grad():
        l = colorizer.working_l(truth[1])[1]
        wrong = torch.full((1, 2, *l.shape[-2:]), -0.4)  # a previous "frame" of the same picture, all blue
        base = model.encode_rgb(truth[1])
        for prior, close in ((0.0, True), (1.0, False)):
            prev = model.encode(l, wrong, torch.full_like(l, prior))
            ab, _ = model.transfer(l, Supports.concat([prev, base]))
            assert torch.allclose(ab, model.transfer(l, base)[0], atol=1e-4) is close


def test_cli_adapt_exemplar_then_colorize_an_mp4_clip(tmp_path):
    pytest.importorskip("av")
    truth = astronaut_pan(3, size=40)
    (tmp_path / "few").mkdir()
    write_rgb(tmp_path / "few" / "key.png", truth[0])
    write_clip(tmp_path / "clip.mp4", grey(truth), fps=8)
    runner = CliRunner()
    res = runner.invoke(main, ["adapt", "exemplar", "--preset", "tiny", "--data", str(tmp_path / "few"),
                               "-o", str(tmp_path / "ex.safetensors")])
    assert res.exit_code == 0, res.output
    assert load_method(tmp_path / "ex.safetensors").num_supports == 1
    res = runner.invoke(main, ["colorize", str(tmp_path / "ex.safetensors"), str(tmp_path / "clip.mp4"),
                               "-o", str(tmp_path / "out.mp4"), "--fallback", "stats"])
    assert res.exit_code == 0, res.output
    out = read_clip(tmp_path / "out.mp4")
    assert len(out.frames) == 3 and out.frames[0].shape == (3, 40, 40) and out.fps == pytest.approx(8)
    assert rgb_to_l(out.frames[1][None]).std() > 1  # a picture, not a blank frame
    assert coloured_closer_than_grey(out.frames[1:], truth[1:])  # coloured from the support, not left grey
    # a GIF clip into a folder of frames, coloured from a keyframe
    write_clip(tmp_path / "clip.gif", grey(truth), fps=8)
    res = runner.invoke(main, ["colorize", str(tmp_path / "ex.safetensors"), str(tmp_path / "clip.gif"),
                               "-o", str(tmp_path / "frames"), "--keyframe", str(tmp_path / "few" / "key.png")])
    assert res.exit_code == 0, res.output
    frames = read_clip(tmp_path / "frames").frames
    assert len(frames) == 3 and frames[0].shape == (3, 40, 40)
    assert coloured_closer_than_grey(frames[1:], truth[1:])


def test_cli_clip_and_adapt_errors_are_one_line(tmp_path):
    runner = CliRunner()
    (tmp_path / "data").mkdir()
    res = runner.invoke(main, ["adapt", "nosuchmethod", "--data", str(tmp_path / "data"), "-o", str(tmp_path / "m")])
    assert res.exit_code != 0 and "neither a checkpoint file nor a method name" in res.output
    unet = save_method(build_method("unet", "tiny"), tmp_path / "unet.safetensors")
    write_clip(tmp_path / "clip.gif", astronaut_pan(2, size=32), fps=8)
    write_rgb(tmp_path / "key.png", astronaut_pan(1, size=32)[0])
    res = runner.invoke(main, ["colorize", str(unet), str(tmp_path / "clip.gif"), "-o", str(tmp_path / "o.gif"),
                               "--keyframe", str(tmp_path / "key.png")])
    assert res.exit_code != 0 and "keyframes need an exemplar model" in res.output
    assert "Traceback" not in res.output
