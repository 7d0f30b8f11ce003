"""Zhang et al. 2016 class-rebalanced multinomial cross-entropy (§2.1, Eq. 2 and 4).

``L(Ẑ, Z) = -Σ_{h,w} v(Z_{h,w}) Σ_q Z_{h,w,q} log Ẑ_{h,w,q}`` with ``Ẑ = softmax(logits)``, ``Z`` the
soft-encoded ground truth (5 nearest bins, Gaussian σ = 5) and ``v(Z_{h,w}) = w_{q*}``, the rebalancing
weight of the pixel's true bin ``q* = argmax_q Z_{h,w,q}``.

``reduction="sum"`` (the paper's): the sum over an image's pixels, averaged over the batch. The scale matters
because Zhang et al.'s weight decay (10⁻³, Caffe's L2 term added to the gradient, as ``torch.optim.Adam``'s
``weight_decay``) is added to this gradient: with a per-pixel mean instead, the decay is H·W times (4,096 at
the paper's 64×64 logits) stronger relative to the data term. ``reduction="mean"`` (the mean over pixels and
images) is kept as an option.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def true_bin_weights(target: torch.Tensor, bin_weights: torch.Tensor) -> torch.Tensor:
    """``v(Z)``: per-pixel weight ``w[argmax_q Z]`` for soft targets ``(B,Q,h,w)`` → ``(B,h,w)``."""
    if target.shape[1] != bin_weights.numel():
        raise ValueError(f"target has {target.shape[1]} bins but bin_weights has {bin_weights.numel()}")
    return bin_weights.to(target.device, target.dtype)[target.argmax(dim=1)]


REDUCTIONS = ("sum", "mean")


def rebalanced_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, bin_weights: torch.Tensor | None = None, reduction: str = "sum"
) -> torch.Tensor:
    """Eq. 2: logits and soft targets ``(B,Q,h,w)``; ``bin_weights`` ``(Q,)`` or None for no rebalancing
    (λ = 1 gives uniform weights anyway). ``reduction``: ``"sum"`` over pixels, mean over images (Eq. 2 per
    image), or ``"mean"`` over pixels and images."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if logits.shape != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(target.shape)} differ")
    per_pixel = -(target * F.log_softmax(logits.float(), dim=1)).sum(dim=1)
    if bin_weights is not None:
        per_pixel = per_pixel * true_bin_weights(target, bin_weights)
    if reduction == "mean":
        return per_pixel.mean()
    return per_pixel.sum(dim=(1, 2)).mean()
