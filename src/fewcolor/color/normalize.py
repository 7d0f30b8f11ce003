"""The one normalisation convention for network inputs and outputs.

Networks see L in [-1, 1] (L/50 - 1) and predict ab in about [-1, 1] (ab/110).
Every method, dataset and pipeline uses these four functions and nothing else.
"""

from __future__ import annotations

import torch

L_CENTER = 50.0
L_SCALE = 50.0
AB_SCALE = 110.0

NORMALIZATION = {"l": "L/50-1", "ab": "ab/110"}


def normalize_l(l: torch.Tensor) -> torch.Tensor:
    """L in [0, 100] -> [-1, 1]."""
    return (l - L_CENTER) / L_SCALE


def denormalize_l(l_norm: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> L in [0, 100]."""
    return l_norm * L_SCALE + L_CENTER


def normalize_ab(ab: torch.Tensor) -> torch.Tensor:
    """ab in Lab units -> ab/110."""
    return ab / AB_SCALE


def denormalize_ab(ab_norm: torch.Tensor) -> torch.Tensor:
    """ab/110 -> ab in Lab units."""
    return ab_norm * AB_SCALE
