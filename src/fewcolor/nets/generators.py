"""The L -> ab generators chosen by the ``encoder`` option: the U-Net family's (unet, cgan, metalgan) and
MemoPainter's colour-conditioned one (memopainter, res-cgan).

``encoder="none"`` is the paper's network, unchanged: pix2pix's U-Net (:class:`UNetGenerator`).
``encoder="efficientnet-lite0"`` / ``"vgg16"``: an ImageNet-pretrained encoder whose stages feed a U-Net
decoder (:class:`~fewcolor.nets.encoder_decoder.EncoderGenerator`, frozen unless ``freeze_encoder=False``),
with the base colorizer's widths so that ``--init`` can start it from the bundled base model. That
generator has no dropout (its noise source in pix2pix): ``dropout`` applies to the U-Net only.
For MemoPainter, ``none`` is its AdaIN U-Net (:class:`~fewcolor.nets.adain.AdaINUNet`); an encoder gives
:class:`~fewcolor.nets.encoder_decoder.ConditionedEncoderGenerator` (same decoder, FiLM conditioning).
"""

from __future__ import annotations

from fewcolor.nets.adain import AdaINUNet
from fewcolor.nets.encoder_decoder import ConditionedEncoderGenerator, EncoderGenerator
from fewcolor.nets.encoders import ENCODERS, PretrainedEncoder
from fewcolor.nets.unet import UNetGenerator

#: values of the U-Net family's ``encoder`` config field
ENCODER_CHOICES = ("none", *ENCODERS)


def _check(encoder: str) -> None:
    if encoder not in ENCODERS:
        raise ValueError(f"encoder must be one of {', '.join(ENCODER_CHOICES)}, got {encoder!r}")


def l_to_ab_generator(encoder: str, base: int, depth: int, dropout: float, freeze_encoder: bool = True
                      ) -> UNetGenerator | EncoderGenerator:
    if encoder == "none":
        return UNetGenerator(base=base, depth=depth, dropout=dropout)
    _check(encoder)
    return EncoderGenerator(PretrainedEncoder(encoder, pretrained=True, frozen=freeze_encoder))


def conditioned_generator(encoder: str, feature_dim: int, base: int, depth: int, mlp_hidden: int,
                          freeze_encoder: bool = True) -> AdaINUNet | ConditionedEncoderGenerator:
    """``(L, colour feature) -> ab``: MemoPainter's AdaIN U-Net, or an encoder generator conditioned by FiLM."""
    if encoder == "none":
        return AdaINUNet(feature_dim, base=base, depth=depth, mlp_hidden=mlp_hidden)
    _check(encoder)
    return ConditionedEncoderGenerator(PretrainedEncoder(encoder, pretrained=True, frozen=freeze_encoder),
                                       feature_dim, mlp_hidden=mlp_hidden)
