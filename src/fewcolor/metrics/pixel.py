"""PSNR and SSIM on RGB in [0, 1], batched: ``(B,3,H,W)`` pairs -> ``(B,)`` per-image values.

SSIM follows Wang et al., "Image Quality Assessment: From Error Visibility to Structural Similarity",
IEEE TIP 2004, eq. 13, with the paper's Gaussian window (11×11, σ = 1.5), K1 = 0.01, K2 = 0.03 and
population (not sample) covariances. Each channel gets its own SSIM map; the image score is the mean
over channels of the mean over the *valid* region (positions whose window lies inside the image), which
is what ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=1, channel_axis=...)`` computes (it filters the padded image
and then crops (win − 1)/2 pixels from each border).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _check_pair(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and truth {tuple(target.shape)} differ in shape")
    if pred.ndim == 3:
        pred, target = pred[None], target[None]
    if pred.ndim != 4:
        raise ValueError(f"expected (B,C,H,W) or (C,H,W) images, got {tuple(pred.shape)}")
    return pred, target


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image: 10·log10(range² / MSE); identical images give +inf."""
    pred, target = _check_pair(pred, target)
    mse = (pred.double() - target.double()).pow(2).flatten(1).mean(dim=1)
    return (10.0 * torch.log10(data_range**2 / mse)).float()  # mse = 0 -> +inf


def gaussian_kernel1d(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA, dtype: torch.dtype = torch.float64
                      ) -> torch.Tensor:
    """Normalised 1-D Gaussian taps, centred, ``size`` odd."""
    radius = size // 2
    x = torch.arange(-radius, radius + 1, dtype=dtype)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _filter_valid(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter without padding (valid positions only)."""
    c = x.shape[1]
    kh = k.view(1, 1, -1, 1).expand(c, 1, -1, 1)
    kw = k.view(1, 1, 1, -1).expand(c, 1, 1, -1)
    return F.conv2d(F.conv2d(x, kh, groups=c), kw, groups=c)


def ssim_map(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, window: int = SSIM_WINDOW,
             sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """Per-channel SSIM map over the valid region, ``(B, C, H − window + 1, W − window + 1)``, float64."""
    pred, target = _check_pair(pred, target)
    if min(pred.shape[-2:]) < window:
        raise ValueError(f"SSIM needs images at least {window}×{window}, got {tuple(pred.shape[-2:])}")
    x, y = pred.double(), target.double()
    k = gaussian_kernel1d(window, sigma).to(x.device)
    mu_x, mu_y = _filter_valid(x, k), _filter_valid(y, k)
    var_x = _filter_valid(x * x, k) - mu_x**2
    var_y = _filter_valid(y * y, k) - mu_y**2
    cov = _filter_valid(x * y, k) - mu_x * mu_y
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))


def ssim(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM per image ``(B,)`` (mean over channels and valid positions)."""
    return ssim_map(pred, target, data_range).mean(dim=(1, 2, 3)).float()

