"""The L -> ab generator of the U-Net family (unet, cgan, metalgan), chosen by their ``encoder`` option.

``encoder="none"`` is the paper's network, unchanged: pix2pix's U-Net (:class:`UNetGenerator`).
``encoder="efficientnet-lite0"`` / ``"vgg16"``: an ImageNet-pretrained encoder whose stages feed a U-Net
decoder (:class:`~fewcolor.nets.encoder_decoder.EncoderGenerator`, frozen unless ``freeze_encoder=False``),
with the base colorizer's widths so that ``--init`` can start it from the bundled base model. That
generator has no dropout (its noise source in pix2pix): ``dropout`` applies to the U-Net only.
"""

from __future__ import annotations

from fewcolor.nets.encoder_decoder import EncoderGenerator
from fewcolor.nets.encoders import ENCODERS, PretrainedEncoder
from fewcolor.nets.unet import UNetGenerator

#: values of the U-Net family's ``encoder`` config field
ENCODER_CHOICES = ("none", *ENCODERS)


def l_to_ab_generator(encoder: str, base: int, depth: int, dropout: float, freeze_encoder: bool = True
                      ) -> UNetGenerator | EncoderGenerator:
    if encoder == "none":
        return UNetGenerator(base=base, depth=depth, dropout=dropout)
    if encoder not in ENCODERS:
        raise ValueError(f"encoder must be one of {', '.join(ENCODER_CHOICES)}, got {encoder!r}")
    return EncoderGenerator(PretrainedEncoder(encoder, pretrained=True, frozen=freeze_encoder))
