"""Activations of several depths of a pretrained VGG-style backbone for a grey image, in one pass.

Dense correspondence (``fewcolor.nets.correspondence``) matches pixels coarse-to-fine: deep layers
(relu5_3, stride 16) say *what* a region is, shallow ones (relu3_3, stride 4) *where exactly*. The grey
image is shown to the network as in :mod:`fewcolor.backbones.features` (L replicated to three channels,
ImageNet-normalised). The backbone is frozen and always in eval mode.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from fewcolor.backbones.features import network_input
from fewcolor.backbones.registry import backbone_info, load_backbone

#: VGG16 taps used by default: relu3_3 (stride 4, 256-d), relu4_3 (stride 8, 512-d), relu5_3 (stride 16, 512-d)
VGG16_PYRAMID: tuple[str, ...] = ("features.15", "features.22", "features.29")


class GreyFeaturePyramid(nn.Module):
    """``(B,1,H,W)`` normalised L -> one activation map per layer of ``layers`` (shallow to deep).

    ``layers`` are module paths ``features.<i>`` of the backbone's ``features`` sequential (VGG, AlexNet);
    the forward pass stops after the deepest one. ``strides`` gives each map's stride w.r.t. the input.
    """

    mean: torch.Tensor  # registered buffer
    std: torch.Tensor  # registered buffer

    def __init__(self, backbone: str = "vgg16", layers: tuple[str, ...] = VGG16_PYRAMID, pretrained: bool = True,
                 weights: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        self.info = backbone_info(backbone)
        net = load_backbone(backbone, weights=weights, pretrained=pretrained)
        features = getattr(net, "features", None)
        if not isinstance(features, nn.Sequential):
            raise ValueError(f"{backbone} has no `features` sequential; GreyFeaturePyramid needs a VGG-style net")
        self.indices: list[int] = []
        for layer in layers:
            prefix, _, index = layer.partition(".")
            if prefix != "features" or not index.isdigit() or int(index) >= len(features):
                raise KeyError(f"{backbone}: layer {layer!r} is not features.<i> with i < {len(features)}")
            self.indices.append(int(index))
        if self.indices != sorted(set(self.indices)):
            raise ValueError(f"layers must be distinct and ordered shallow to deep, got {layers}")
        modules = list(features.children())
        self.features = nn.Sequential(*modules[: self.indices[-1] + 1])
        self.strides = [2 ** sum(isinstance(m, nn.MaxPool2d) for m in modules[: i + 1]) for i in self.indices]
        self.register_buffer("mean", torch.tensor(self.info.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(self.info.std).view(1, 3, 1, 1), persistent=False)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> GreyFeaturePyramid:
        return super().train(False)

    @torch.no_grad()
    def forward(self, l_norm: torch.Tensor) -> list[torch.Tensor]:
        x = network_input(l_norm.float(), self.mean, self.std, self.info.min_size)
        out: list[torch.Tensor] = []
        wanted = set(self.indices)
        for i, module in enumerate(self.features.children()):
            x = module(x)
            if i in wanted:
                out.append(x)
        return out
