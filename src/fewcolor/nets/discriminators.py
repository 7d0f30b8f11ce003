"""Discriminators for conditional GANs: PatchGAN, DCGAN-style, EBGAN's auto-encoder, and MemoPainter's
PatchGAN conditioned on a colour feature.

All take ``in_channels`` (a conditional colorization GAN feeds ``concat(L, ab)``, 3 channels) and
return raw scores (logits / critic values); the GAN loss (``fewcolor.losses.gan``) decides what they
mean. ``norm`` is ``"batch"`` (pix2pix, DCGAN), ``"instance"`` or ``"none"`` (WGAN-GP's penalty is
per sample, which batch statistics would couple; Gulrajani et al. 2017 §4).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from fewcolor.nets.norm import make_norm

ACTIVATIONS = ("leaky", "relu")


def _conv_block(cin: int, cout: int, stride: int, norm: str, first: bool, activation: str = "leaky") -> list[nn.Module]:
    # pix2pix / DCGAN: no normalisation on the first layer; a norm layer makes the conv bias redundant.
    use_norm = not first and norm != "none"
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 4, stride=stride, padding=1, bias=not use_norm)]
    if use_norm:
        layers.append(make_norm(norm, cout))
    layers.append(nn.LeakyReLU(0.2, inplace=True) if activation == "leaky" else nn.ReLU(inplace=True))
    return layers


class PatchDiscriminator(nn.Module):
    """pix2pix PatchGAN (Isola et al. 2017, §3.2.2 and appendix 6.1.2).

    ``C64-C128-C256-C512`` with 4×4 convs, LeakyReLU(0.2), BatchNorm except on the first layer; the
    first ``n_layers`` convs have stride 2, the last ``C512`` stride 1, then a 4×4 conv to one logit per
    patch. ``n_layers=3`` gives the 70×70 receptive field. Output ``(B, 1, h, w)``.
    """

    def __init__(
        self, in_channels: int = 3, base: int = 64, n_layers: int = 3, norm: str = "batch", max_mult: int = 8
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError("PatchDiscriminator needs n_layers >= 1")
        layers = _conv_block(in_channels, base, 2, norm, first=True)
        cin = base
        for i in range(1, n_layers + 1):
            cout = base * min(2**i, max_mult)
            layers += _conv_block(cin, cout, 2 if i < n_layers else 1, norm, first=False)
            cin = cout
        layers.append(nn.Conv2d(cin, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)
        self.n_layers = n_layers

    @property
    def receptive_field(self) -> int:
        """Receptive field of one output logit in input pixels (70 for ``n_layers=3``)."""
        # Layers from the output back: final 4x4 s1, C512 4x4 s1, then n_layers 4x4 s2 convs.
        strides = [2] * self.n_layers + [1, 1]
        rf = 1
        for s in reversed(strides):
            rf = rf * s + (4 - s)
        return rf

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class DCGANDiscriminator(nn.Module):
    """DCGAN-style discriminator (Radford et al. 2016, §3): strided 4×4 Conv-BN-LeakyReLU(0.2) blocks
    halve the image until it is 4×4 (or smaller), then one conv over the whole map gives one logit.
    ``activation="relu"``: Conv-BN-ReLU blocks, MetalGAN's discriminator modules (Fontanini et al. 2019, §3.4).

    Works for any ``image_size`` (the number of blocks is ``ceil(log2(size/4))``); it needs inputs of
    exactly that size. Output ``(B,)``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        image_size: int = 64,
        base: int = 64,
        norm: str = "batch",
        max_channels: int = 512,
        activation: str = "leaky",
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"DCGANDiscriminator activation must be one of {ACTIVATIONS}, got {activation!r}")
        if image_size < 4:
            raise ValueError(f"DCGANDiscriminator needs image_size >= 4, got {image_size}")
        blocks = max(1, math.ceil(math.log2(image_size / 4)))
        layers: list[nn.Module] = []
        cin, size = in_channels, image_size
        for i in range(blocks):
            cout = min(base * 2**i, max_channels)
            layers += _conv_block(cin, cout, 2, norm, first=i == 0, activation=activation)
            cin, size = cout, size // 2
        layers.append(nn.Conv2d(cin, 1, size, stride=1, padding=0))  # the whole remaining map -> 1 logit
        self.net = nn.Sequential(*layers)
        self.image_size = image_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(
                f"DCGANDiscriminator was built for {self.image_size}×{self.image_size} inputs, got "
                f"{tuple(x.shape[-2:])}; build it with image_size={x.shape[-1]} or resize the batch"
            )
        return self.net(x).flatten(1).squeeze(1)


