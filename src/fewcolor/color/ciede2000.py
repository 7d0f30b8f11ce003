"""CIEDE2000 colour difference in torch, and a palette distance built on it.

Implements the formulas exactly as written in G. Sharma, W. Wu, E. N. Dalal, "The CIEDE2000 color-difference
formula: implementation notes, supplementary test data, and mathematical observations", Color Research &
Application 30(1), 2005 (Eqs. 1–22), including their rules for the hue difference and mean hue when a
chroma is zero. Batched over ``(..., 3)`` Lab tensors (L in [0, 100]); computed in float64 and returned in
the input dtype. Gradients are finite everywhere (zero-chroma and identical colours included).
"""

from __future__ import annotations

from typing import Literal

import torch

from fewcolor.color.lab import rgb_to_lab

_25_POW_7 = 25.0**7


def _safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """sqrt with a zero (not NaN/inf) gradient at 0."""
    positive = x > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))), torch.zeros_like(x))


def _hue_degrees(b: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """atan2 in degrees mapped to [0, 360); 0 where a = b = 0 (Sharma Eq. 4), with a finite gradient."""
    zero = (a == 0) & (b == 0)
    h = torch.rad2deg(torch.atan2(torch.where(zero, torch.zeros_like(b), b), torch.where(zero, torch.ones_like(a), a)))
    return torch.where(h < 0, h + 360.0, h)


def delta_e_2000(
    lab1: torch.Tensor, lab2: torch.Tensor, k_l: float = 1.0, k_c: float = 1.0, k_h: float = 1.0
) -> torch.Tensor:
    """CIEDE2000 ΔE00 between Lab colours ``(..., 3)`` (broadcast); returns ``(...)``.

    Sharma, Wu & Dalal (2005), Eqs. 1–22, with parametric factors ``k_L = k_C = k_H = 1`` by default.
    """
    if lab1.shape[-1] != 3 or lab2.shape[-1] != 3:
        raise ValueError(f"delta_e_2000 expects (..., 3) Lab tensors, got {tuple(lab1.shape)}, {tuple(lab2.shape)}")
    out_dtype = torch.promote_types(lab1.dtype, lab2.dtype)
    if not out_dtype.is_floating_point:
        out_dtype = torch.float32
    l1, a1, b1 = lab1.double().unbind(-1)
    l2, a2, b2 = lab2.double().unbind(-1)

    # Eqs. 2-7: a' rescaling by G, then C', h'
    c_bar = 0.5 * (_safe_sqrt(a1 * a1 + b1 * b1) + _safe_sqrt(a2 * a2 + b2 * b2))
    c_bar7 = c_bar.pow(7)
    g = 0.5 * (1.0 - _safe_sqrt(c_bar7 / (c_bar7 + _25_POW_7)))
    a1p, a2p = (1.0 + g) * a1, (1.0 + g) * a2
    c1p, c2p = _safe_sqrt(a1p * a1p + b1 * b1), _safe_sqrt(a2p * a2p + b2 * b2)
    h1p, h2p = _hue_degrees(b1, a1p), _hue_degrees(b2, a2p)

    # Eqs. 8-12: differences
    dl = l2 - l1
    dc = c2p - c1p
    cc = c1p * c2p
    chroma_zero = cc == 0
    dh = h2p - h1p
    dh = torch.where(dh > 180.0, dh - 360.0, torch.where(dh < -180.0, dh + 360.0, dh))
    dh = torch.where(chroma_zero, torch.zeros_like(dh), dh)
    d_hh = 2.0 * _safe_sqrt(cc) * torch.sin(torch.deg2rad(dh) / 2.0)

    # Eqs. 13-14: means (mean hue with the 360° wrap rules)
    l_mean = 0.5 * (l1 + l2)
    c_mean = 0.5 * (c1p + c2p)
    h_sum = h1p + h2p
    far = (h1p - h2p).abs() > 180.0
    h_mean = torch.where(far, torch.where(h_sum < 360.0, h_sum + 360.0, h_sum - 360.0), h_sum) / 2.0
    h_mean = torch.where(chroma_zero, h_sum, h_mean)

    # Eqs. 15-22: weighting functions and the rotation term
    def cosd(x: torch.Tensor) -> torch.Tensor:
        return torch.cos(torch.deg2rad(x))

    t = 1.0 - 0.17 * cosd(h_mean - 30.0) + 0.24 * cosd(2.0 * h_mean) + 0.32 * cosd(3.0 * h_mean + 6.0)
    t = t - 0.20 * cosd(4.0 * h_mean - 63.0)
    d_theta = 30.0 * torch.exp(-(((h_mean - 275.0) / 25.0) ** 2))
    c_mean7 = c_mean.pow(7)
    r_c = 2.0 * _safe_sqrt(c_mean7 / (c_mean7 + _25_POW_7))
    l50 = (l_mean - 50.0) ** 2
    s_l = 1.0 + 0.015 * l50 / torch.sqrt(20.0 + l50)
    s_c = 1.0 + 0.045 * c_mean
    s_h = 1.0 + 0.015 * c_mean * t
    r_t = -torch.sin(torch.deg2rad(2.0 * d_theta)) * r_c

    tl, tc, th = dl / (k_l * s_l), dc / (k_c * s_c), d_hh / (k_h * s_h)
    return _safe_sqrt(tl * tl + tc * tc + th * th + r_t * tc * th).to(out_dtype)


PaletteMatch = Literal["ordered", "nearest"]


def palette_distance(
    palette1: torch.Tensor,
    palette2: torch.Tensor,
    match: PaletteMatch = "ordered",
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean ΔE00 between two palettes of sRGB colours in [0, 1], ``(..., K, 3)``; returns ``(...)``.

    ``match="ordered"`` (default) compares colour i with colour i — palettes from
    :func:`fewcolor.color.features.dominant_colors` are sorted by pixel share, and MemoPainter
    (Yoo et al., CVPR 2019) uses the dominant colours in that order. ``match="nearest"`` pairs every colour
    of ``palette1`` with its nearest (ΔE00) colour of ``palette2`` and the other way round, and averages the
    two directions (a symmetric chamfer distance that ignores order). ``weights`` ``(..., K)`` (e.g. pixel
    shares) replace the plain mean by a weighted mean; in "nearest" mode they weight ``palette1``'s side and
    the other direction stays unweighted.
    """
    if palette1.shape[-1] != 3 or palette2.shape[-1] != 3:
        raise ValueError(f"palettes must be (..., K, 3) RGB, got {tuple(palette1.shape)}, {tuple(palette2.shape)}")
    lab1 = rgb_to_lab(palette1.movedim(-1, -2).unsqueeze(-1)).squeeze(-1).movedim(-2, -1)
    lab2 = rgb_to_lab(palette2.movedim(-1, -2).unsqueeze(-1)).squeeze(-1).movedim(-2, -1)

    def mean(values: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
        if w is None:
            return values.mean(dim=-1)
        w = w.to(values.dtype)
        return (values * w).sum(dim=-1) / w.sum(dim=-1).clamp_min(1e-12)

    if match == "ordered":
        if palette1.shape[-2] != palette2.shape[-2]:
            raise ValueError("match='ordered' needs palettes of the same length; use match='nearest'")
        return mean(delta_e_2000(lab1, lab2), weights)
    if match == "nearest":
        pairwise = delta_e_2000(lab1.unsqueeze(-2), lab2.unsqueeze(-3))  # (..., K1, K2)
        forward = mean(pairwise.min(dim=-1).values, weights)
        backward = pairwise.min(dim=-2).values.mean(dim=-1)
        return 0.5 * (forward + backward)
    raise ValueError(f"match must be 'ordered' or 'nearest', got {match!r}")


__all__ = ["delta_e_2000", "palette_distance"]
