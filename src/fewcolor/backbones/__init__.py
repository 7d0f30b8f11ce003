"""Pretrained backbones, weight resolution and grey-image feature extraction.

    from fewcolor.backbones import load_backbone, weights_available, FeatureExtractor, choose_backbone
"""

from fewcolor.backbones.features import FeatureExtractor, choose_backbone
from fewcolor.backbones.registry import BACKBONES, backbone_info, load_backbone
from fewcolor.backbones.weights import (
    WeightsNotFoundError,
    cache_dir,
    format_weights_table,
    load_weights,
    resolve,
    weights_available,
    weights_table,
)

__all__ = [
    "BACKBONES",
    "FeatureExtractor",
    "WeightsNotFoundError",
    "backbone_info",
    "cache_dir",
    "choose_backbone",
    "format_weights_table",
    "load_backbone",
    "load_weights",
    "resolve",
    "weights_available",
    "weights_table",
]
