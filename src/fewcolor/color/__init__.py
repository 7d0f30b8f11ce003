"""Colour science: Lab conversion, ab bins, soft-encoding, priors, decoding, palettes, distances.

See docs/COLOR.md. Submodules: ``lab``, ``normalize``, ``bins``, ``soft_encode``, ``prior``, ``decode``,
``features``, ``distances``, ``ciede2000``.
"""

from fewcolor.color.bins import Q, ab_bin_centers, nearest_bin, nearest_bins
from fewcolor.color.ciede2000 import delta_e_2000, palette_distance
from fewcolor.color.decode import annealed_mean
from fewcolor.color.distances import symmetric_kl
from fewcolor.color.features import ab_distribution, dominant_colors, palette_from_hex
from fewcolor.color.lab import grey_rgb_from_l, lab_to_rgb, merge_l_ab, rgb_to_l, rgb_to_lab
from fewcolor.color.normalize import (
    NORMALIZATION,
    denormalize_ab,
    denormalize_l,
    normalize_ab,
    normalize_l,
)
from fewcolor.color.prior import bin_prior, rebalance_weights
from fewcolor.color.soft_encode import soft_encode_ab, soft_encode_ab_normalized

__all__ = [
    "NORMALIZATION",
    "Q",
    "ab_bin_centers",
    "ab_distribution",
    "annealed_mean",
    "bin_prior",
    "delta_e_2000",
    "denormalize_ab",
    "denormalize_l",
    "dominant_colors",
    "grey_rgb_from_l",
    "lab_to_rgb",
    "merge_l_ab",
    "nearest_bin",
    "nearest_bins",
    "normalize_ab",
    "normalize_l",
    "palette_distance",
    "palette_from_hex",
    "rebalance_weights",
    "rgb_to_l",
    "rgb_to_lab",
    "soft_encode_ab",
    "soft_encode_ab_normalized",
    "symmetric_kl",
]
