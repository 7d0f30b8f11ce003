"""Dropout with PyTorch's own masks, drawn faster where PyTorch draws them one element at a time.

On a CPU PyTorch's dropout draws its mask with ``bernoulli_``. Except on Intel CPUs with MKL (where
MKL's generator fills it in parallel), that kernel takes, element after element, one uniform double
from the global generator and keeps the element when it is below the keep probability: exactly what
``torch.rand(..., dtype=torch.float64) < keep`` computes, from the same generator state, through a
faster loop (2.2× on the U-Net's three dropout layers, docs/PERFORMANCE.md). :class:`Dropout` draws
that way there, so the masks, the outputs and the generator state afterwards are the same bit for bit
(tested), and keeps ``nn.Dropout``'s kernel everywhere else (MKL on Intel, other dtypes, other
devices, in-place dropout, under ``torch.compile``).
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from fewcolor.hardware import cpu_vendor


@functools.lru_cache(maxsize=1)
def bernoulli_draws_serially() -> bool:
    """Whether PyTorch's CPU ``bernoulli_(p)`` draws one uniform double per element from the global
    generator: built without MKL, or on a CPU that its MKL branch does not take (not Intel; known vendor)."""
    vendor = cpu_vendor()
    return not torch.backends.mkl.is_available() or vendor not in ("", "GenuineIntel")


class Dropout(nn.Dropout):
    """``nn.Dropout`` (same masks, same results) with a faster mask draw where PyTorch draws serially."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and 0 < self.p < 1 and not self.inplace and x.device.type == "cpu"
                and x.dtype == torch.float32 and not torch.compiler.is_compiling() and bernoulli_draws_serially()):
            return super().forward(x)
        keep = 1 - self.p
        noise = (torch.rand(x.shape, dtype=torch.float64) < keep).to(x.dtype).div_(keep)
        return x * noise
