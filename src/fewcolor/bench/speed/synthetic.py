"""Smooth random colour images for the speed benchmark (where no real images are on the machine)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["smooth_images"]


def smooth_images(n: int, size: tuple[int, int], coarse: tuple[int, int],
                  generator: torch.Generator | int = 0, grain: float = 0.0) -> torch.Tensor:
    """``n`` images ``(n, 3, H, W)`` in ``[0, 1]``: uniform noise of ``coarse`` = (h, w) pixels upsampled
    bicubically to ``size`` = (H, W), plus Gaussian grain of standard deviation ``grain``, clamped.

    ``generator`` is a seed or a ``torch.Generator`` (drawn from in place: consecutive calls continue its
    stream); the coarse noise of all ``n`` images is drawn before their grain."""
    g = generator if isinstance(generator, torch.Generator) else torch.Generator().manual_seed(generator)
    low = torch.rand(n, 3, *coarse, generator=g)
    images = F.interpolate(low, size=size, mode="bicubic", align_corners=False)
    if grain:
        images = images + grain * torch.randn(images.shape, generator=g)
    return images.clamp(0, 1)
