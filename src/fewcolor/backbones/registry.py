"""The named backbones: how to build each, its input normalisation, and loading with resolved weights."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from fewcolor.backbones.weights import load_weights

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class BackboneInfo:
    """``builder`` is "module:function"; the input of the network is (rgb01 - mean) / std."""

    name: str
    builder: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    min_size: int  # smallest input side the network accepts
    default_layer: str

    def build(self) -> nn.Module:
        module, func = self.builder.split(":")
        factory: Callable[[], nn.Module] = getattr(importlib.import_module(module), func)
        return factory()


BACKBONES: dict[str, BackboneInfo] = {
    "resnet18": BackboneInfo("resnet18", "fewcolor.backbones.resnet:resnet18", IMAGENET_MEAN, IMAGENET_STD,
                             32, "avgpool"),
    "resnet50": BackboneInfo("resnet50", "fewcolor.backbones.resnet:resnet50", IMAGENET_MEAN, IMAGENET_STD,
                             32, "layer4.0"),
    "vgg16": BackboneInfo("vgg16", "fewcolor.backbones.vgg:vgg16", IMAGENET_MEAN, IMAGENET_STD,
                          32, "features.29"),
    "alexnet": BackboneInfo("alexnet", "fewcolor.backbones.alexnet:alexnet", IMAGENET_MEAN, IMAGENET_STD,
                            63, "features.11"),
    # TF EfficientNet-Lite preprocessing: (x - 127) / 128 on 0..255 values (mean 127/255, std 128/255).
    "efficientnet_lite0": BackboneInfo("efficientnet_lite0",
                                       "fewcolor.backbones.efficientnet_lite:efficientnet_lite0",
                                       (127 / 255,) * 3, (128 / 255,) * 3, 32, "_bn1"),
    # TF Inception for FID: (x - 128) / 128 on 0..255 values.
    "inception_v3_fid": BackboneInfo("inception_v3_fid", "fewcolor.backbones.inception:inception_v3_fid",
                                     (128 / 255,) * 3, (128 / 255,) * 3, 75, "avgpool"),
}

# Importing these registers every WeightSpec (also the LPIPS linear heads).
for _module in ("resnet", "vgg", "alexnet", "efficientnet_lite", "inception", "lpips_heads"):
    importlib.import_module(f"fewcolor.backbones.{_module}")


def backbone_info(name: str) -> BackboneInfo:
    if name not in BACKBONES:
        raise KeyError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    return BACKBONES[name]


def load_backbone(name: str, weights: str | os.PathLike[str] | None = None, allow_download: bool = False,
                  pretrained: bool = True) -> nn.Module:
    """Build ``name`` and load its pretrained weights (``pretrained=False``: torchvision-style random init).

    Returns the module in eval mode. Raises ``WeightsNotFoundError`` (saying what to install or where to
    put which file) when pretrained weights cannot be found.
    """
    info = backbone_info(name)
    model = info.build()
    if pretrained:
        state, res = load_weights(name, weights, allow_download)
        prepare = getattr(model, "prepare_for_state_dict", None)
        if prepare is not None:  # e.g. Inception's optional 1008-way logits head
            prepare(state)
        model.load_state_dict(state, strict=True)
        model.weights_source = f"{res.source}: {res.detail}"  # type: ignore[assignment]
    else:
        model.weights_source = "random init"  # type: ignore[assignment]
    return model.eval()
