"""What the 313-bin colour classifiers share (Zhang, Isola & Efros 2016, "Colorful Image Colorization", §2).

:class:`BinClassifier` is the base of the methods that classify every pixel's ab over the Q = 313 in-gamut
bins: ``cic`` (the paper's method) and ``base`` (fewcolor's base colorizer). It holds the pieces both
recipes use unchanged, so each method file only says how it builds its logits and weighs its losses:

- the empirical prior ``p̃`` and its class-rebalancing weights (§2.2, Eq. 4), kept as buffers of the
  method itself named ``prior`` and ``bin_weights`` (checkpoints and the bundled model store them by these
  names; :func:`fewcolor.color.prior.prior_and_weights` computes them);
- the training targets (§2.1): the ground-truth ab down-sampled bilinearly to the logits' size and
  soft-encoded on its nearest bins (:func:`fewcolor.color.soft_encode.soft_encode_ab_normalized`);
- the inference temperature T of the annealed mean (Eq. 5): the ``temperature`` option, else the config's;
- a scale of the decoded chroma, the ``chroma`` option (:data:`CHROMA_OPTION`), else the config's: not in
  the paper. 1 keeps the decoded ab; below 1 mutes every colour towards grey, which hedges uncertain hues —
  ΔE00 and PSNR reward it, colourfulness drops (measured in docs/MODEL_CARD.md, "Chroma scale").

The config of a subclass has the fields ``lam`` (λ of Eq. 4), ``neighbours`` and ``encode_sigma`` (the
soft-encoding's k and σ), ``temperature`` and ``chroma``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from fewcolor.color.bins import Q
from fewcolor.color.prior import prior_and_weights
from fewcolor.color.soft_encode import soft_encode_ab_normalized
from fewcolor.methods.base import InferenceOption, InferenceOptionError, Method

__all__ = ["CHROMA_OPTION", "BinClassifier", "ab_at_size"]

#: the decoded chroma's scale, an inference option of every bin classifier
CHROMA_OPTION = InferenceOption(
    "chroma", "float", "scale of the decoded colours' chroma: 1 as decoded, < 1 muted towards grey (lower "
    "ΔE00 where hues are uncertain, less colourful), > 1 more saturated", default=1.0, minimum=0.0, maximum=2.0)


def ab_at_size(ab: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Normalised ab ``(B,2,H,W)`` resized bilinearly (float32) to the logits' ``size`` (Zhang §2.1: the
    target is compared with the ¼-resolution output)."""
    return F.interpolate(ab.float(), size=size, mode="bilinear", align_corners=False)


class BinClassifier(Method):
    """A method whose network gives Q = 313 ab-bin logits per pixel (see the module docstring).

    A subclass calls :meth:`register_prior` in its ``__init__``; :meth:`set_prior` then installs the training
    set's prior (from ``setup``).
    """

    prior: torch.Tensor  # registered buffer (register_prior)
    bin_weights: torch.Tensor  # registered buffer (register_prior)

    def register_prior(self) -> None:
        """Check the config's λ and chroma and register the buffers ``prior`` and ``bin_weights`` on the method itself:
        until :meth:`set_prior` sees the training set, a uniform prior, i.e. rebalancing weights of 1."""
        lam = self.config.lam
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"{self.name}: lam must be in [0, 1], got {lam}")
        if not 0.0 <= self.config.chroma <= 2.0:  # caught when the run is built, not after its training
            raise ValueError(f"{self.name}: chroma must be in [0, 2], got {self.config.chroma}")
        self.register_buffer("prior", torch.full((Q,), 1.0 / Q))
        self.register_buffer("bin_weights", torch.ones(Q))

    def set_prior(self, prior: torch.Tensor) -> None:
        """Use ``prior`` (Q,) as p̃ and derive the rebalancing weights (Zhang Eq. 4, λ from the config)."""
        p, w = prior_and_weights(prior, self.config.lam)
        self.prior.copy_(p)
        self.bin_weights.copy_(w)

    def soft_targets(self, ab: torch.Tensor) -> torch.Tensor:
        """Soft-encoding ``(B,Q,h,w)`` of normalised ab ``(B,2,h,w)`` on its ``neighbours`` nearest bins with
        Gaussian weights of σ = ``encode_sigma`` (Zhang §2.1, the target Z of Eq. 2)."""
        return soft_encode_ab_normalized(ab, k=self.config.neighbours, sigma=self.config.encode_sigma)

    def targets(self, ab: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Soft-encoded ground truth ``(B,Q,h,w)`` at the logits' size from normalised ab."""
        return self.soft_targets(ab_at_size(ab, size))

    def annealing_temperature(self, options: Mapping[str, Any]) -> float:
        """T of the annealed mean (Zhang Eq. 5) for one inference call: the ``temperature`` option, else the
        config's; a negative T raises :class:`InferenceOptionError`."""
        t = options.get("temperature")
        t = self.config.temperature if t is None else float(t)
        if t < 0:
            raise InferenceOptionError(f"{self.name}: temperature must be >= 0, got {t}")
        return t

    def scaled_chroma(self, ab: torch.Tensor, options: Mapping[str, Any]) -> torch.Tensor:
        """Normalised ab ``(B,2,H,W)`` times the ``chroma`` option (else the config's), pixels past [-1, 1]
        scaled back along their own hue; a scale outside [0, 2] raises :class:`InferenceOptionError`."""
        c = options.get("chroma")
        c = self.config.chroma if c is None else float(c)
        if not 0.0 <= c <= 2.0:
            raise InferenceOptionError(f"{self.name}: chroma must be in [0, 2], got {c}")
        if c == 1.0:
            return ab
        out = ab * c
        # past the [-1, 1] box shrink a and b together (a per-channel clamp would turn the hue)
        return out / out.abs().amax(dim=1, keepdim=True).clamp_min(1.0)
