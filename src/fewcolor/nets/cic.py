"""Zhang, Isola & Efros 2016 "Colorful Image Colorization" network (their Fig. 2 and released
``colorization_deploy_v2.prototxt``), with configurable widths.

Eight blocks of 3×3 conv+ReLU, BatchNorm at the end of blocks 1–7, no pooling:

====== ===== ======== ========== ===========================================
block  convs stride   dilation   resolution after
====== ===== ======== ========== ===========================================
conv1  2     last 2   1          1/2
conv2  2     last 2   1          1/4
conv3  3     last 2   1          1/8
conv4  3     1        1          1/8
conv5  3     1        2          1/8   (dilated, à trous)
conv6  3     1        2          1/8   (dilated)
conv7  3     1        1          1/8
conv8  transposed 4×4 conv (up ×2), then 2 convs, no BN  1/4
====== ===== ======== ========== ===========================================

Paper widths: 64-128-256-512-512-512-512-256. A 1×1 conv maps conv8 to ``out_channels``
(Q = 313 ab-bin logits in the paper) at ¼ of the input resolution. Sides must be multiples of 8.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fewcolor.nets.iizuka import kaiming_init

PAPER_WIDTHS = (64, 128, 256, 512, 512, 512, 512, 256)
_CONVS = (2, 2, 3, 3, 3, 3, 3, 2)
_DILATION = (1, 1, 1, 1, 2, 2, 1, 1)
_DOWN = (True, True, True, False, False, False, False, False)


class CICNet(nn.Module):
    """The CIC body plus a 1×1 head: normalised L ``(B,1,H,W)`` -> ``(B,out_channels,H/4,W/4)``."""

    size_multiple = 8

    def __init__(
        self, in_channels: int = 1, out_channels: int = 313, widths: Sequence[int] = PAPER_WIDTHS,
        dropout: float = 0.0,
    ) -> None:
        """``dropout > 0`` adds dropout after blocks conv6–conv8 (the generator's noise in Fabbri & Islam's
        CIC-generator cGAN; the placement, mirroring pix2pix's innermost decoder layers, is ours)."""
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if len(widths) != 8:
            raise ValueError(f"CICNet needs 8 block widths (conv1..conv8), got {len(widths)}: {widths}")
        blocks: list[nn.Module] = []
        cin = in_channels
        for b in range(7):
            layers: list[nn.Module] = []
            for i in range(_CONVS[b]):
                last = i == _CONVS[b] - 1
                stride = 2 if (_DOWN[b] and last) else 1
                d = _DILATION[b]
                layers += [nn.Conv2d(cin, widths[b], 3, stride=stride, padding=d, dilation=d), nn.ReLU(True)]
                cin = widths[b]
            layers.append(nn.BatchNorm2d(cin))
            if dropout > 0 and b >= 5:
                layers.append(nn.Dropout(dropout))
            blocks.append(nn.Sequential(*layers))
        # conv8: up-sample ×2 with a 4×4 transposed conv, then 3×3 convs (no BN, as released).
        layers = [nn.ConvTranspose2d(cin, widths[7], 4, stride=2, padding=1), nn.ReLU(True)]
        for _ in range(_CONVS[7]):
            layers += [nn.Conv2d(widths[7], widths[7], 3, padding=1), nn.ReLU(True)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        blocks.append(nn.Sequential(*layers))
        self.body = nn.Sequential(*blocks)
        self.head = nn.Conv2d(widths[7], out_channels, 1)
        kaiming_init(self.body)

    def features(self, l: torch.Tensor) -> torch.Tensor:
        m = self.size_multiple
        if l.shape[-1] % m or l.shape[-2] % m:
            raise ValueError(f"CICNet needs sides divisible by {m}, got {tuple(l.shape[-2:])}")
        return self.body(l)

    def forward(self, l: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(l))


class CICRegressor(nn.Module):
    """The CIC network with a regression head (Fabbri & Islam, §3.1: the CIC generator predicting ab
    directly): 1×1 conv to 2 channels at ¼ resolution, bilinear up-sampling to the input size, tanh.
    Maps normalised L ``(B,1,H,W)`` to normalised ab ``(B,2,H,W)``."""

    size_multiple = 8

    def __init__(self, in_channels: int = 1, widths: Sequence[int] = PAPER_WIDTHS, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = CICNet(in_channels, 2, widths, dropout)

    def forward(self, l: torch.Tensor) -> torch.Tensor:
        ab = self.net(l)
        ab = F.interpolate(ab, size=l.shape[-2:], mode="bilinear", align_corners=False)
        return torch.tanh(ab)