class AutoEncoderDiscriminator(nn.Module):
    """EBGAN's discriminator (Zhao et al. 2017, §2.3): an auto-encoder whose energy is the per-sample
    reconstruction MSE ``D(x) = ||Dec(Enc(x)) - x||²`` (mean over pixels and channels).

    The encoder is ``depth`` strided 4×4 Conv-norm-LeakyReLU blocks, the decoder mirrors it with
    transposed convs and ReLU. Sides must be multiples of ``2**depth``. ``forward`` returns the energy
    ``(B,)``; :meth:`reconstruct` the reconstruction.
    """

    def __init__(self, in_channels: int = 3, base: int = 64, depth: int = 3, norm: str = "batch") -> None:
        super().__init__()
        if depth < 1:
            raise ValueError("AutoEncoderDiscriminator needs depth >= 1")
        enc: list[nn.Module] = []
        widths = [base * 2**i for i in range(depth)]
        cin = in_channels
        for i, w in enumerate(widths):
            enc += _conv_block(cin, w, 2, norm, first=i == 0)
            cin = w
        dec: list[nn.Module] = []
        for i in reversed(range(depth)):
            cout = in_channels if i == 0 else widths[i - 1]
            last = i == 0
            dec.append(nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=last or norm == "none"))
            if not last:
                dec += [make_norm(norm, cout), nn.ReLU(inplace=True)]
            cin = cout
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)
        self.depth = depth

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        m = 2**self.depth
        if x.shape[-1] % m or x.shape[-2] % m:
            raise ValueError(f"AutoEncoderDiscriminator(depth={self.depth}) needs sides divisible by {m}, "
                             f"got {tuple(x.shape[-2:])}")
        return self.decoder(self.encoder(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.reconstruct(x) - x).pow(2).flatten(1).mean(1)


class ConditionalPatchDiscriminator(nn.Module):
    """PatchGAN on ``concat(L, ab, P·C)``: the colour feature C is projected linearly to ``cond`` channels
    and broadcast over the image, so D judges colourings given the grey image and the colour feature."""

    def __init__(self, feature_dim: int, cond: int, base: int, n_layers: int) -> None:
        super().__init__()
        self.project = nn.Linear(feature_dim, cond)
        self.net = PatchDiscriminator(3 + cond, base=base, n_layers=n_layers, norm="batch")

    def forward(self, l: torch.Tensor, ab: torch.Tensor, feature: torch.Tensor) -> torch.Tensor:
        c = self.project(feature.to(l.dtype))[:, :, None, None].expand(-1, -1, *l.shape[-2:])
        return self.net(torch.cat([l, ab, c], dim=1))


def build_discriminator(
    kind: str, in_channels: int, image_size: int, base: int = 64, norm: str = "batch", n_layers: int = 3,
    activation: str = "leaky",
) -> nn.Module:
    """A discriminator by name: ``patch`` (PatchGAN), ``dcgan`` or ``autoencoder`` (EBGAN). ``activation``
    ("leaky" or "relu") applies to the DCGAN-style blocks."""
    if kind == "patch":
        return PatchDiscriminator(in_channels, base=base, n_layers=n_layers, norm=norm)
    if kind == "dcgan":
        return DCGANDiscriminator(in_channels, image_size=image_size, base=base, norm=norm, activation=activation)
    if kind == "autoencoder":
        return AutoEncoderDiscriminator(in_channels, base=base, depth=n_layers, norm=norm)
    raise ValueError(f"unknown discriminator {kind!r}; use patch, dcgan or autoencoder")
