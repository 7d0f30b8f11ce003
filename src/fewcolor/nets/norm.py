"""Normalisation layers by name, shared by the generators and discriminators, and batch norms held at their
running statistics for fine-tuning on a few images."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def make_norm(kind: str, channels: int) -> nn.Module:
    """A 2-D normalisation layer by name: ``batch``, ``instance`` (affine) or ``none``."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; use batch, instance or none")


def keep_norm_statistics(module: nn.Module) -> None:
    """Every batch-norm layer of ``module`` to eval mode: it normalises by its running statistics and no
    longer updates them, while the rest trains (fine-tuning on a few images: their batch statistics would
    replace the ones learnt from the whole training set)."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


class _AnyBatchMixin:
    """Batch norm that accepts a single value per channel while training.

    One value per channel (one vector, or one image whose features are 1×1) has no batch statistics
    (``nn.BatchNorm*`` raises), which breaks one-shot fine-tuning of Iizuka's global-features net on a
    single support image. Such a batch is normalised with the running statistics instead, which are
    left unchanged; any larger batch behaves exactly as the parent class. Parameters and buffers (and
    so checkpoints) are the same.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn: nn.modules.batchnorm._BatchNorm = self  # type: ignore[assignment]
        if bn.training and x.numel() == x.shape[1] and bn.running_mean is not None and bn.running_var is not None:
            return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
        return super().forward(x)  # type: ignore[misc]


class BatchNorm1dAnyBatch(_AnyBatchMixin, nn.BatchNorm1d):
    """``nn.BatchNorm1d`` that accepts a batch of one vector while training (see :class:`_AnyBatchMixin`)."""


class BatchNorm2dAnyBatch(_AnyBatchMixin, nn.BatchNorm2d):
    """``nn.BatchNorm2d`` that accepts one 1×1 feature map while training (see :class:`_AnyBatchMixin`)."""
