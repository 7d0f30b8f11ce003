"""Empirical ab-bin prior and class-rebalancing weights (Zhang et al. 2016, §2.2, Eqs. 3–4).

* :func:`bin_counts` counts the bins of a batch (hard: nearest bin; soft: 5-NN soft-encoding).
* :func:`bin_prior` iterates a dataset / loader, normalises the counts to ``p`` and smooths them with a
  Gaussian of σ = 5 ab units over the bin centres, giving ``p̃``.
* :func:`rebalance_weights`: ``w ∝ ((1 − λ)·p̃ + λ/Q)^−1`` normalised so that ``E_p̃[w] = Σ_q p̃_q w_q = 1``
  (Eq. 4, λ = 1/2). λ = 1 gives uniform weights equal to 1.
* :func:`load_or_compute_prior` caches a prior per dataset key in
  ``$FEWCOLOR_HOME/priors`` (else ``$XDG_CACHE_HOME/fewcolor/priors``, else ``~/.cache/fewcolor/priors``)
  as safetensors with JSON metadata.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm

from fewcolor.color.bins import Q, ab_bin_centers, nearest_bin
from fewcolor.color.normalize import denormalize_ab
from fewcolor.color.soft_encode import soft_encode_sum

SMOOTH_SIGMA = 5.0
LAMBDA = 0.5
_PRIOR_KIND = "fewcolor-ab-prior"


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


def bin_prior(
    batches: Iterable[Any],
    *,
    normalized: bool = True,
    soft: bool = False,
    sigma: float = SMOOTH_SIGMA,
    ab_key: str = "ab",
    max_batches: int | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """Smoothed empirical bin distribution ``p̃`` (Q,), float64, summing to 1 (Zhang §2.2).

    ``batches`` yields ab tensors ``(2,H,W)`` / ``(B,2,H,W)``, or dataset samples / collated batches
    (dicts, whose ``ab_key`` entry is used; tuples, whose first item is used). ``normalized=True`` means the
    ab are in the network convention ``ab/110`` (dataset samples are); set False for ab units.
    """
    counts = torch.zeros(Q, dtype=torch.float64)
    total = len(batches) if hasattr(batches, "__len__") else None  # type: ignore[arg-type]
    if max_batches is not None and total is not None:
        total = min(total, max_batches)
    seen = 0
    for i, batch in enumerate(tqdm(batches, total=total, desc="ab prior", disable=not progress)):
        if max_batches is not None and i >= max_batches:
            break
        ab = _ab_of(batch, ab_key).float()
        counts += bin_counts(denormalize_ab(ab) if normalized else ab, soft=soft)
        seen += 1
    if counts.sum() <= 0:
        raise ValueError(f"bin_prior: no pixels seen in {seen} batches; is the dataset empty?")
    return smooth_prior(counts, sigma)


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


def cache_root() -> Path:
    """The fewcolor cache folder (see :mod:`fewcolor.home`)."""
    from fewcolor.home import fewcolor_home

    return fewcolor_home()


def prior_cache_path(key: str, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where :func:`load_or_compute_prior` keeps the prior for ``key``."""
    if not key:
        raise ValueError("prior cache key must be a non-empty string")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("._") or "prior"
    root = Path(cache_dir) if cache_dir is not None else cache_root() / "priors"
    return root / f"{safe}.safetensors"


def _read_prior(path: Path, key: str) -> torch.Tensor | None:
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = json.loads((f.metadata() or {}).get(_PRIOR_KIND, "null"))
            prior = f.get_tensor("prior")
    except (SafetensorError, OSError, ValueError, json.JSONDecodeError):
        return None  # unreadable cache entry: recompute and overwrite
    if not isinstance(meta, dict) or meta.get("key") != key or prior.shape != (Q,):
        return None
    return prior


def _write_prior(path: Path, prior: torch.Tensor, key: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        meta = json.dumps({"key": key, "q": Q})
        save_file({"prior": prior.detach().cpu().double().contiguous()}, tmp, metadata={_PRIOR_KIND: meta})
        os.replace(tmp, path)  # atomic: readers never see a half-written prior
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_or_compute_prior(
    key: str,
    compute_fn: Callable[[], torch.Tensor],
    cache_dir: str | os.PathLike[str] | None = None,
    refresh: bool = False,
) -> torch.Tensor:
    """The cached prior (Q,) float64 for ``key``, or ``compute_fn()`` stored under that key.

    ``key`` should identify the data and settings (e.g. ``"flowers12-train-hard-s5"``); the file is
    ``prior_cache_path(key, cache_dir)``. A corrupt or mismatching cache file is recomputed and replaced.
    """
    path = prior_cache_path(key, cache_dir)
    if not refresh and path.is_file():
        cached = _read_prior(path, key)
        if cached is not None:
            return cached
    prior = compute_fn().detach().double().cpu()
    if prior.shape != (Q,) or not torch.isfinite(prior).all() or prior.sum() <= 0:
        raise ValueError(f"load_or_compute_prior({key!r}): compute_fn returned an invalid prior {tuple(prior.shape)}")
    prior = prior / prior.sum()
    _write_prior(path, prior, key)
    return prior
