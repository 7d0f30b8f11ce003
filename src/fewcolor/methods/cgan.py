"""Conditional GAN colorization: pix2pix (Isola et al. 2017) and the GAN-loss family of Fabbri &
Islam ("Adversarial Networks for Automatic Colorization").

The generator maps normalised L to normalised ab: the pix2pix U-Net (tanh output, dropout as the
only noise, §3.2) or the CIC network with a regression head (Fabbri & Islam §3.1). The discriminator
sees ``concat(L, ab)`` — conditioned on L (pix2pix Eq. 1) — and is a 70×70 PatchGAN, a DCGAN-style
single-logit net, or EBGAN's auto-encoder. Each training step is pix2pix's alternation (§3.3):

1. discriminator phase(s): ``L_D(D(L, ab), D(L, G(L)))`` with G's output detached (+ WGAN-GP's
   penalty; WGAN clips D's weights after the step);
2. generator phase, computed after D's update: ``λ_GAN·L_G(D(L, G(L))) + λ_L1·|G(L)-ab|₁ + λ_L2·||G(L)-ab||²``
   (pix2pix Eq. 4, λ_L1 = 100).

Adam, lr 2·10⁻⁴, β = (0.5, 0.999) for both nets (pix2pix §3.3).

Fabbri & Islam's configurations are presets: ``fabbri`` (CIC generator with dropout as its noise, batch 32)
and ``fabbri-g`` (their "Col.Col.(G)" row: the same generator trained as a regressor alone —
``discriminator="none"``: no discriminator is built, no discriminator step runs). ``-cpu`` variants are ours.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from fewcolor.losses.gan import GAN_KINDS, GanLoss, gradient_penalty
from fewcolor.losses.pixel import PixelLoss
from fewcolor.methods.base import AdaptSettings, Method, Phase
from fewcolor.methods.registry import register_method
from fewcolor.nets.cic import PAPER_WIDTHS, CICRegressor
from fewcolor.nets.discriminators import build_discriminator
from fewcolor.nets.encoder_decoder import EncoderGenerator
from fewcolor.nets.generators import ENCODER_CHOICES, l_to_ab_generator
from fewcolor.nets.unet import UNetGenerator


@dataclass
class CGANConfig:
    image_size: int = 256  #: training/working resolution (the DCGAN discriminator is built for it)
    generator: str = "unet"  #: "unet" (pix2pix) or "cic" (CIC network + L1/L2 regression head)
    base_channels: int = 64  #: U-Net width (C64-C128-...)
    depth: int = 8  #: U-Net down-samplings (8 = pix2pix 256×256)
    dropout: float = 0.5  #: generator dropout, the noise z (pix2pix U-Net decoder; CIC generator conv6–conv8)
    cic_widths: tuple[int, ...] = PAPER_WIDTHS  #: CIC generator block widths
    #: U-Net generator: none = pix2pix's; else an ImageNet encoder + the base colorizer's decoder (nets/generators.py)
    encoder: str = field(default="none", metadata={"choices": ENCODER_CHOICES})
    freeze_encoder: bool = True  #: keep the pretrained encoder's weights fixed (with encoder != none)
    discriminator: str = "patch"  #: "patch" (70×70 PatchGAN), "dcgan", "autoencoder" (ebgan), "none" (G alone)
    d_base: int = 64  #: discriminator width of the first layer
    d_layers: int = 3  #: PatchGAN stride-2 layers (3 = 70×70) / auto-encoder depth
    d_norm: str = "auto"  #: "batch", "instance", "none"; auto = batch, instance for wgan-gp
    d_activation: str = "leaky"  #: DCGAN-style D blocks: "leaky" (LeakyReLU 0.2) or "relu" (MetalGAN's)
    gan_loss: str = field(default="vanilla", metadata={"choices": GAN_KINDS})  #: the adversarial loss
    gan_weight: float = 1.0
    l1_weight: float = 100.0  #: pix2pix λ
    l2_weight: float = 0.0
    d_steps: int = 1  #: discriminator updates per generator update (on the same batch)
    ebgan_margin: float = 1.0  #: EBGAN m, in units of the energy (per-pixel MSE of normalised L,ab)
    wgan_clip: float = 0.01  #: WGAN weight-clipping bound c
    gp_weight: float = 10.0  #: WGAN-GP λ
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    seed: int = 0  #: seeds WGAN-GP's interpolation ε (a function of seed and step, so resuming is exact)


@register_method
class ConditionalGAN(Method):
    name = "cgan"
    summary = "pix2pix-style conditional GAN (U-Net or CIC generator; PatchGAN/DCGAN/EBGAN critic; 6 GAN losses)"
    Config = CGANConfig
    channels_last = True  #: measured faster on the CPU (docs/PERFORMANCE.md)
    #: `fewcolor adapt` defaults, measured on the emoji fixture (docs/ADAPT.md)
    adapt_defaults = AdaptSettings(steps=300, lr_factor=1)
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "paper": {},
        "cpu": {"image_size": 64, "base_channels": 32, "depth": 6, "d_base": 32,
                "cic_widths": (16, 32, 64, 64, 64, 64, 64, 32)},
        "tiny": {"image_size": 32, "base_channels": 8, "depth": 4, "dropout": 0.0, "d_base": 8, "d_layers": 2,
                 "cic_widths": (4, 8, 16, 16, 16, 16, 16, 8), "lr": 1e-3},
        # MetalGAN's networks and hyper-parameters without clusters or Reptile (its comparison baseline):
        # U-Net G, DCGAN-style D, vanilla GAN + 100·L1, λ_G = λ_D = 1e-4 (see methods/metalgan.py presets).
        "metalgan": {"discriminator": "dcgan", "d_activation": "relu", "lr": 1e-4},
        "metalgan-cpu": {"image_size": 64, "base_channels": 32, "depth": 6, "discriminator": "dcgan", "d_base": 32,
                         "d_activation": "relu", "lr": 1e-4},
        # Fabbri & Islam: the CIC network as generator (noise = dropout); "-g": the generator alone, no D.
        "fabbri": {"generator": "cic"},
        "fabbri-g": {"generator": "cic", "discriminator": "none", "gan_weight": 0.0},
        "fabbri-cpu": {"image_size": 64, "generator": "cic", "cic_widths": (16, 32, 64, 64, 64, 64, 64, 32),
                       "d_base": 32},
        "fabbri-g-cpu": {"image_size": 64, "generator": "cic", "cic_widths": (16, 32, 64, 64, 64, 64, 64, 32),
                         "discriminator": "none", "gan_weight": 0.0},
    }
    preset_batch_sizes: ClassVar[dict[str, int]] = {"fabbri": 32, "fabbri-g": 32}

    def __init__(self, config: CGANConfig) -> None:
        super().__init__(config)
        c = config
        self.generator_only = c.discriminator == "none"
        if self.generator_only and c.gan_weight != 0:
            raise ValueError("cgan: discriminator='none' trains the generator alone; set gan_weight=0 "
                             "(the fabbri-g preset does)")
        if c.gan_loss not in GAN_KINDS:
            raise ValueError(f"cgan: unknown gan_loss {c.gan_loss!r}; choose one of {', '.join(GAN_KINDS)}")
        self.gan = GanLoss(c.gan_loss, margin=c.ebgan_margin, clip=c.wgan_clip, gp_weight=c.gp_weight)
        if not self.generator_only and self.gan.needs_autoencoder != (c.discriminator == "autoencoder"):
            raise ValueError(
                f"cgan: gan_loss={c.gan_loss!r} with discriminator={c.discriminator!r} does not fit; EBGAN needs "
                "discriminator='autoencoder' (an energy), and the auto-encoder only makes sense with gan_loss='ebgan'"
            )
        if c.d_steps < 1:
            raise ValueError(f"cgan: d_steps must be >= 1, got {c.d_steps}")
        self.pixel = PixelLoss(c.l1_weight, c.l2_weight)
        if c.generator == "unet":
            self.generator: UNetGenerator | EncoderGenerator | CICRegressor = l_to_ab_generator(
                c.encoder, c.base_channels, c.depth, c.dropout, c.freeze_encoder
            )
        elif c.generator == "cic":
            self.generator = CICRegressor(1, c.cic_widths, c.dropout)
        else:
            raise ValueError(f"cgan: unknown generator {c.generator!r}; use 'unet' or 'cic'")
        self.discriminator: torch.nn.Module | None = None
        if not self.generator_only:
            d_norm = c.d_norm if c.d_norm != "auto" else ("batch" if self.gan.batchnorm_ok else "instance")
            self.discriminator = build_discriminator(
                c.discriminator, 3, c.image_size, base=c.d_base, norm=d_norm, n_layers=c.d_layers,
                activation=c.d_activation,
            )

    @property
    def size_multiple(self) -> int:  # type: ignore[override]
        return int(self.generator.size_multiple)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        betas = (c.beta1, c.beta2)
        opts: dict[str, torch.optim.Optimizer] = {
            "generator": torch.optim.Adam(self.generator.parameters(), lr=c.lr, betas=betas)}
        if self.discriminator is not None:
            opts["discriminator"] = torch.optim.Adam(self.discriminator.parameters(), lr=c.lr, betas=betas)
        return opts

    def training_step(self, batch: dict[str, Any], step: int) -> Iterator[Phase]:
        c = self.config
        l, ab = batch["l"], batch["ab"]
        fake = self.generator(l)
        if self.discriminator is None:  # generator alone: the pixel losses only
            pix, pix_logs = self.pixel(fake, ab)
            yield Phase("generator", pix, {"loss/g": pix.item(), "loss/l1": pix_logs["l1"], "loss/l2": pix_logs["l2"]})
            return
        d = self.discriminator
        real_pair = torch.cat([l, ab], dim=1)
        fake_pair = torch.cat([l, fake], dim=1)
        after = (lambda: self.gan.clip_(d)) if self.gan.needs_clipping else None
        for k in range(c.d_steps):
            d_real = d(real_pair)
            d_fake = d(fake_pair.detach())
            loss_d = self.gan.d_loss(d_real, d_fake)
            logs = {"loss/d": loss_d.item(), "d/real": d_real.mean().item(), "d/fake": d_fake.mean().item()}
            if self.gan.needs_gradient_penalty:
                g = torch.Generator().manual_seed((c.seed * 1_000_003 + step) * 16 + k)
                gp = gradient_penalty(d, real_pair, fake_pair, c.gp_weight, generator=g)
                loss_d = loss_d + gp
                logs["loss/gp"] = gp.item()
            yield Phase("discriminator", loss_d, logs, after)
        # After D's update: the generator's adversarial term sees the updated discriminator.
        adv = self.gan.g_loss(d(fake_pair))
        pix, pix_logs = self.pixel(fake, ab)
        loss_g = c.gan_weight * adv + pix
        yield Phase("generator", loss_g, {"loss/g": loss_g.item(), "loss/g_adv": adv.item(),
                                          "loss/l1": pix_logs["l1"], "loss/l2": pix_logs["l2"]})

    def predict_ab(self, l: torch.Tensor, **options: Any) -> torch.Tensor:
        self.check_options(options)
        return self.generator(l)
