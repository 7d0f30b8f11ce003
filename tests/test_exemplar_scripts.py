"""scripts/temporal_stability.py and scripts/exemplar_speed.py on tiny inputs (real VGG16 weights)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fewcolor.backbones.weights import get_spec, missing_message, package_file
from fewcolor.io.image import read_rgb, write_rgb
from fewcolor.io.video import write_clip
from fewcolor.methods.registry import build_method, save_method
from helpers import load_script

pytestmark = pytest.mark.weights

temporal_stability = load_script("temporal_stability")
exemplar_speed = load_script("exemplar_speed")


@pytest.fixture(scope="module", autouse=True)
def _vgg() -> None:
    if package_file(get_spec("vgg16")) is None:
        pytest.skip(missing_message(get_spec("vgg16")))


def _frames(n: int, size: int = 32) -> list[torch.Tensor]:
    """``n`` frames of a red square drifting over a blue-green gradient: colour that a support can give back."""
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    frames = []
    for i in range(n):
        rgb = torch.stack([0.2 * x, 0.4 + 0.4 * y, 0.9 - 0.5 * x])
        rgb[:, 8 + i: 18 + i, 10:20] = torch.tensor([0.9, 0.15, 0.1])[:, None, None]
        frames.append(rgb)
    return frames


def test_temporal_stability_prints_each_colouring_and_writes_a_strip(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    write_clip(tmp_path / "clip.gif", _frames(5), fps=8)
    model = save_method(build_method("exemplar", "tiny", {"fallback": "stats"}), tmp_path / "ex.safetensors")
    strip = tmp_path / "strips" / "strip.png"
    rc = temporal_stability.main([str(tmp_path / "clip.gif"), "--model", str(model), "--size", "32",
                                  "--strip", str(strip), "--strip-frames", "3"])
    assert rc == 0
    out = capsys.readouterr().out
    for name in ("exemplar ", "exemplar per-frame", "truth"):
        assert name in out
    assert "frames 0, 2, 4" in out
    # rows: grey, exemplar, exemplar per-frame, truth; 3 frames each, 32-px tiles with 2-px padding
    assert read_rgb(strip).shape == (3, 4 * 34 + 2, 3 * 34 + 2)
    truth_row = next(line for line in out.splitlines() if line.startswith("truth"))
    assert float(truth_row.split()[-1]) == pytest.approx(0.0, abs=1e-6)  # the truth's ΔE00 to itself


def test_exemplar_speed_uses_the_default_fallback_unless_told(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "images").mkdir()
    for i, frame in enumerate(_frames(4)):
        write_rgb(tmp_path / "images" / f"{i}.png", frame)
    args = [str(tmp_path / "images"), "--supports", "1", "--size", "32", "--queries", "2", "--preset", "tiny"]
    assert exemplar_speed.main(args) == 0
    default = build_method("exemplar", "tiny").config.fallback
    assert f"fallback {default}:" in capsys.readouterr().out
    assert exemplar_speed.main([*args, "--fallback", "stats"]) == 0
    assert "fallback stats:" in capsys.readouterr().out
    assert exemplar_speed.main([*args, "--supports", "9"]) == 2  # too few images for 9 supports
