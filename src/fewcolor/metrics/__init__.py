"""Colorization metrics, one definition each (batched torch, RGB in [0, 1]).

See docs/METRICS.md for the exact definitions, variants and protocol.
"""

from fewcolor.metrics.color import (
    auc_ab,
    colorfulness_abs,
    colorfulness_hs,
    delta_colorfulness,
    mean_delta_e2000,
)
from fewcolor.metrics.fid import (
    InceptionFeatures,
    feature_statistics,
    fid_from_features,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
)
from fewcolor.metrics.lpips import LPIPS
from fewcolor.metrics.pixel import psnr, ssim
from fewcolor.metrics.stats import mean_ci95
from fewcolor.metrics.temporal import temporal_ab_change

__all__ = [
    "LPIPS",
    "InceptionFeatures",
    "auc_ab",
    "colorfulness_abs",
    "colorfulness_hs",
    "delta_colorfulness",
    "feature_statistics",
    "fid_from_features",
    "frechet_distance",
    "inception_score",
    "kernel_inception_distance",
    "mean_ci95",
    "mean_delta_e2000",
    "psnr",
    "ssim",
    "temporal_ab_change",
]
