"""fewcolor.color.lab against scikit-image's reference conversion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fewcolor.color.lab import grey_rgb_from_l, lab_to_rgb, merge_l_ab, rgb_to_l, rgb_to_lab

skcolor = pytest.importorskip("skimage.color", reason="scikit-image (dev extra) is needed for reference values")
skdata = pytest.importorskip("skimage.data", reason="scikit-image (dev extra) is needed for its sample photos")


def _to_hwc(t: torch.Tensor) -> np.ndarray:
    return t.movedim(-3, -1).double().numpy()


def _random_rgb(seed: int = 0) -> torch.Tensor:
    return torch.rand(4, 3, 24, 24, generator=torch.Generator().manual_seed(seed))


def test_rgb_to_lab_matches_skimage_random() -> None:
    rgb = _random_rgb()
    ours = rgb_to_lab(rgb)
    assert ours.dtype == torch.float32 and ours.shape == rgb.shape
    ref = skcolor.rgb2lab(_to_hwc(rgb))
    assert np.abs(_to_hwc(ours) - ref).max() < 1e-3


def test_rgb_to_lab_matches_skimage_on_a_photo() -> None:
    img = skdata.astronaut()[::2, ::2].astype(np.float64) / 255.0
    rgb = torch.from_numpy(img).permute(2, 0, 1).float()
    ref = skcolor.rgb2lab(img)
    assert np.abs(_to_hwc(rgb_to_lab(rgb)) - ref).max() < 1e-3
    assert np.abs(_to_hwc(rgb_to_l(rgb))[..., 0] - ref[..., 0]).max() < 1e-3


def test_lab_to_rgb_matches_skimage() -> None:
    lab_ref = skcolor.rgb2lab(_to_hwc(_random_rgb(1)))
    lab = torch.from_numpy(lab_ref).movedim(-1, -3).float()
    assert np.abs(_to_hwc(lab_to_rgb(lab)) - skcolor.lab2rgb(lab_ref)).max() < 1e-3


def test_round_trip_error_is_small() -> None:
    rgb = _random_rgb(2)
    assert (lab_to_rgb(rgb_to_lab(rgb)) - rgb).abs().max() < 1e-4
    img = torch.from_numpy(skdata.astronaut()[::4, ::4].copy()).permute(2, 0, 1).float() / 255.0
    assert (lab_to_rgb(rgb_to_lab(img)) - img).abs().max() < 1e-4


def test_out_of_gamut_lab_is_clipped_to_unit_range() -> None:
    lab = torch.tensor([[50.0, 120.0, -120.0], [30.0, -128.0, 127.0], [100.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    rgb = lab_to_rgb(lab.T.reshape(3, 4, 1))
    assert rgb.min() >= 0.0 and rgb.max() <= 1.0
    # the first two are outside sRGB: some channel hits a bound exactly
    assert ((rgb[:, :2] == 0) | (rgb[:, :2] == 1)).any(dim=0).all()
    assert torch.allclose(rgb[:, 2, 0], torch.ones(3), atol=1e-4)  # Lab white -> RGB white
    assert torch.allclose(rgb[:, 3, 0], torch.zeros(3), atol=1e-6)


def test_gradients_flow_both_ways() -> None:
    rgb = _random_rgb(3).mul(0.9).add(0.05).requires_grad_(True)
    rgb_to_lab(rgb).sum().backward()
    assert rgb.grad is not None and torch.isfinite(rgb.grad).all() and rgb.grad.abs().sum() > 0
    lab = rgb_to_lab(_random_rgb(4)).detach().requires_grad_(True)
    lab_to_rgb(lab).square().sum().backward()
    assert lab.grad is not None and torch.isfinite(lab.grad).all() and lab.grad.abs().sum() > 0


def test_merge_and_grey_helpers() -> None:
    rgb = _random_rgb(5)
    lab = rgb_to_lab(rgb)
    assert torch.allclose(merge_l_ab(lab[:, :1], lab[:, 1:]), rgb, atol=1e-4)
    grey = grey_rgb_from_l(lab[:, :1])
    assert grey.shape == rgb.shape
    # a grey image has equal channels and ab = 0
    assert (grey.max(dim=1).values - grey.min(dim=1).values).abs().max() < 1e-3
    assert rgb_to_lab(grey)[:, 1:].abs().max() < 0.1


def test_rgb_to_l_equals_the_l_of_rgb_to_lab() -> None:
    for shape in [(4, 3, 37, 53), (3, 64, 64), (2, 3, 1, 300)]:
        rgb = torch.rand(*shape, generator=torch.Generator().manual_seed(len(shape))) * 1.2 - 0.1
        l_only = rgb_to_l(rgb)
        assert l_only.shape == (*shape[:-3], 1, *shape[-2:])
        assert (l_only - rgb_to_lab(rgb)[..., :1, :, :]).abs().max() < 1e-4
    with pytest.raises(ValueError, match="rgb_to_l expects"):
        rgb_to_l(torch.rand(4, 8, 8))
