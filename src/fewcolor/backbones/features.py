"""Descriptors of grey images from a named layer of a pretrained backbone.

The L channel is shown to the network as a grey RGB image, ``(L_norm + 1) / 2`` replicated to three
channels, normalised like the network's training data (ImageNet mean/std for the torchvision networks).
Pooling: "mac" = maximum activation of convolutions (Tolias et al., ICLR 2016, eq. 1: spatial max per
channel) then L2 normalisation; "avg" = global average pooling. Several layers, comma-separated
(``"features.15,features.22,features.29"``), give the concatenation of each layer's pooled vector (each
L2-normalised for "mac", then the whole normalised again): a richer descriptor than the last layer alone.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fewcolor.backbones.registry import backbone_info, load_backbone
from fewcolor.backbones.weights import WeightsNotFoundError, get_spec, missing_message, weights_available

log = logging.getLogger(__name__)


def network_input(l_norm: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, min_size: int) -> torch.Tensor:
    """Normalised L ``(B,1,H,W)`` -> the grey RGB input of a network, ``((L_norm+1)/2 - mean) / std``.

    Inputs whose shorter side is below ``min_size`` are upsampled bilinearly (aspect kept) so the
    network's valid convolutions still apply.
    """
    if l_norm.ndim != 4 or l_norm.shape[1] != 1:
        raise ValueError(f"expected normalised L shaped (B,1,H,W), got {tuple(l_norm.shape)}")
    grey = ((l_norm + 1.0) / 2.0).clamp(0.0, 1.0).expand(-1, 3, -1, -1)
    side = min(grey.shape[-2:])
    if side < min_size:
        scale = min_size / side
        size = (max(min_size, round(grey.shape[-2] * scale)), max(min_size, round(grey.shape[-1] * scale)))
        grey = F.interpolate(grey, size=size, mode="bilinear", align_corners=False)
    return (grey - mean) / std


class _Stop(Exception):
    """Raised from a forward hook to skip the layers after the tapped one."""


class FeatureExtractor(nn.Module):
    """Frozen, eval-mode descriptor ``(B,1,H,W) normalised L -> (B, C)``.

    Inputs smaller than the network's minimum side (e.g. 75 px for Inception) are upsampled bilinearly.

    ``layer`` is a module path of the backbone as in torchvision, e.g. ``("resnet50", "layer4.0")`` (output
    of the first block of stage 5, 2048-d), ``("vgg16", "features.29")`` (relu5_3, 512-d),
    ``("resnet18", "avgpool")`` (512-d).
    """

    mean: torch.Tensor  # registered buffer
    std: torch.Tensor  # registered buffer

    def __init__(self, backbone: str, layer: str, pooling: str = "mac", pretrained: bool = True,
                 weights: str | os.PathLike[str] | None = None, allow_download: bool = False) -> None:
        super().__init__()
        if pooling not in ("mac", "avg"):
            raise ValueError(f"pooling must be 'mac' or 'avg', got {pooling!r}")
        self.backbone_name = backbone
        self.layer = layer
        self.layers = [name.strip() for name in layer.split(",")]
        self.pooling = pooling
        self.info = backbone_info(backbone)
        self.net = load_backbone(backbone, weights=weights, allow_download=allow_download,
                                 pretrained=pretrained)
        modules = dict(self.net.named_modules())
        for name in self.layers:
            if name not in modules or name == "":
                sample = ", ".join(n for n in list(modules)[1:40] if n)
                raise KeyError(f"{backbone} has no layer {name!r}; module paths include: {sample}, ...")
        self._tapped: dict[str, torch.Tensor] = {}
        for name in self.layers:
            modules[name].register_forward_hook(functools.partial(self._hook, name))
        self.register_buffer("mean", torch.tensor(self.info.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(self.info.std).view(1, 3, 1, 1), persistent=False)
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.eval()
        with torch.no_grad():
            side = max(64, self.info.min_size)
            self.out_dim = int(self(torch.zeros(1, 1, side, side)).shape[1])

    def _hook(self, name: str, module: nn.Module, inputs: object, output: torch.Tensor) -> None:
        self._tapped[name] = output
        if len(self._tapped) == len(self.layers):  # every tapped layer reached: skip the rest
            raise _Stop

    def train(self, mode: bool = True) -> FeatureExtractor:
        # Always frozen: BatchNorm statistics must never update.
        return super().train(False)

    def layer_maps(self, l_norm: torch.Tensor) -> list[torch.Tensor]:
        """The raw activations of the tapped layers, in the given order, for normalised L ``(B,1,H,W)``."""
        x = network_input(l_norm, self.mean, self.std, self.info.min_size)
        self._tapped = {}
        with contextlib.suppress(_Stop):  # the hook stops the forward pass after the last tapped layer
            self.net(x)
        tapped, self._tapped = self._tapped, {}
        missing = [name for name in self.layers if name not in tapped]
        if missing:
            raise RuntimeError(f"layer(s) {missing} of {self.backbone_name} were not reached in forward()")
        return [tapped[name] for name in self.layers]

    def _pool(self, fmap: torch.Tensor) -> torch.Tensor:
        if fmap.ndim == 2:
            vec = fmap
        elif self.pooling == "mac":
            vec = fmap.flatten(2).amax(dim=2)
        else:
            vec = fmap.flatten(2).mean(dim=2)
        return F.normalize(vec, dim=1) if self.pooling == "mac" else vec

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        vecs = [self._pool(fmap) for fmap in self.layer_maps(l_norm)]
        if len(vecs) == 1:
            return vecs[0]
        vec = torch.cat(vecs, dim=1)
        return F.normalize(vec, dim=1) if self.pooling == "mac" else vec


def choose_backbone(preferred: Sequence[tuple[str, str]]) -> tuple[str, str]:
    """The first ``(backbone, layer)`` whose weights resolve offline; logs the choice.

    Raises ``WeightsNotFoundError`` listing how to provide each candidate when none resolves.
    """
    for backbone, layer in preferred:
        if weights_available(backbone):
            log.info("feature backbone: %s / %s", backbone, layer)
            return backbone, layer
        log.info("feature backbone %s skipped: its weights are not available", backbone)
    reasons = "\n".join(f"- {missing_message(get_spec(b))}" for b, _ in preferred)
    raise WeightsNotFoundError(f"none of the preferred backbones has weights:\n{reasons}")
