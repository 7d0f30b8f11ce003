"""Zhang et al. 2016 class-rebalanced multinomial cross-entropy (§2.1, Eq. 2 and 4).

``L(Ẑ, Z) = -Σ_{h,w} v(Z_{h,w}) Σ_q Z_{h,w,q} log Ẑ_{h,w,q}`` with ``Ẑ = softmax(logits)``, ``Z`` the
soft-encoded ground truth (5 nearest bins, Gaussian σ = 5) and ``v(Z_{h,w}) = w_{q*}``, the rebalancing
weight of the pixel's true bin ``q* = argmax_q Z_{h,w,q}``. We average over pixels instead of summing
(only the scale of the loss changes; it no longer grows with the image size).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def true_bin_weights(target: torch.Tensor, bin_weights: torch.Tensor) -> torch.Tensor:
    """``v(Z)``: per-pixel weight ``w[argmax_q Z]`` for soft targets ``(B,Q,h,w)`` → ``(B,h,w)``."""
    if target.shape[1] != bin_weights.numel():
        raise ValueError(f"target has {target.shape[1]} bins but bin_weights has {bin_weights.numel()}")
    return bin_weights.to(target.device, target.dtype)[target.argmax(dim=1)]


def rebalanced_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, bin_weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Eq. 2 (mean over pixels): logits and soft targets ``(B,Q,h,w)``; ``bin_weights`` ``(Q,)`` or
    None for no rebalancing (λ = 1 gives uniform weights anyway)."""
    if logits.shape != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(target.shape)} differ")
    per_pixel = -(target * F.log_softmax(logits.float(), dim=1)).sum(dim=1)
    if bin_weights is not None:
        per_pixel = per_pixel * true_bin_weights(target, bin_weights)
    return per_pixel.mean()
