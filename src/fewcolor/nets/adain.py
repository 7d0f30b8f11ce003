"""MemoPainter's colorization network: a U-Net whose decoder is conditioned on a colour feature through
adaptive instance normalisation (Yoo et al., CVPR 2019, §3.2; AdaIN: Huang & Belongie, ICCV 2017).

AdaIN replaces a feature map's per-channel statistics by ones computed from the condition::

    AdaIN(x, γ, β) = γ · (x − μ(x)) / σ(x) + β          (Huang & Belongie, Eq. 8)

where, as in MemoPainter (and MUNIT), γ and β are produced by an MLP from the colour feature C (the
313-bin ab distribution or the 10 dominant colours). We parameterise the scale as ``1 + γ`` with the
MLP's last layer initialised to zero, so an untrained network starts as a plain instance-normalised
U-Net; it is the same layer, only a different origin for γ.

The encoder is pix2pix's (4×4 stride-2 convs, LeakyReLU 0.2, instance norm except on the first and
innermost layers); the decoder mirrors it with 4×4 transposed convs, ReLU, AdaIN after every decoder
block but the outermost, and skip connections; ``tanh`` output (normalised ab). Sides must be multiples
of ``2**depth``.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from fewcolor.nets.unet import DownBlock


class AdaIN(nn.Module):
    """Adaptive instance normalisation with externally given per-sample (γ, β) of shape (B, C)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.channels = channels
        self.eps = eps

    def forward(self, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        if gamma.shape != (x.shape[0], self.channels) or beta.shape != gamma.shape:
            raise ValueError(f"AdaIN({self.channels}): γ {tuple(gamma.shape)} and β {tuple(beta.shape)} must be "
                             f"({x.shape[0]}, {self.channels})")
        mean = x.mean(dim=(2, 3), keepdim=True)
        std = (x.var(dim=(2, 3), keepdim=True, unbiased=False) + self.eps).sqrt()
        return (x - mean) / std * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]


class AdaINParams(nn.Module):
    """The MLP mapping a colour feature (B, D) to every AdaIN layer's (γ, β)."""

    def __init__(self, feature_dim: int, channels: list[int], hidden: int = 256, layers: int = 3) -> None:
        super().__init__()
        self.channels = list(channels)
        dims = [feature_dim] + [hidden] * (layers - 1)
        mods: list[nn.Module] = []
        for a, b in itertools.pairwise(dims):
            mods += [nn.Linear(a, b), nn.ReLU(inplace=True)]
        last = nn.Linear(dims[-1], 2 * sum(self.channels))
        nn.init.zeros_(last.weight)  # γ = β = 0 at the start: plain instance normalisation
        nn.init.zeros_(last.bias)
        self.mlp = nn.Sequential(*mods, last)

    def forward(self, feature: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        out = self.mlp(feature)
        params = []
        start = 0
        for c in self.channels:
            params.append((out[:, start : start + c], out[:, start + c : start + 2 * c]))
            start += 2 * c
        return params


class AdaINUNet(nn.Module):
    """U-Net generator ``(L, colour feature) -> ab`` with AdaIN in the decoder (module docstring)."""

    def __init__(
        self,
        feature_dim: int,
        in_channels: int = 1,
        out_channels: int = 2,
        base: int = 64,
        depth: int = 6,
        max_mult: int = 8,
        mlp_hidden: int = 256,
        mlp_layers: int = 3,
    ) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError("AdaINUNet needs depth >= 2")
        widths = [base * min(2**i, max_mult) for i in range(depth)]
        self.depth = depth
        self.feature_dim = feature_dim
        self.down = nn.ModuleList(
            DownBlock(in_channels if i == 0 else widths[i - 1], w, "instance", first=i == 0, innermost=i == depth - 1)
            for i, w in enumerate(widths)
        )
        self.up = nn.ModuleList()
        self.adain = nn.ModuleList()
        adain_channels: list[int] = []
        for j in range(depth):
            level = depth - 1 - j
            cin = widths[level] if j == 0 else widths[level] * 2
            outermost = level == 0
            cout = out_channels if outermost else widths[level - 1]
            self.up.append(nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=outermost))
            if not outermost:
                self.adain.append(AdaIN(cout))
                adain_channels.append(cout)
        self.params = AdaINParams(feature_dim, adain_channels, mlp_hidden, mlp_layers)

    @property
    def size_multiple(self) -> int:
        return 2**self.depth

    def forward(self, l: torch.Tensor, feature: torch.Tensor) -> torch.Tensor:
        m = self.size_multiple
        if l.shape[-1] % m or l.shape[-2] % m:
            raise ValueError(f"AdaINUNet(depth={self.depth}) needs sides divisible by {m}, got {tuple(l.shape[-2:])}")
        if feature.shape != (l.shape[0], self.feature_dim):
            raise ValueError(f"colour feature must be ({l.shape[0]}, {self.feature_dim}), got {tuple(feature.shape)}")
        params = self.params(feature.to(l.dtype))
        skips = []
        h = l
        for block in self.down:
            h = block(h)
            skips.append(h)
        h = skips[-1]
        for j in range(self.depth):
            if j > 0:
                h = torch.cat([h, skips[self.depth - 1 - j]], dim=1)
            h = self.up[j](F.relu(h))
            if j < self.depth - 1:
                gamma, beta = params[j]
                h = self.adain[j](h, gamma, beta)
        return torch.tanh(h)
