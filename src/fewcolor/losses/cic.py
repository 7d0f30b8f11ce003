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


def true_bin_weights(target: torch.Tensor, bin_weights: torch.Tensor, bins_dim: int = 1) -> torch.Tensor:
    """``v(Z)``: per-pixel weight ``w[argmax_q Z]`` for soft targets ``(B,Q,h,w)`` → ``(B,h,w)`` (the bins on
    ``bins_dim``: ``-1`` for ``(B,h,w,Q)``)."""
    if target.shape[bins_dim] != bin_weights.numel():
        raise ValueError(f"target has {target.shape[bins_dim]} bins but bin_weights has {bin_weights.numel()}")
    return bin_weights.to(target.device, target.dtype)[target.argmax(dim=bins_dim)]


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
    # computed bins-last, (B,h,w,Q): a view without a copy for channels-last logits and for the targets of
    # soft_encode_ab, whose memory is pixel-major; across the bins' axis of that memory each pass is strided
    # (the CIC cpu preset's step spent ~18 of its ~50 ms in copies and strided passes of these tensors); for
    # NCHW logits (a network that is not channels-last, e.g. on a GPU) the transposing copy moves from the
    # targets to the logits
    logits_last, target_last = logits.float().movedim(1, -1), target.movedim(1, -1)
    per_pixel = -(target_last * F.log_softmax(logits_last, dim=-1)).sum(dim=-1)
    if bin_weights is not None:
        per_pixel = per_pixel * true_bin_weights(target_last, bin_weights, bins_dim=-1)
    if reduction == "mean":
        return per_pixel.mean()
    return per_pixel.sum(dim=(1, 2)).mean()
