"""Distances between colour distributions."""

from __future__ import annotations

import torch

EPS = 1e-8


def symmetric_kl(p: torch.Tensor, q: torch.Tensor, dim: int = -1, eps: float = EPS) -> torch.Tensor:
    """Symmetric Kullback–Leibler divergence ``KL(p‖q) + KL(q‖p)`` along ``dim`` (batched).

    ``= Σ (p − q)(log p − log q)``. Both inputs are clamped to ``eps`` and renormalised to sum 1 along
    ``dim`` first, so empty bins (zeros) give a finite value. Non-negative, zero iff ``p = q``, symmetric.
    Used to compare ab distributions of images (e.g. the 313-bin histograms of
    ``fewcolor.color.features.ab_distribution``).
    """
    if p.shape != q.shape:
        raise ValueError(f"symmetric_kl: shapes differ {tuple(p.shape)} vs {tuple(q.shape)}")
    p = p.clamp_min(eps)
    q = q.clamp_min(eps)
    p = p / p.sum(dim=dim, keepdim=True)
    q = q / q.sum(dim=dim, keepdim=True)
    return ((p - q) * (p.log() - q.log())).sum(dim=dim)
