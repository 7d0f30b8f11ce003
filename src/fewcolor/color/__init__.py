"""Colour science: Lab conversion, ab bins, soft-encoding, priors, decoding, palettes, distances."""

from fewcolor.color.lab import grey_rgb_from_l, lab_to_rgb, merge_l_ab, rgb_to_l, rgb_to_lab
from fewcolor.color.normalize import (
    NORMALIZATION,
    denormalize_ab,
    denormalize_l,
    normalize_ab,
    normalize_l,
)

__all__ = [
    "NORMALIZATION",
    "denormalize_ab",
    "denormalize_l",
    "grey_rgb_from_l",
    "lab_to_rgb",
    "merge_l_ab",
    "normalize_ab",
    "normalize_l",
    "rgb_to_l",
    "rgb_to_lab",
]
