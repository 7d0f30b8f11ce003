"""AuC, colourfulness (both variants), ΔCF and mean CIEDE2000."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from fewcolor.color.lab import lab_to_rgb, rgb_to_lab
from fewcolor.metrics.color import (
    auc_ab,
    colorfulness_abs,
    colorfulness_hs,
    delta_colorfulness,
    mean_delta_e2000,
)


def _images(seed: int = 0, n: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 24, 20, generator=g)


def _np_colorfulness(rgb: torch.Tensor, use_abs: bool) -> float:
    """Reference on one (3,H,W) image with numpy, 0–255 values."""
    r, g, b = (rgb.double().numpy() * 255.0)
    rg, yb = r - g, 0.5 * (r + g) - b
    if use_abs:
        rg, yb = np.abs(rg), np.abs(yb)
    return float(np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2))


def test_colorfulness_variants_match_numpy():
    imgs = _images()
    hs, ab = colorfulness_hs(imgs), colorfulness_abs(imgs)
    for i in range(len(imgs)):
        assert hs[i].item() == pytest.approx(_np_colorfulness(imgs[i], False), rel=1e-5)
        assert ab[i].item() == pytest.approx(_np_colorfulness(imgs[i], True), rel=1e-5)
    assert not torch.allclose(hs, ab)  # the variants really differ


def test_colorfulness_of_grey_and_pure_red():
    grey = torch.full((1, 3, 8, 8), 0.4)
    assert colorfulness_hs(grey).item() == pytest.approx(0.0, abs=1e-5)
    red = torch.zeros(1, 3, 8, 8)
    red[:, 0] = 1.0
    # rg = 255, yb = 127.5 everywhere: sigma = 0, mu = sqrt(255² + 127.5²).
    assert colorfulness_hs(red).item() == pytest.approx(0.3 * np.hypot(255, 127.5), rel=1e-5)


def test_delta_colorfulness_is_absolute_difference():
    a, b = _images(1), _images(2)
    d = delta_colorfulness(a, b, "hs")
    assert torch.allclose(d, (colorfulness_hs(a) - colorfulness_hs(b)).abs())
    assert torch.allclose(d, delta_colorfulness(b, a, "hs"))
    assert delta_colorfulness(a, a).abs().max() == 0


def test_auc_identical_is_one_and_constant_error_is_known():
    imgs = _images(3)
    assert torch.allclose(auc_ab(imgs, imgs), torch.ones(2))
    # Grey truth vs a prediction with a uniform ab offset of (30, 40): error 50 everywhere (up to gamut).
    lab = torch.zeros(1, 3, 4, 4)
    lab[:, 0] = 60.0
    truth = lab_to_rgb(lab)
    pred_lab = lab.clone()
    pred_lab[:, 1], pred_lab[:, 2] = 30.0, 40.0
    pred = lab_to_rgb(pred_lab)
    err = (rgb_to_lab(pred)[:, 1:] - rgb_to_lab(truth)[:, 1:]).norm(dim=1).mean().item()
    assert err == pytest.approx(50.0, abs=0.5)
    # fraction is 0 below the error, 1 from it on: area = (150 - err) / 150 (±1 step of the trapezoid)
    assert auc_ab(pred, truth).item() == pytest.approx((150 - err) / 150, abs=1 / 150)


def test_mean_delta_e2000():
    if importlib.util.find_spec("fewcolor.color.ciede2000") is None:
        pytest.skip("fewcolor.color.ciede2000 is not written yet (another helper's module)")
    imgs = _images(4)
    assert mean_delta_e2000(imgs, imgs).abs().max().item() < 1e-4
    # Independent reference: scikit-image's sRGB -> Lab (D65) and CIEDE2000 on the same pixels.
    skcolor = pytest.importorskip("skimage.color")
    a, b = _images(5, n=1), _images(6, n=1)
    ref = skcolor.deltaE_ciede2000(skcolor.rgb2lab(a[0].permute(1, 2, 0).double().numpy()),
                                   skcolor.rgb2lab(b[0].permute(1, 2, 0).double().numpy())).mean()
    assert mean_delta_e2000(a, b).item() == pytest.approx(ref, rel=2e-3)
    assert mean_delta_e2000(a, b).item() > 1.0


def test_auc_by_sorting_equals_the_threshold_comparison():
    pred, truth = _images(3, n=3), _images(4, n=3)
    err = (rgb_to_lab(pred)[:, 1:] - rgb_to_lab(truth)[:, 1:]).pow(2).sum(dim=1).sqrt().flatten(1)
    thresholds = torch.linspace(0.0, 150.0, 151)
    frac = (err[:, None, :] <= thresholds[None, :, None]).float().mean(dim=2)  # the definition, spelt out
    assert torch.equal(auc_ab(pred, truth), torch.trapezoid(frac, thresholds, dim=1) / 150.0)
