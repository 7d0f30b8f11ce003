"""U-Net regression colorizer: the pix2pix generator trained with L1 alone (no discriminator).

Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial Networks": the generator of
§3.2.1 (a U-Net with skip connections, dropout 0.5 in the first decoder blocks, depth 8 for 256² inputs)
minimising only the L1 term, Eq. 3: L_L1(G) = E‖y − G(x)‖₁ (weighted by λ in Eq. 4; here weight 1).
Departures from the paper, on purpose: no discriminator and no L_cGAN term of Eq. 4 (that is ``cgan``),
so this is pix2pix's "L1 alone" row of its Table 1, in Lab with L as input and ab as output.
``cgan --set discriminator=none`` trains the same generator on the same term (weighted λ = 100 there,
which Adam nearly cancels) through the cGAN code path; this method is the small, separate baseline that
proves the whole path (data → loop → checkpoint → any-size colorize).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from fewcolor.methods.base import AdaptSettings, Method, Phase
from fewcolor.methods.registry import register_method
from fewcolor.nets.generators import ENCODER_CHOICES, l_to_ab_generator


@dataclass
class UNetConfig:
    image_size: int = 256  #: working resolution (longer side) at inference
    base_channels: int = 64
    depth: int = 8  #: pix2pix 256×256 generator
    dropout: float = 0.5
    #: none = the paper's U-Net; else an ImageNet encoder + the base colorizer's decoder (nets/generators.py)
    encoder: str = field(default="none", metadata={"choices": ENCODER_CHOICES})
    freeze_encoder: bool = True  #: keep the pretrained encoder's weights fixed (with encoder != none)
    lr: float = 2e-4
    beta1: float = 0.5


@register_method
class UNetRegression(Method):
    name = "unet"
    summary = "pix2pix U-Net generator trained with an L1 loss only (regression baseline)"
    Config = UNetConfig
    #: `fewcolor adapt` defaults, measured on the emoji fixture (docs/ADAPT.md)
    adapt_defaults = AdaptSettings(steps=100, lr_factor=3)
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "paper": {},
        "cpu": {"image_size": 64, "base_channels": 32, "depth": 6, "lr": 1e-3},
        "tiny": {"image_size": 32, "base_channels": 8, "depth": 4, "lr": 2e-3, "dropout": 0.0},
    }

    def __init__(self, config: UNetConfig) -> None:
        super().__init__(config)
        self.generator = l_to_ab_generator(config.encoder, config.base_channels, config.depth, config.dropout,
                                           config.freeze_encoder)

    @property
    def size_multiple(self) -> int:  # type: ignore[override]
        return self.generator.size_multiple

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {"generator": torch.optim.Adam(self.generator.parameters(), lr=c.lr, betas=(c.beta1, 0.999))}

    def training_step(self, batch: dict[str, Any], step: int) -> Iterator[Phase]:
        pred = self.generator(batch["l"])
        loss = F.l1_loss(pred, batch["ab"])
        yield Phase("generator", loss, {"loss/l1": loss.item()})

    def predict_ab(self, l: torch.Tensor, **options: Any) -> torch.Tensor:
        self.check_options(options)
        return self.generator(l)
