"""sRGB <-> CIE Lab (D65), batched and differentiable, via kornia.

Inputs are float tensors shaped (..., 3, H, W). RGB is sRGB in [0, 1]; Lab has L in [0, 100].
"""

from __future__ import annotations

import kornia.color
import torch


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] -> Lab (D65). Values outside [0, 1] are clamped first."""
    return kornia.color.rgb_to_lab(rgb.float().clamp(0.0, 1.0))


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """Lab (D65) -> sRGB in [0, 1]; out-of-gamut colours are clipped on the way back."""
    return kornia.color.lab_to_rgb(lab.float(), clip=True)


def rgb_to_l(rgb: torch.Tensor) -> torch.Tensor:
    """Lightness channel only, shaped (..., 1, H, W)."""
    return rgb_to_lab(rgb)[..., :1, :, :]


def merge_l_ab(l: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Concatenate L (…,1,H,W) and ab (…,2,H,W) into Lab and convert to sRGB."""
    return lab_to_rgb(torch.cat([l, ab], dim=-3))


def grey_rgb_from_l(l: torch.Tensor) -> torch.Tensor:
    """The grey image a person sees for a given L: Lab (L, 0, 0) in sRGB."""
    return merge_l_ab(l, torch.zeros_like(l).expand(*l.shape[:-3], 2, *l.shape[-2:]))
