"""PSNR and SSIM against scikit-image."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fewcolor.metrics.pixel import gaussian_kernel1d, psnr, ssim

skm = pytest.importorskip("skimage.metrics")


def _pair(seed: int, shape=(3, 40, 52), noise=0.08):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(shape, generator=g)
    a = torch.nn.functional.avg_pool2d(a[None], 3, 1, 1)[0]  # some structure, not white noise
    b = (a + noise * torch.randn(shape, generator=g)).clamp(0, 1)
    return a, b


def _np(x: torch.Tensor) -> np.ndarray:
    return x.permute(1, 2, 0).double().numpy()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ssim_matches_skimage_gaussian(seed):
    a, b = _pair(seed)
    ref = skm.structural_similarity(_np(a), _np(b), gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, data_range=1, channel_axis=2)
    assert ssim(a[None], b[None]).item() == pytest.approx(ref, abs=1e-6)


def test_psnr_matches_skimage_and_batches():
    pairs = [_pair(s, noise=0.02 * (s + 1)) for s in range(3)]
    a = torch.stack([p[0] for p in pairs])
    b = torch.stack([p[1] for p in pairs])
    ours = psnr(a, b)
    assert ours.shape == (3,)
    for i in range(3):
        ref = skm.peak_signal_noise_ratio(_np(a[i]), _np(b[i]), data_range=1)
        assert ours[i].item() == pytest.approx(ref, abs=1e-4)
    assert ours[0] > ours[1] > ours[2]  # more noise, lower PSNR


def test_identical_images():
    a, _ = _pair(3)
    assert math.isinf(psnr(a, a).item())
    assert ssim(a, a).item() == pytest.approx(1.0, abs=1e-6)


def test_gaussian_window_and_errors():
    k = gaussian_kernel1d()
    assert k.numel() == 11 and k.sum().item() == pytest.approx(1.0)
    assert k[5] / k[6] == pytest.approx(math.exp(0.5 / 1.5**2))
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(torch.zeros(3, 8, 8), torch.zeros(3, 8, 9))
    with pytest.raises(ValueError, match="at least 11"):
        ssim(torch.zeros(3, 8, 8), torch.zeros(3, 8, 8))
