"""Empirical ab-bin prior and class-rebalancing weights (Zhang et al. 2016, §2.2, Eqs. 3–4).

* :func:`bin_counts` counts the bins of a batch (hard: nearest bin; soft: 5-NN soft-encoding).
* :func:`bin_prior` iterates a dataset / loader, normalises the counts to ``p`` and smooths them with a
  Gaussian of σ = 5 ab units over the bin centres, giving ``p̃``.
* :func:`rebalance_weights`: ``w ∝ ((1 − λ)·p̃ + λ/Q)^−1`` normalised so that ``E_p̃[w] = Σ_q p̃_q w_q = 1``
  (Eq. 4, λ = 1/2). λ = 1 gives uniform weights equal to 1.

Priors are cached by :func:`fewcolor.data.cache.load_or_compute_prior`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from tqdm.auto import tqdm

from fewcolor.color.bins import Q, ab_bin_centers, nearest_bin
from fewcolor.color.normalize import denormalize_ab
from fewcolor.color.soft_encode import soft_encode_sum

SMOOTH_SIGMA = 5.0
LAMBDA = 0.5


def bin_counts(ab: torch.Tensor, soft: bool = False, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Bin counts (Q,), float64, of ab in **ab units**, ``(2, H, W)`` or ``(B, 2, H, W)``.

    ``mask`` (same shape without the channel axis, bool) keeps only the selected pixels.
    """
    if ab.dim() == 3:
        ab = ab.unsqueeze(0)
        mask = mask.unsqueeze(0) if mask is not None else None
    if soft:
        points = ab.detach().movedim(1, -1).reshape(-1, 2)
        keep = mask.reshape(-1).to(torch.float64) if mask is not None else None
        return soft_encode_sum(points, keep).cpu()
    idx = nearest_bin(ab)
    if mask is not None:
        idx = idx[mask.bool()]
    return torch.bincount(idx.reshape(-1).cpu(), minlength=Q).double()


def smooth_prior(prior: torch.Tensor, sigma: float = SMOOTH_SIGMA) -> torch.Tensor:
    """Gaussian smoothing over the ab plane restricted to the 313 bins, renormalised to sum 1.

    ``p̃_i ∝ Σ_j exp(−‖c_i − c_j‖² / 2σ²) p_j`` (Zhang §2.2: "smoothed with a Gaussian kernel G_σ"); mass
    that would fall on out-of-gamut grid points is dropped by the renormalisation. σ = 0 returns ``p``.
    """
    p = prior.double() / prior.double().sum()
    if sigma <= 0:
        return p
    centers = ab_bin_centers().double()
    kernel = torch.exp(-torch.cdist(centers, centers).square() / (2.0 * sigma * sigma))
    smoothed = kernel @ p
    return smoothed / smoothed.sum()


def _ab_of(batch: Any, key: str) -> torch.Tensor:
    if isinstance(batch, Mapping):
        if key not in batch:
            raise KeyError(f"bin_prior: batch has no {key!r} entry (keys: {sorted(batch)}); pass ab_key=")
        return batch[key]
    if isinstance(batch, (tuple, list)):
        return batch[0]
    return batch


#: pixels gathered from consecutive batches before one binning pass (1M points: 8 MB of float32 ab)
PRIOR_CHUNK_PIXELS = 1 << 20


def bin_prior(
    batches: Iterable[Any],
    *,
    normalized: bool = True,
    soft: bool = False,
    sigma: float = SMOOTH_SIGMA,
    ab_key: str = "ab",
    max_batches: int | None = None,
    progress: bool = True,
    total: int | None = None,
    unit: str = "img",
) -> torch.Tensor:
    """Smoothed empirical bin distribution ``p̃`` (Q,), float64, summing to 1 (Zhang §2.2).

    ``batches`` yields ab tensors ``(2,H,W)`` / ``(B,2,H,W)``, or dataset samples / collated batches
    (dicts, whose ``ab_key`` entry is used; tuples, whose first item is used). ``normalized=True`` means the
    ab are in the network convention ``ab/110`` (dataset samples are); set False for ab units.

    The ab of consecutive batches are gathered up to :data:`PRIOR_CHUNK_PIXELS` pixels and binned in one
    vectorised pass (one :func:`~fewcolor.color.bins.nearest_bin` and one ``bincount``); the hard counts
    are exactly those of batch-by-batch binning. ``total`` (the number of batches, when ``batches`` has
    no length) gives the progress bar its ETA; ``unit`` names what a batch is on that bar.
    """
    counts = torch.zeros(Q, dtype=torch.float64)
    if total is None and hasattr(batches, "__len__"):
        total = len(batches)  # type: ignore[arg-type]
    if max_batches is not None and total is not None:
        total = min(total, max_batches)
    pending: list[torch.Tensor] = []
    pending_pixels = 0
    seen = 0
    for i, batch in enumerate(tqdm(batches, total=total, desc="ab prior", unit=unit, disable=not progress)):
        if max_batches is not None and i >= max_batches:
            break
        ab = _ab_of(batch, ab_key).detach().float()
        points = (denormalize_ab(ab) if normalized else ab).movedim(-3, -1).reshape(-1, 2)
        pending.append(points)
        pending_pixels += points.shape[0]
        seen += 1
        if pending_pixels >= PRIOR_CHUNK_PIXELS:
            counts += _point_counts(torch.cat(pending), soft)
            pending, pending_pixels = [], 0
    if pending:
        counts += _point_counts(torch.cat(pending), soft)
    if counts.sum() <= 0:
        raise ValueError(f"bin_prior: no pixels seen in {seen} batches; is the dataset empty?")
    return smooth_prior(counts, sigma)


def _point_counts(points: torch.Tensor, soft: bool) -> torch.Tensor:
    """Bin counts (Q,) float64 of (N, 2) ab points in ab units (hard, or soft-encoded)."""
    if soft:
        return soft_encode_sum(points).cpu()
    return torch.bincount(nearest_bin(points, dim=-1).cpu(), minlength=Q).double()


def rebalance_weights(prior: torch.Tensor, lam: float = LAMBDA) -> torch.Tensor:
    """Class-rebalancing weights (Q,) of Zhang et al. 2016, Eq. 4.

    ``w ∝ ((1 − λ)·p̃ + λ/Q)^−1``, scaled so that ``Σ_q p̃_q w_q = 1``. Rare bins get larger weights;
    λ = 1 gives all ones. ``prior`` is normalised to sum 1 first. Same dtype as ``prior``.
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    p = prior.double() / prior.double().sum()
    w = 1.0 / ((1.0 - lam) * p + lam / p.numel())
    w = w / (p * w).sum()
    return w.to(prior.dtype if prior.is_floating_point() else torch.float64)


def prior_and_weights(prior: torch.Tensor, lam: float = LAMBDA) -> tuple[torch.Tensor, torch.Tensor]:
    """``(p̃, w)`` as float32 (Q,): ``prior`` normalised to sum 1 and its rebalancing weights (Eq. 4), the
    pair a 313-bin classifier keeps as buffers."""
    p = prior.double() / prior.double().sum()
    return p.float(), rebalance_weights(p, lam).float()
