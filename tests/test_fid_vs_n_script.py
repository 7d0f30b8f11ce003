"""scripts/fid_vs_n.py (the measurement behind MIN_SET_IMAGES) on a few generated photos, real Inception weights."""

from __future__ import annotations

import pytest
import torch

from fewcolor.backbones.weights import get_spec, missing_message, package_file
from fewcolor.io.image import write_rgb
from helpers import load_script

fid_vs_n = load_script("fid_vs_n")


def test_scaled_chroma_keeps_lightness_and_scales_colour():
    from fewcolor.color.lab import rgb_to_lab

    rgb = torch.rand(3, 8, 8)
    half, none = fid_vs_n.scaled_chroma(rgb, 0.5), fid_vs_n.scaled_chroma(rgb, 0.0)
    lab, lab_half = rgb_to_lab(rgb), rgb_to_lab(half)
    assert torch.allclose(lab_half[0], lab[0], atol=1.0)
    assert lab_half[1:].abs().mean() == pytest.approx(0.5 * lab[1:].abs().mean().item(), rel=0.1)
    assert rgb_to_lab(none)[1:].abs().max() < 1.0


@pytest.mark.weights
def test_the_table_has_one_column_per_size(tmp_path, capsys):
    if package_file(get_spec("inception_v3_fid")) is None:
        pytest.skip(missing_message(get_spec("inception_v3_fid")))
    g = torch.Generator().manual_seed(0)
    for i in range(6):
        write_rgb(tmp_path / f"p{i}.png", torch.rand(3, 1, 1, generator=g).expand(3, 40, 40) * 0.6
                  + 0.4 * torch.rand(3, 40, 40, generator=g))
    assert fid_vs_n.main([str(tmp_path), "--photos", "6", "--draws", "2", "--sizes", "3,5", "--size", "64"]) == 0
    out = capsys.readouterr().out
    assert "all 6: FID" in out and "| N | 3 | 5 |" in out
    assert fid_vs_n.main([str(tmp_path / "missing")]) == 2
    assert fid_vs_n.main([str(tmp_path), "--sizes", "1,3"]) == 2 and fid_vs_n.main([str(tmp_path), "--draws", "1"]) == 2
