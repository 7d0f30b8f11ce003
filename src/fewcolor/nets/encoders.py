"""ImageNet-pretrained encoders that see a grey image and return features at several strides.

A colorizer's decoder needs what a classifier already knows (what grass, sky, skin and fur look like),
at several scales: :class:`PretrainedEncoder` taps a frozen (or trainable) ImageNet network at the end
of each resolution stage and also returns its globally pooled last features (the "global features" of
Iizuka et al. 2016, §3.2, here from a classifier trained on colour ImageNet instead of learnt jointly).

The network sees the L channel as the sRGB grey image of that lightness (``a = b = 0`` converted back to
sRGB), replicated to three channels and normalised like its training data.

Encoders (``ENCODERS``), strides of the taps and their channels:

- ``efficientnet-lite0``: strides 2, 4, 8, 16, 32; channels 16, 24, 40, 112, 1280 (the last is the head
  conv after stage 7); global 1280. About 0.13 GMAC at 128², the cheap choice on a CPU.
- ``vgg16``: relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 at strides 1, 2, 4, 8, 16; channels 64, 128,
  256, 512, 512; global 512 (average of relu5_3). About 5 GMAC at 128².
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fewcolor.backbones.registry import backbone_info, load_backbone
from fewcolor.color.lab import grey_rgb_from_l
from fewcolor.color.normalize import denormalize_l


@dataclass(frozen=True)
class EncoderSpec:
    backbone: str  #: name in fewcolor.backbones.registry
    strides: tuple[int, ...]
    channels: tuple[int, ...]
    global_channels: int


ENCODERS: dict[str, EncoderSpec] = {
    "efficientnet-lite0": EncoderSpec("efficientnet_lite0", (2, 4, 8, 16, 32), (16, 24, 40, 112, 1280), 1280),
    "vgg16": EncoderSpec("vgg16", (1, 2, 4, 8, 16), (64, 128, 256, 512, 512), 512),
}

# EfficientNet-Lite0 blocks after which a stage's resolution ends (0-based; see LITE0_STAGES).
_LITE0_TAPS = (0, 2, 4, 10)
# VGG16 ``features`` indices of relu1_2, relu2_2, relu3_3, relu4_3, relu5_3.
_VGG16_TAPS = (3, 8, 15, 22, 29)


def encoder_spec(name: str) -> EncoderSpec:
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; choose one of: none, {', '.join(ENCODERS)}")
    return ENCODERS[name]


class PretrainedEncoder(nn.Module):
    """``(B,1,H,W)`` normalised L -> (list of feature maps, one per tap; pooled global features ``(B,G)``).

    ``frozen=True`` keeps the weights fixed and BatchNorm in eval mode (its statistics are ImageNet's);
    ``set_frozen(False)`` unfreezes it later (fine-tuning). ``pretrained=False`` gives a random init of
    the same architecture (tests, ablations). H and W must be multiples of the largest stride.
    """

    mean: torch.Tensor  # registered buffer
    std: torch.Tensor  # registered buffer

    def __init__(self, name: str, pretrained: bool = True, frozen: bool = True) -> None:
        super().__init__()
        self.spec = encoder_spec(name)
        self.name = name
        info = backbone_info(self.spec.backbone)
        self.net = load_backbone(self.spec.backbone, pretrained=pretrained)
        self.register_buffer("mean", torch.tensor(info.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(info.std).view(1, 3, 1, 1), persistent=False)
        self.frozen = True
        self.set_frozen(frozen)

    @property
    def size_multiple(self) -> int:
        return max(self.spec.strides)

    def set_frozen(self, frozen: bool) -> None:
        self.frozen = frozen
        for p in self.net.parameters():
            p.requires_grad_(not frozen)
        self.net.train(self.training and not frozen)

    def train(self, mode: bool = True) -> PretrainedEncoder:
        super().train(mode)
        self.net.train(mode and not self.frozen)  # frozen: ImageNet BatchNorm statistics never move
        return self

    def _input(self, l_norm: torch.Tensor) -> torch.Tensor:
        if l_norm.ndim != 4 or l_norm.shape[1] != 1:
            raise ValueError(f"expected normalised L shaped (B,1,H,W), got {tuple(l_norm.shape)}")
        grey = grey_rgb_from_l(denormalize_l(l_norm.float())).clamp(0.0, 1.0)
        return (grey - self.mean) / self.std

    def forward(self, l_norm: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        m = self.size_multiple
        if l_norm.shape[-1] % m or l_norm.shape[-2] % m:
            raise ValueError(f"{self.name} encoder needs sides divisible by {m}, got {tuple(l_norm.shape[-2:])}")
        x = self._input(l_norm)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            taps = self._lite0(x) if self.spec.backbone == "efficientnet_lite0" else self._vgg16(x)
        return taps, taps[-1].mean(dim=(2, 3))

    def _lite0(self, x: torch.Tensor) -> list[torch.Tensor]:
        net: Any = self.net  # an EfficientNetLite; nn.Module's attribute typing cannot say so
        h = F.relu6(net._bn0(net._conv_stem(x)))
        taps = []
        for i, block in enumerate(net._blocks):
            h = block(h)
            if i in _LITE0_TAPS:
                taps.append(h)
        taps.append(F.relu6(net._bn1(net._conv_head(h))))
        return taps

    def _vgg16(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        h = x
        features: Any = self.net.features
        for i, layer in enumerate(features):
            h = layer(h)
            if i in _VGG16_TAPS:
                taps.append(h)
            if i == _VGG16_TAPS[-1]:
                break
        return taps
