"""Detect images that carry no colour (greyscale scans, sepia-free black-and-white photos).

The rule, used everywhere in fewcolor (dataset scans, recipes, benchmark filters):

    an image is **grey** when at most 1 % of its pixels have a channel spread
    ``max(R, G, B) − min(R, G, B)`` greater than 12/255.

12/255 tolerates JPEG chroma noise and slight tints of scanned prints; 1 % tolerates a few coloured
pixels (a watermark, compression ringing at edges). Such images teach a colourisation network
nothing and are skipped from training data.
"""

from __future__ import annotations

import torch

__all__ = ["GREY_FRACTION", "GREY_SPREAD", "colour_fraction", "is_grey"]

GREY_SPREAD = 12.0 / 255.0
GREY_FRACTION = 0.01


def colour_fraction(rgb: torch.Tensor) -> torch.Tensor:
    """Fraction of pixels whose RGB spread exceeds 12/255; ``(3,H,W)`` → scalar, ``(B,3,H,W)`` → ``(B,)``."""
    if rgb.dim() not in (3, 4) or rgb.shape[-3] != 3:
        raise ValueError(f"is_grey expects (3, H, W) or (B, 3, H, W) RGB, got shape {tuple(rgb.shape)}")
    x = rgb.float()
    spread = x.amax(dim=-3) - x.amin(dim=-3)
    return (spread > GREY_SPREAD).float().mean(dim=(-2, -1))


def is_grey(rgb: torch.Tensor) -> bool | torch.Tensor:
    """True when ≤ 1 % of pixels have an RGB channel spread > 12/255 (see the module docstring).

    A single image ``(3, H, W)`` gives a Python bool; a batch ``(B, 3, H, W)`` gives a BoolTensor ``(B,)``.
    """
    grey = colour_fraction(rgb) <= GREY_FRACTION
    return bool(grey) if rgb.dim() == 3 else grey
