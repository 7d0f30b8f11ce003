"""Dropout whose masks are drawn faster where PyTorch draws them one element at a time.

On a CPU PyTorch's dropout draws its mask with ``bernoulli_``. Except on Intel CPUs with MKL (where
MKL's generator fills it in parallel), that kernel takes, element after element, one uniform double
from the global generator and keeps the element when it is below the keep probability. There
:class:`Dropout` draws instead:

- at ``p = 0.5`` (pix2pix's, so the U-Net's): one random *bit* per element, eight from each uniform
  byte that ``random_`` draws from the global generator: the same distribution (each element kept
  independently with probability 1/2), an eighth of the generator calls, and a mask that is no longer
  PyTorch's bit for bit (a departure from ``nn.Dropout``'s stream, not its law; still fixed by the
  seed). The unet cpu preset's three dropout layers took 4.9 → 0.8 ms (docs/PERFORMANCE.md);
- at any other ``p``: ``torch.rand(..., dtype=torch.float64) < keep``, exactly what ``bernoulli_``
  computes from the same generator state through a faster loop, so masks, outputs and the generator
  state afterwards equal ``nn.Dropout``'s bit for bit (tested).

Everywhere else ``nn.Dropout``'s kernel runs (MKL on Intel, other dtypes, other devices, in-place
dropout, under ``torch.compile``).
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from fewcolor.hardware import cpu_vendor

#: the weights of a byte's eight bits, to spread one uniform byte over eight mask elements
_BIT_WEIGHTS = (1, 2, 4, 8, 16, 32, 64, 128)


@functools.lru_cache(maxsize=1)
def bernoulli_draws_serially() -> bool:
    """Whether PyTorch's CPU ``bernoulli_(p)`` draws one uniform double per element from the global
    generator: built without MKL, or on a CPU that its MKL branch does not take (not Intel; known vendor)."""
    vendor = cpu_vendor()
    return not torch.backends.mkl.is_available() or vendor not in ("", "GenuineIntel")


def fair_coin_mask(shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
    """A boolean tensor of ``shape`` whose elements are independent fair coins: eight per uniform byte
    drawn from the global generator (``random_`` on ``uint8`` covers 0–255)."""
    n = math.prod(shape)
    draws = torch.empty((n + 7) // 8, dtype=torch.uint8).random_()
    bits = draws.unsqueeze(-1).bitwise_and(torch.tensor(_BIT_WEIGHTS, dtype=torch.uint8)).ne(0)
    return bits.view(-1)[:n].view(shape)


class Dropout(nn.Dropout):
    """``nn.Dropout`` with a faster mask draw where PyTorch draws serially (see the module docstring)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and 0 < self.p < 1 and not self.inplace and x.device.type == "cpu"
                and x.dtype == torch.float32 and not torch.compiler.is_compiling() and bernoulli_draws_serially()):
            return super().forward(x)
        keep = 1 - self.p
        kept = fair_coin_mask(x.shape) if self.p == 0.5 else torch.rand(x.shape, dtype=torch.float64) < keep
        return x * kept.to(x.dtype).div_(keep)
