"""Soft-encoding of ab images onto the 313 bins (Zhang et al. 2016, §2.1).

Each ab vector is spread over its ``k = 5`` nearest bin centres with weights proportional to a Gaussian
of the distance, ``exp(-‖ab − c‖² / 2σ²)`` with ``σ = 5`` (ab units), normalised to sum to 1. This is the
target ``Z`` of the multinomial cross-entropy loss (Eq. 2).

``soft_encode_ab`` takes ab in **Lab units**; ``soft_encode_ab_normalized`` takes the network convention
``ab/110`` (fewcolor.color.normalize) and converts first.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from fewcolor.color.bins import CHUNK_PIXELS, Q, _points_last, nearest_bins
from fewcolor.color.normalize import denormalize_ab

NEIGHBOURS = 5
SIGMA = 5.0


def soft_encode_points(
    points: torch.Tensor, k: int = NEIGHBOURS, sigma: float = SIGMA, chunk: int = CHUNK_PIXELS
) -> torch.Tensor:
    """(N, 2) ab vectors in ab units -> (N, Q) soft-encodings, each row summing to 1."""
    if not 1 <= k <= Q:
        raise ValueError(f"k must be in [1, {Q}], got {k}")
    points = points.float()
    out = torch.zeros(points.shape[0], Q, dtype=torch.float32, device=points.device)
    for start, idx, weights in _neighbour_weights(points, k, sigma, chunk):
        out[start : start + idx.shape[0]].scatter_(1, idx, weights)
    return out


def _neighbour_weights(
    points: torch.Tensor, k: int, sigma: float, chunk: int
) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """Yield ``(start, idx (n, k), weights (n, k))`` per chunk of (N, 2) ab points."""
    for start in range(0, points.shape[0], chunk):
        dist, idx = nearest_bins(points[start : start + chunk], k)
        # softmax of -d²/2σ² == normalised Gaussian weights, but stable for far-out-of-gamut inputs
        yield start, idx, torch.softmax(-dist.square() / (2.0 * sigma * sigma), dim=1)


def soft_encode_sum(
    points: torch.Tensor,
    pixel_weights: torch.Tensor | None = None,
    k: int = NEIGHBOURS,
    sigma: float = SIGMA,
    chunk: int = CHUNK_PIXELS,
) -> torch.Tensor:
    """``Σ_n pixel_weights[n] · soft_encode(points[n])`` as a (Q,) float64 vector, without materialising the
    (N, Q) encoding (memory O(chunk·Q) whatever N). Used for soft histograms and priors."""
    if not 1 <= k <= Q:
        raise ValueError(f"k must be in [1, {Q}], got {k}")
    points = points.float()
    total = torch.zeros(Q, dtype=torch.float64, device=points.device)
    for start, idx, weights in _neighbour_weights(points, k, sigma, chunk):
        w = weights.double()
        if pixel_weights is not None:
            w = w * pixel_weights[start : start + idx.shape[0], None].to(w)
        total.index_add_(0, idx.reshape(-1), w.reshape(-1))
    return total


def soft_encode_ab(ab: torch.Tensor, k: int = NEIGHBOURS, sigma: float = SIGMA) -> torch.Tensor:
    """ab in ab units, ``(B, 2, H, W)`` or ``(2, H, W)`` -> soft-encoding ``(B, 313, H, W)`` / ``(313, H, W)``.

    Zhang et al. 2016, §2.1: 5 nearest neighbours, Gaussian weights with σ = 5; the 313 channels of every
    pixel sum to 1. Not differentiable with respect to ``ab`` (it is a training target). The bins' axis is a
    strided view over pixel-major memory (channels-last for ``(B, 313, H, W)``), the layout the loss reads
    (:func:`fewcolor.losses.cic.rebalanced_cross_entropy`): no transposing copy of the 313 channels.
    """
    if ab.dim() not in (3, 4):
        raise ValueError(f"soft_encode_ab expects (2,H,W) or (B,2,H,W) ab, got shape {tuple(ab.shape)}")
    points, rest = _points_last(ab.detach(), -3)
    encoded = soft_encode_points(points, k=k, sigma=sigma)
    return encoded.reshape(*rest, Q).movedim(-1, -3)


def soft_encode_ab_normalized(ab_norm: torch.Tensor, k: int = NEIGHBOURS, sigma: float = SIGMA) -> torch.Tensor:
    """Same as :func:`soft_encode_ab` for network-normalised ab (``ab/110``, as in dataset samples)."""
    return soft_encode_ab(denormalize_ab(ab_norm), k=k, sigma=sigma)
