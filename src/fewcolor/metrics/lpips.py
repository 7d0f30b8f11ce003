"""LPIPS v0.1 (Zhang et al., "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric",
CVPR 2018, eq. 1) with the genuine ImageNet backbones and the published linear heads.

    d(x, x0) = Σ_l 1/(H_l W_l) Σ_{h,w} || w_l ⊙ (ŷ^l_hw − ŷ^l_0hw) ||²

ŷ^l are channel-unit-normalised activations of AlexNet relu1..relu5 (or VGG16 relu1_2, relu2_2, relu3_3,
relu4_3, relu5_3). Inputs: RGB in [0, 1], mapped to [−1, 1] and then through the lpips ``ScalingLayer``
(shift/scale below, the ImageNet statistics expressed in [−1, 1] units).
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from fewcolor.backbones.registry import load_backbone
from fewcolor.backbones.weights import load_weights

# lpips' ScalingLayer constants for inputs in [-1, 1].
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
# Indices (torchvision ``features``) of the ReLU outputs LPIPS compares.
LPIPS_TAPS = {"alex": (1, 4, 7, 9, 11), "vgg": (3, 8, 15, 22, 29)}
_BACKBONE = {"alex": "alexnet", "vgg": "vgg16"}
EPS = 1e-10


class LPIPS(nn.Module):
    """``LPIPS(net)(pred, target)`` with RGB ``(B,3,H,W)`` in [0, 1] -> distances ``(B,)``. Frozen."""

    shift: torch.Tensor  # registered buffer
    scale: torch.Tensor  # registered buffer

    def __init__(self, net: str = "alex") -> None:
        super().__init__()
        if net not in LPIPS_TAPS:
            raise ValueError(f"LPIPS net must be 'alex' or 'vgg', got {net!r}")
        self.net_name = net
        backbone = load_backbone(_BACKBONE[net])
        self.features = cast(nn.Sequential, backbone.features)
        self.taps = LPIPS_TAPS[net]
        heads, res = load_weights(f"lpips_{net}_lin")
        self.lins = nn.ModuleList()
        for k in range(len(self.taps)):
            w = heads[f"lin{k}.weight"]
            conv = nn.Conv2d(w.shape[1], 1, 1, bias=False)
            conv.weight.data.copy_(w)
            self.lins.append(conv)
        self.weights_source = {"backbone": backbone.weights_source, "linear": f"{res.source}: {res.detail}"}
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1), persistent=False)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> LPIPS:
        return super().train(False)

    def _activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x * 2.0 - 1.0 - self.shift) / self.scale
        outs = []
        last = self.taps[-1]
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                outs.append(x)
            if i == last:
                break
        return outs

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if pred.shape != target.shape or pred.ndim != 4 or pred.shape[1] != 3:
            raise ValueError(f"LPIPS needs two (B,3,H,W) images, got {tuple(pred.shape)} and "
                             f"{tuple(target.shape)}")
        total = torch.zeros(pred.shape[0], device=pred.device)
        for f0, f1, lin in zip(self._activations(pred), self._activations(target), self.lins, strict=True):
            n0 = f0 / (f0.pow(2).sum(dim=1, keepdim=True).sqrt() + EPS)
            n1 = f1 / (f1.pow(2).sum(dim=1, keepdim=True).sqrt() + EPS)
            total = total + lin((n0 - n1) ** 2).mean(dim=(1, 2, 3))
        return total
