"""Box filter and the (weighted) guided filter (He, Sun & Tang, "Guided Image Filtering", ECCV 2010 /
TPAMI 2013, Algorithm 1), batched, on ``(B,C,H,W)`` tensors.

The guided filter fits, in every ``(2r+1)²`` window ω_k, a linear model ``q = a_k I + b_k`` of the guide
``I`` to the input ``p`` (Eq. 5–6: ``a_k = cov_k(I,p) / (var_k(I) + ε)``, ``b_k = p̄_k − a_k μ_k``) and
averages the models of the windows that cover a pixel (Eq. 8). Edges of the output follow edges of the
guide. Colorization uses it with the lightness as the guide and ab as the input, so colour boundaries
snap to the grey image's edges.

Our extension (not in the paper): optional per-pixel weights ``w`` (e.g. a confidence). Every window
mean becomes a ``w``-weighted mean and the models are averaged with the weight mass of their window, so
unweighted pixels take their colour from their weighted neighbours through the local linear model;
``w ≡ 1`` gives the paper's filter exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-6


def _window_sum(x: torch.Tensor, radius: int, dim: int) -> torch.Tensor:
    """Sums over the window ``[i − r, i + r]`` along ``dim`` (zeros outside), from one cumulative sum."""
    pad = [0, 0] * (x.dim() - 1 - (dim % x.dim())) + [radius + 1, radius]
    c = F.pad(x, pad).cumsum(dim)
    n = x.shape[dim]
    return c.narrow(dim, 2 * radius + 1, n) - c.narrow(dim, 0, n)


def _window_count(n: int, radius: int, device: torch.device) -> torch.Tensor:
    """How many of ``0..n−1`` lie in ``[i − r, i + r]``, for each i."""
    i = torch.arange(n, device=device)
    return ((i + radius).clamp(max=n - 1) - (i - radius).clamp(min=0) + 1).float()


def box_sum(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Sum of ``(B,C,H,W)`` over each ``(2r+1)²`` window, clipped at the borders; O(1) per pixel in ``r``."""
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    return _window_sum(_window_sum(x, radius, -2), radius, -1)


def box_mean(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean of ``(B,C,H,W)`` over each ``(2r+1)²`` window, counting only pixels inside the image."""
    h, w = x.shape[-2:]
    count = _window_count(h, radius, x.device)[:, None] * _window_count(w, radius, x.device)[None, :]
    return box_sum(x, radius) / count.to(x.dtype)


def guided_filter(guide: torch.Tensor, src: torch.Tensor, radius: int, eps: float,
                  weight: torch.Tensor | None = None) -> torch.Tensor:
    """Filter ``src`` (B,C,H,W) with the edges of ``guide`` (B,1,H,W); optional weights (B,1,H,W) ≥ 0.

    ``eps`` is the regularisation ε of Eq. 6 in the guide's units squared (larger: smoother).
    Returns (B,C,H,W).
    """
    if guide.dim() != 4 or guide.shape[1] != 1 or src.dim() != 4 or src.shape[-2:] != guide.shape[-2:]:
        raise ValueError(f"guided_filter: guide (B,1,H,W) and src (B,C,H,W) of one size, got "
                         f"{tuple(guide.shape)} and {tuple(src.shape)}")
    ch = src.shape[1]
    w = torch.ones_like(guide) if weight is None else weight.clamp_min(0.0)
    wi = w * guide
    # one box pass over [w, wI, wI², wp, wIp] (the window means of Eq. 6, w-weighted)
    means = box_mean(torch.cat([w, wi, wi * guide, w * src, wi * src], dim=1), radius)
    mass = means[:, :1]
    denom = mass.clamp_min(EPS)
    mu_i, mu_ii = means[:, 1:2] / denom, means[:, 2:3] / denom
    mu_p, mu_ip = means[:, 3:3 + ch] / denom, means[:, 3 + ch:] / denom
    a = (mu_ip - mu_i * mu_p) / ((mu_ii - mu_i * mu_i).clamp_min(0.0) + eps)
    b = mu_p - a * mu_i
    # Eq. 8, each window's model weighted by its weight mass (all equal when w ≡ 1)
    avg = box_mean(torch.cat([mass, mass * a, mass * b], dim=1), radius)
    norm = avg[:, :1].clamp_min(EPS)
    return (avg[:, 1:1 + ch] * guide + avg[:, 1 + ch:]) / norm
