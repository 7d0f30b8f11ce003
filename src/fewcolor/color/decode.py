"""From a distribution over the 313 ab bins to one ab value per pixel (Zhang et al. 2016, §2.2, Eq. 5).

The annealed mean ``H(Z) = E[f_T(Z)]`` with ``f_T(z) = exp(log z / T) / Σ_q exp(log z_q / T)``: T = 1 is the
mean of the distribution (desaturated), T → 0 its mode (colourful but patchy). Zhang et al. use T = 0.38.
Since ``softmax(logits) = z``, ``f_T(z) = softmax(logits / T)``: working from the logits is the stable way.
"""

from __future__ import annotations

import torch

from fewcolor.color.bins import Q, ab_bin_centers

DEFAULT_TEMPERATURE = 0.38


def annealed_distribution(logits: torch.Tensor, temperature: float = DEFAULT_TEMPERATURE, dim: int = 1) -> torch.Tensor:
    """``f_T`` of Eq. 5 from logits: ``softmax(logits / T)`` along ``dim``; T = 0 gives the one-hot mode."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        idx = logits.argmax(dim=dim, keepdim=True)
        return torch.zeros_like(logits).scatter_(dim, idx, 1.0)
    return torch.softmax(logits / temperature, dim=dim)


def annealed_mean(
    logits: torch.Tensor,
    temperature: float = DEFAULT_TEMPERATURE,
    dim: int = 1,
    from_probs: bool = False,
) -> torch.Tensor:
    """Annealed-mean ab (Lab units) from per-pixel bin scores; Zhang et al. 2016, Eq. 5.

    ``logits``: ``(B, 313, H, W)`` (``dim=1``) or any shape with the 313 bins on ``dim``. With
    ``from_probs=True`` the input is the probability ``z`` itself and ``log z`` is used as logits.
    Returns ab with the bin axis replaced by 2 channels (a, b), e.g. ``(B, 2, H, W)``; divide by 110
    (``fewcolor.color.normalize.normalize_ab``) for the network convention. ``temperature=0`` is the mode,
    ``temperature=1`` the plain mean. Differentiable for T > 0.
    """
    if logits.shape[dim] != Q:
        raise ValueError(f"expected {Q} bins on dim {dim}, got shape {tuple(logits.shape)}")
    scores = logits.float()
    if from_probs:
        scores = scores.clamp_min(torch.finfo(torch.float32).tiny).log()
    # non-negative axes throughout: ONNX export writes a negative axis into Transpose's perm, which is invalid
    dim, last = dim % scores.dim(), scores.dim() - 1
    weights = annealed_distribution(scores, temperature, dim=dim).movedim(dim, last)
    ab = weights @ ab_bin_centers(weights.device)  # (..., 313) @ (313, 2)
    return ab.movedim(last, dim)
