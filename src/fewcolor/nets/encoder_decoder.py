"""A colorization network on a pretrained encoder: U-Net decoder, global-feature fusion, bin logits.

``L -> PretrainedEncoder -> taps at strides s_1 < ... < s_5 (+ pooled global features)``. The decoder
starts at the deepest tap, fuses the global features there (Iizuka et al. 2016, §3.3: the global vector
is replicated at every position, concatenated, and mixed by a 1×1 conv), then repeatedly up-samples ×2,
concatenates the next shallower tap (U-Net skip) and applies two 3×3 conv–BN–ReLU layers, down to the
``out_stride`` tap. A 1×1 conv gives ``out_channels`` maps there: 313 bin logits (Zhang et al. 2016
predict at ¼ resolution too) or 2 ab channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fewcolor.color.bins import Q
from fewcolor.color.decode import annealed_mean
from fewcolor.color.normalize import normalize_ab
from fewcolor.nets.adain import AdaINParams
from fewcolor.nets.encoders import PretrainedEncoder
from fewcolor.nets.norm import BatchNorm2dAnyBatch

#: the base colorizer's decoder widths, deepest level first (out_stride 4 on a 5-tap encoder): the default
#: of every decoder here, so an encoder generator's tensors have the base model's shapes (``--init base``)
BASE_WIDTHS = (256, 192, 128, 96)


def _conv_bn_relu(cin: int, cout: int, kernel: int = 3) -> list[nn.Module]:
    # one support image at a small size has 1×1 deep features: that batch norm takes it (one-shot fine-tuning)
    return [nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False), BatchNorm2dAnyBatch(cout),
            nn.ReLU(inplace=True)]


def _film(h: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    # FiLM (Perez et al. 2018), not AdaIN: the identity at γ = β = 0, so a decoder started from the base
    # model keeps its outputs; instance normalisation would discard the statistics it was trained with
    return h * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]


class EncoderDecoder(nn.Module):
    """``(B,1,H,W)`` normalised L -> ``(B, out_channels, H/out_stride, W/out_stride)``.

    ``widths``: decoder widths from the deepest level to ``out_stride`` (one per decoder level; the
    deepest is the fusion width). ``global_features=False`` drops the fusion (an ablation).
    """

    def __init__(
        self,
        encoder: PretrainedEncoder,
        out_channels: int,
        widths: tuple[int, ...] = BASE_WIDTHS,
        out_stride: int = 4,
        global_features: bool = True,
    ) -> None:
        super().__init__()
        spec = encoder.spec
        if out_stride not in spec.strides:
            raise ValueError(f"out_stride must be one of the encoder's strides {spec.strides}, got {out_stride}")
        levels = len(spec.strides) - spec.strides.index(out_stride)  # taps used, deepest first
        if len(widths) != levels:
            raise ValueError(f"widths needs {levels} entries for out_stride {out_stride}, got {len(widths)}")
        self.encoder = encoder
        self.widths = tuple(widths)
        self.out_stride = out_stride
        self.global_features = global_features
        channels = spec.channels[::-1][:levels]
        self.bottleneck = nn.Sequential(*_conv_bn_relu(channels[0], widths[0], 1))
        if global_features:
            self.global_mlp = nn.Sequential(nn.Linear(spec.global_channels, widths[0]), nn.ReLU(inplace=True))
            self.fuse = nn.Sequential(*_conv_bn_relu(widths[0] * 2, widths[0], 1))
        self.up = nn.ModuleList(
            nn.Sequential(*_conv_bn_relu(widths[i - 1] + channels[i], widths[i]), *_conv_bn_relu(widths[i], widths[i]))
            for i in range(1, levels)
        )
        self.head = nn.Conv2d(widths[-1], out_channels, 1)

    @property
    def size_multiple(self) -> int:
        return self.encoder.size_multiple

    @property
    def decoder_widths(self) -> list[int]:
        """Channels after the fusion and after each up block: where ``styles`` modulate the decoder."""
        return list(self.widths)

    def forward(self, l_norm: torch.Tensor, styles: list[tuple[torch.Tensor, torch.Tensor]] | None = None
                ) -> torch.Tensor:
        """``styles``: one (γ, β) pair of ``(B, width)`` per :attr:`decoder_widths` entry, applied as
        ``h·(1 + γ) + β`` after the fusion and after each up block (MemoPainter's colour conditioning), or None."""
        taps, pooled = self.encoder(l_norm)
        skips = taps[::-1][: len(self.up) + 1]
        h = self.bottleneck(skips[0])
        if self.global_features:
            # The 1×1 conv over [h; g replicated] written as W_h·h + W_g·g with g broadcast: the same
            # numbers without materialising the replicated map, and no shape-dependent op (ONNX export).
            conv: nn.Conv2d = self.fuse[0]  # type: ignore[assignment]  # nn.Sequential indexing is untyped
            weight = conv.weight
            g = self.global_mlp(pooled)[:, :, None, None]
            width = h.shape[1]
            h = self.fuse[1:](F.conv2d(h, weight[:, :width]) + F.conv2d(g, weight[:, width:]))
        if styles is not None and len(styles) != len(self.widths):
            raise ValueError(f"styles needs {len(self.widths)} (γ, β) pairs, got {len(styles)}")
        if styles is not None:
            h = _film(h, *styles[0])
        for i, (block, skip) in enumerate(zip(self.up, skips[1:], strict=True)):
            h = F.interpolate(h, scale_factor=2.0, mode="bilinear", align_corners=False)  # taps double in size
            h = block(torch.cat([h, skip], dim=1))
            if styles is not None:
                h = _film(h, *styles[i + 1])
        return self.head(h)


class EncoderGenerator(nn.Module):
    """An L -> ab generator on a pretrained encoder, for the U-Net family's ``encoder`` option.

    :class:`EncoderDecoder` with 313 bin logits at ¼ resolution, decoded to ab by the annealed mean
    (Zhang et al. 2016, Eq. 5; differentiable for T > 0) and up-sampled bilinearly to the input size.
    Its parameter names and shapes are those of the base colorizer's network, so a generator-based method
    can start from the bundled base model (``--init``) and then train with its own losses.
    Output: normalised ab ``(B,2,H,W)`` in [-1, 1] like the U-Net's ``tanh``.
    """

    def __init__(self, encoder: PretrainedEncoder, widths: tuple[int, ...] = BASE_WIDTHS,
                 temperature: float = 0.38, global_features: bool = True) -> None:
        super().__init__()
        self.net = EncoderDecoder(encoder, Q, widths, out_stride=4, global_features=global_features)
        self.temperature = temperature

    @property
    def size_multiple(self) -> int:
        return self.net.size_multiple

    def forward(self, l_norm: torch.Tensor, temperature: float | None = None) -> torch.Tensor:
        return self.decode(self.net(l_norm), l_norm, temperature)

    def decode(self, logits: torch.Tensor, l_norm: torch.Tensor, temperature: float | None = None) -> torch.Tensor:
        """Bin logits at ¼ resolution -> normalised ab at ``l_norm``'s size (annealed mean, bilinear)."""
        t = self.temperature if temperature is None else temperature
        ab = normalize_ab(annealed_mean(logits.float(), t))
        return F.interpolate(ab, size=l_norm.shape[-2:], mode="bilinear", align_corners=False).clamp(-1.0, 1.0)


class ConditionedEncoderGenerator(EncoderGenerator):
    """:class:`EncoderGenerator` whose decoder is conditioned on a colour feature ``(B, feature_dim)``:
    MemoPainter's and Res-cGAN's generator with ``encoder != none`` (Yoo et al. 2019, §3.2).

    The paper's MLP (:class:`~fewcolor.nets.adain.AdaINParams`, last layer zero) gives one (γ, β) per decoder
    level; they modulate as FiLM, not AdaIN (see :func:`_film`): at initialisation the network is exactly
    the unconditioned one, so ``--init base`` starts from the base colorizer's colours.
    """

    def __init__(self, encoder: PretrainedEncoder, feature_dim: int, widths: tuple[int, ...] = BASE_WIDTHS,
                 temperature: float = 0.38, global_features: bool = True, mlp_hidden: int = 256) -> None:
        super().__init__(encoder, widths, temperature, global_features)
        self.feature_dim = feature_dim
        self.params = AdaINParams(feature_dim, self.net.decoder_widths, mlp_hidden)

    def forward(self, l_norm: torch.Tensor, feature: torch.Tensor,  # type: ignore[override]
                temperature: float | None = None) -> torch.Tensor:
        if feature.shape != (l_norm.shape[0], self.feature_dim):
            raise ValueError(f"colour feature must be ({l_norm.shape[0]}, {self.feature_dim}), "
                             f"got {tuple(feature.shape)}")
        return self.decode(self.net(l_norm, self.params(feature.to(l_norm.dtype))), l_norm, temperature)
