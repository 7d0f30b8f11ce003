"""The mean colour of each lightness band of some colour pixels, and its look-up for grey pixels.

A luminance-matched colour prior in the spirit of Welsh et al. (SIGGRAPH 2002, §2), who colour a grey
pixel from colour pixels of similar luminance: the lightness axis is cut into ``bins`` equal bands,
each band gets the (weighted) mean ab of the pixels in it, empty bands copy the nearest non-empty
band, and a grey pixel's ab is interpolated linearly between band centres. ``fewcolor``'s exemplar
method uses it where no support pixel matches (docs/EXEMPLAR.md); the ``lut`` baseline builds its table
with the same bands and filling (:func:`band_index`, :func:`nearest_filled`) and looks up the nearest band.
"""

from __future__ import annotations

import torch

#: normalised L range (fewcolor.color.normalize)
L_MIN, L_MAX = -1.0, 1.0


def band_index(value: torch.Tensor, lo: float, hi: float, bins: int) -> torch.Tensor:
    """The band of each lightness ``value`` when [``lo``, ``hi``] is cut into ``bins`` equal bands (values
    outside go to the first or last band; ``hi`` itself to the last)."""
    return ((value - lo) * (bins / (hi - lo))).floor().long().clamp(0, bins - 1)


def nearest_filled(mass: torch.Tensor) -> torch.Tensor:
    """For every band, the index of the nearest band with positive ``mass`` (ties: the lower, darker band).
    Needs at least one filled band."""
    filled = torch.nonzero(mass > 0).flatten()
    dist = (torch.arange(len(mass), device=mass.device)[:, None] - filled[None, :]).abs()
    return filled[dist.argmin(dim=1)]  # argmin takes the first minimum: the lower band


def luminance_lut(l: torch.Tensor, ab: torch.Tensor, weight: torch.Tensor | None = None, bins: int = 20
                  ) -> torch.Tensor:
    """``(bins, 2)`` mean ab per lightness band of pixels ``l`` (N,) in normalised units and ``ab`` (N, 2).

    ``weight`` (N,) ≥ 0 weights the pixels (default 1). With no weighted pixel at all the table is zero
    (grey).
    """
    if l.dim() != 1 or ab.shape != (l.shape[0], 2):
        raise ValueError(f"luminance_lut: l (N,) and ab (N,2), got {tuple(l.shape)} and {tuple(ab.shape)}")
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    w = torch.ones_like(l) if weight is None else weight.clamp_min(0).to(l)
    idx = band_index(l, L_MIN, L_MAX, bins)
    mass = torch.zeros(bins, dtype=l.dtype, device=l.device).index_add_(0, idx, w)
    sums = torch.zeros(bins, 2, dtype=l.dtype, device=l.device).index_add_(0, idx, ab * w[:, None])
    if not bool((mass > 0).any()):
        return torch.zeros(bins, 2, dtype=l.dtype, device=l.device)
    table = sums / mass.clamp_min(1e-12)[:, None]
    return table[nearest_filled(mass)]


def apply_luminance_lut(l: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """ab for normalised L ``(B,1,H,W)`` from a ``(bins, 2)`` table, linear between band centres: ``(B,2,H,W)``."""
    bins = table.shape[0]
    pos = ((l[:, 0] - L_MIN) / (L_MAX - L_MIN) * bins - 0.5).clamp(0, bins - 1)
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=bins - 1)
    t = (pos - lo)[..., None]
    ab = table[lo] * (1 - t) + table[hi] * t
    return ab.permute(0, 3, 1, 2).contiguous()
