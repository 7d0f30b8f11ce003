"""Temporal stability: mean ab change between consecutive frames on static pixels."""

from __future__ import annotations

import pytest
import torch

from fewcolor.color.lab import lab_to_rgb
from fewcolor.metrics.temporal import temporal_ab_change


def lab_frame(l: float, a: float, b: float, size: int = 8) -> torch.Tensor:
    lab = torch.tensor([l, a, b]).view(1, 3, 1, 1).expand(1, 3, size, size)
    return lab_to_rgb(lab)[0]


def test_steady_colour_scores_zero_and_flicker_scores_its_size():
    steady = [lab_frame(60, 20, 10)] * 3
    change, share = temporal_ab_change(steady)
    assert change == pytest.approx(0, abs=0.05) and share == 1.0
    flicker = [lab_frame(60, 20, 10), lab_frame(60, 23, 14), lab_frame(60, 20, 10)]
    change, _ = temporal_ab_change(flicker)
    assert change == pytest.approx(5.0, abs=0.3)  # |(3, 4)| = 5 at every static pixel


def test_pixels_whose_lightness_changes_are_left_out():
    a, b = lab_frame(60, 20, 10), lab_frame(60, -20, -10)
    b[:, :, 4:] = lab_frame(80, -20, -10)[:, :, 4:]  # right half: L changes, so not static
    change, share = temporal_ab_change([a, b])
    assert share == pytest.approx(0.5)
    assert change == pytest.approx((40**2 + 20**2) ** 0.5, rel=0.02)
    _, share_ref = temporal_ab_change([a, b], reference_l=[a, a])  # the reference says: all static
    assert share_ref == 1.0


def test_needs_two_frames():
    with pytest.raises(ValueError, match="two frames"):
        temporal_ab_change([lab_frame(50, 0, 0)])
