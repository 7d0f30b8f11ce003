"""pix2pix U-Net generator (Isola et al. 2017, §3.2 and appendix 6.1.1), L -> ab.

Encoder ``C64-C128-C256-C512-C512-...``: 4×4 convs with stride 2, LeakyReLU(0.2), BatchNorm on all
but the first. Decoder mirrors it with 4×4 transposed convs, ReLU, BatchNorm, skip connections, and
dropout(0.5) on the innermost decoder blocks: the only noise source, as in pix2pix. ``tanh`` output
(ab/110 lies within [-1, 1]). Sides must be multiples of ``2**depth``.

Implementation detail, not a change of the network: the convolutions of the 1×1 and 2×2 inner maps and
the output layer (to 2 channels) compute as matrix products (:mod:`fewcolor.nets.gemm_conv`, same numbers up
to float rounding), and
the decoder's ReLU works in place on its input (the concatenation, or the innermost conv's output,
which nothing else reads), and where PyTorch draws dropout masks serially they are drawn faster, one
random bit per element at p = 0.5 (:mod:`fewcolor.nets.dropout`: the same distribution, not
PyTorch's bits).
"""

from __future__ import annotations

import torch
from torch import nn

from fewcolor.nets.dropout import Dropout
from fewcolor.nets.gemm_conv import GemmConv2d, GemmConvTranspose2d
from fewcolor.nets.norm import make_norm


class DownBlock(nn.Module):
    def __init__(self, cin: int, cout: int, norm: str, first: bool = False, innermost: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [] if first else [nn.LeakyReLU(0.2, inplace=False)]
        layers.append(GemmConv2d(cin, cout, 4, stride=2, padding=1, bias=first or innermost or norm == "none"))
        if not (first or innermost):
            layers.append(make_norm(norm, cout))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class UpBlock(nn.Module):
    def __init__(self, cin: int, cout: int, norm: str, dropout: float, outermost: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReLU(inplace=True),  # its input is a fresh tensor: the concatenation or the innermost conv's output
            GemmConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=outermost or norm == "none"),
        ]
        if not outermost:
            layers.append(make_norm(norm, cout))
            if dropout > 0:
                layers.append(Dropout(dropout))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class UNetGenerator(nn.Module):
    """U-Net with ``depth`` down-samplings. ``depth=8`` with ``base=64`` is pix2pix's 256×256 net."""

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 2,
        base: int = 64,
        depth: int = 8,
        max_mult: int = 8,
        dropout: float = 0.5,
        dropout_blocks: int = 3,
        norm: str = "batch",
        final: str = "tanh",
    ) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError("UNetGenerator needs depth >= 2")
        widths = [base * min(2**i, max_mult) for i in range(depth)]
        self.depth = depth
        self.down = nn.ModuleList()
        cin = in_channels
        for i, w in enumerate(widths):
            self.down.append(DownBlock(cin, w, norm, first=i == 0, innermost=i == depth - 1))
            cin = w
        self.up = nn.ModuleList()
        # up[j] produces the features that are concatenated with down[depth-2-j]'s output.
        for j in range(depth):
            level = depth - 1 - j  # the encoder level whose output this decoder block receives
            cin = widths[level] if j == 0 else widths[level] * 2
            outermost = level == 0
            cout = out_channels if outermost else widths[level - 1]
            self.up.append(UpBlock(cin, cout, norm, dropout if 0 < j <= dropout_blocks else 0.0, outermost=outermost))
        if final == "tanh":
            self.final: nn.Module = nn.Tanh()
        elif final == "none":
            self.final = nn.Identity()
        else:
            raise ValueError(f"unknown final activation {final!r}")

    @property
    def size_multiple(self) -> int:
        return 2**self.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.size_multiple
        if x.shape[-1] % m or x.shape[-2] % m:
            raise ValueError(
                f"UNetGenerator(depth={self.depth}) needs sides divisible by {m}, got {tuple(x.shape[-2:])}"
            )
        skips = []
        h = x
        for block in self.down:
            h = block(h)
            skips.append(h)
        h = self.up[0](skips[-1])
        for j in range(1, self.depth):
            h = self.up[j](torch.cat([h, skips[self.depth - 1 - j]], dim=1))
        return self.final(h)
