"""Pixel reconstruction losses on normalised ab: ``λ_L1·|ŷ-y|₁ + λ_L2·||ŷ-y||²`` (means over pixels).

pix2pix (Isola et al. 2017, Eq. 4) adds λ·L1 with λ = 100 to the GAN objective; Fabbri & Islam's
family also uses L2. Defaults λ_L1 = 100, λ_L2 = 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class PixelLoss:
    """Weighted sum of L1 and L2 (MSE) between a prediction and its target."""

    def __init__(self, l1: float = 100.0, l2: float = 0.0) -> None:
        if l1 < 0 or l2 < 0:
            raise ValueError(f"pixel loss weights must be >= 0, got l1={l1}, l2={l2}")
        self.l1 = float(l1)
        self.l2 = float(l2)

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """The weighted loss and the unweighted terms for the logs (``l1``, ``l2``)."""
        if pred.shape != target.shape:
            raise ValueError(f"PixelLoss: prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ")
        l1 = F.l1_loss(pred, target)
        l2 = F.mse_loss(pred, target)
        total = pred.new_zeros(())
        if self.l1:
            total = total + self.l1 * l1
        if self.l2:
            total = total + self.l2 * l2
        return total, {"l1": float(l1.detach()), "l2": float(l2.detach())}
