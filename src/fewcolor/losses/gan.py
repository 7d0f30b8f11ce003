"""The GAN-loss family behind one interface: ``GanLoss(kind).d_loss(real_out, fake_out)`` and
``.g_loss(fake_out)``, where the outputs are the discriminator's raw scores on real and generated
samples (any shape; averaged).

Kinds and what they ask of the discriminator:

- ``vanilla`` — Goodfellow et al. 2014, Eq. 1, as binary cross-entropy on logits; the generator uses
  the non-saturating loss ``-log D(G(z))`` (their §3).
- ``lsgan`` — Mao et al. 2017, Eq. 2 with a=0, b=c=1: ``½E[(D(x)-1)²] + ½E[D(G(z))²]``, ``½E[(D(G(z))-1)²]``.
- ``wgan`` — Arjovsky et al. 2017, Algorithm 1: critic loss ``E[D(G(z))] - E[D(x)]``, generator
  ``-E[D(G(z))]``; the critic's weights are clipped to ``[-c, c]`` after each step (:meth:`clip_`).
- ``wgan-gp`` — Gulrajani et al. 2017, Algorithm 1: the WGAN losses plus ``λ E[(||∇D(x̂)||₂ - 1)²]`` on
  random interpolates ``x̂`` (:func:`gradient_penalty`, λ = 10), no clipping.
- ``ebgan`` — Zhao et al. 2017, Eq. 1–2: the discriminator outputs an energy (an auto-encoder's
  reconstruction error, :class:`fewcolor.nets.discriminators.AutoEncoderDiscriminator`);
  ``L_D = D(x) + max(0, m - D(G(z)))``, ``L_G = D(G(z))``.
- ``hinge`` — Lim & Ye 2017 / Miyato et al. 2018: ``E[max(0, 1-D(x))] + E[max(0, 1+D(G(z)))]``,
  ``-E[D(G(z))]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

GAN_KINDS = ("vanilla", "lsgan", "wgan", "wgan-gp", "ebgan", "hinge")


class GanLoss:
    """Discriminator and generator losses for one GAN kind (see the module docstring).

    ``margin`` is EBGAN's m, ``clip`` WGAN's weight-clipping bound c (0.01 in the paper), ``gp_weight``
    WGAN-GP's λ (10 in the paper).
    """

    def __init__(self, kind: str = "vanilla", margin: float = 10.0, clip: float = 0.01, gp_weight: float = 10.0):
        if kind not in GAN_KINDS:
            raise ValueError(f"unknown GAN loss {kind!r}; choose one of {', '.join(GAN_KINDS)}")
        if kind == "ebgan" and margin <= 0:
            raise ValueError(f"EBGAN needs a positive margin, got {margin}")
        self.kind = kind
        self.margin = float(margin)
        self.clip = float(clip)
        self.gp_weight = float(gp_weight)

    # ----- what the discriminator must be --------------------------------------------------
    @property
    def needs_autoencoder(self) -> bool:
        """EBGAN's discriminator is an auto-encoder returning an energy."""
        return self.kind == "ebgan"

    @property
    def needs_clipping(self) -> bool:
        """WGAN clips the critic's weights after every critic step."""
        return self.kind == "wgan"

    @property
    def needs_gradient_penalty(self) -> bool:
        return self.kind == "wgan-gp"

    @property
    def batchnorm_ok(self) -> bool:
        """WGAN-GP's penalty is per sample; Gulrajani et al. (§4) drop batch norm from the critic."""
        return self.kind != "wgan-gp"

    # ----- losses -------------------------------------------------------------------------
    def d_loss(self, real_out: torch.Tensor, fake_out: torch.Tensor) -> torch.Tensor:
        """The discriminator's (critic's) loss; lower means it separates real from fake better."""
        k = self.kind
        if k == "vanilla":
            return F.binary_cross_entropy_with_logits(
                real_out, torch.ones_like(real_out)
            ) + F.binary_cross_entropy_with_logits(fake_out, torch.zeros_like(fake_out))
        if k == "lsgan":
            return 0.5 * ((real_out - 1).pow(2).mean() + fake_out.pow(2).mean())
        if k in ("wgan", "wgan-gp"):
            return fake_out.mean() - real_out.mean()
        if k == "ebgan":
            return real_out.mean() + F.relu(self.margin - fake_out).mean()
        return F.relu(1 - real_out).mean() + F.relu(1 + fake_out).mean()  # hinge

    def g_loss(self, fake_out: torch.Tensor) -> torch.Tensor:
        """The generator's adversarial loss; lower means the discriminator scores fakes as more real."""
        k = self.kind
        if k == "vanilla":  # non-saturating
            return F.binary_cross_entropy_with_logits(fake_out, torch.ones_like(fake_out))
        if k == "lsgan":
            return 0.5 * (fake_out - 1).pow(2).mean()
        if k == "ebgan":
            return fake_out.mean()
        return -fake_out.mean()  # wgan, wgan-gp, hinge

    @torch.no_grad()
    def clip_(self, discriminator: nn.Module) -> None:
        """WGAN weight clipping: clamp every parameter of the critic to ``[-c, c]`` in place."""
        for p in discriminator.parameters():
            p.clamp_(-self.clip, self.clip)


def gradient_penalty(
    critic: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    weight: float = 10.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """WGAN-GP's penalty ``λ E[(||∇_x̂ D(x̂)||₂ - 1)²]`` with ``x̂ = εx + (1-ε)x̃``, ``ε ~ U[0,1]`` per
    sample (Gulrajani et al. 2017, Eq. 3). ``fake`` is detached; the penalty is differentiable w.r.t. the
    critic's parameters (``create_graph=True``)."""
    if real.shape != fake.shape:
        raise ValueError(f"gradient_penalty: real {tuple(real.shape)} and fake {tuple(fake.shape)} differ")
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), generator=generator, device="cpu")
    eps = eps.to(device=real.device, dtype=real.dtype)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    # Per-sample critic value = mean over its patch scores, matching d_loss's averaging.
    out = critic(x_hat).reshape(real.shape[0], -1).mean(1)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    norms = grad.flatten(1).norm(2, dim=1)
    return weight * (norms - 1).pow(2).mean()
