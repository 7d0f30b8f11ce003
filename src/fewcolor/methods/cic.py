"""Zhang, Isola & Efros 2016, "Colorful Image Colorization" (ECCV).

Colorization as classification over Q = 313 quantised ab bins (grid 10, in the sRGB gamut):

- network (:class:`fewcolor.nets.cic.CICNet`): eight conv blocks, dilated conv5/conv6, no pooling,
  313 logits at ¼ resolution;
- target (§2.1): the ground-truth ab, down-sampled (bilinear) to the logits' ¼ resolution, soft-encoded
  on its 5 nearest bins (Gaussian σ = 5);
- loss (Eq. 2): multinomial cross-entropy weighted per pixel by the rebalancing weight of its true bin
  (Eq. 4, λ = 0.5); the prior ``p̃`` (empirical bin distribution smoothed with σ = 5) is computed on the
  training set in :meth:`setup` and kept as a buffer (in the checkpoint). ``lam=1`` is no rebalancing;
  ``loss="regression"`` is the paper's L2 baseline (Eq. 1) with a 2-channel head;
- inference (Eq. 5): logits up-sampled bilinearly to the input size, annealed mean with temperature T
  (0.38; ``predict_ab(l, temperature=T)``).

Loss scale (Eq. 2): summed over the pixels of an image (``loss_reduction="sum"``), averaged over the batch,
so Adam's coupled weight decay 10⁻³ weighs against the data term as in the paper (a per-pixel mean makes the
decay H·W = 4,096 times stronger at 256×256; ``loss_reduction="mean"`` keeps that old behaviour).

The prior buffers, the soft-encoded targets and the inference temperature are shared with the base colorizer
(:class:`fewcolor.methods.bin_classifier.BinClassifier`).

Optimiser (§3): Adam, lr 3·10⁻⁵, β = (0.9, 0.99), weight decay 10⁻³, batch 40; the paper drops the rate to
10⁻⁵ and 3·10⁻⁶ at 200k and 375k of its ~450k iterations: here ``lr_drops`` multiply ``lr`` at those fractions
(``lr_milestones``) of the run's steps (:meth:`learning_rates`), so any run length follows the same schedule.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from fewcolor.color.bins import Q
from fewcolor.color.decode import annealed_mean
from fewcolor.color.normalize import normalize_ab
from fewcolor.color.prior import bin_prior
from fewcolor.data.cache import data_fingerprint, load_or_compute_prior
from fewcolor.data.protocol import Dataset
from fewcolor.losses.cic import REDUCTIONS, rebalanced_cross_entropy
from fewcolor.methods.base import AdaptSettings, InferenceOption, Phase
from fewcolor.methods.bin_classifier import CHROMA_OPTION, BinClassifier
from fewcolor.methods.registry import register_method
from fewcolor.nets.cic import PAPER_WIDTHS, CICNet, CICRegressor

log = logging.getLogger(__name__)


@dataclass
class CICConfig:
    image_size: int = 256  #: working resolution at inference
    widths: tuple[int, ...] = PAPER_WIDTHS  #: conv1..conv8 widths
    loss: str = "classification"  #: "classification" (Eq. 2) or "regression" (L2, Eq. 1)
    lam: float = 0.5  #: rebalancing λ (Eq. 4); 1 = no rebalancing
    prior_sigma: float = 5.0  #: Gaussian smoothing of the prior (§2.2)
    neighbours: int = 5  #: soft-encoding neighbours
    encode_sigma: float = 5.0  #: soft-encoding Gaussian σ
    temperature: float = 0.38  #: annealed-mean T (Eq. 5)
    chroma: float = 1.0  #: scale of the decoded chroma at inference (not in the paper; 1: as decoded)
    prior_cache: bool = True  #: cache the training-set prior under FEWCOLOR_HOME/priors
    loss_reduction: str = "sum"  #: "sum" over an image's pixels (Eq. 2) or "mean" over pixels (the old scale)
    lr: float = 3e-5
    beta1: float = 0.9
    beta2: float = 0.99
    weight_decay: float = 1e-3  #: coupled L2 (added to the gradient, as Caffe's), weighed against the summed loss
    lr_milestones: tuple[float, ...] = (200 / 450, 375 / 450)  #: fractions of the run (paper: 200k, 375k of 450k)
    lr_drops: tuple[float, ...] = (1 / 3, 1 / 10)  #: lr multipliers from each milestone (3e-5 → 1e-5 → 3e-6)


@register_method
class ColorfulColorization(BinClassifier):
    name = "cic"
    summary = "Zhang et al. 2016 colorization as 313-bin classification with class rebalancing"
    Config = CICConfig
    channels_last = True  #: measured faster on the CPU (docs/PERFORMANCE.md)
    #: `fewcolor adapt` defaults, measured on the emoji fixture (docs/ADAPT.md)
    adapt_defaults = AdaptSettings(steps=100, lr_factor=1)
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "paper": {},
        "cpu": {"image_size": 64, "widths": (16, 32, 64, 64, 64, 64, 64, 32), "lr": 1e-3, "weight_decay": 0.0},
        "tiny": {"image_size": 32, "widths": (8, 16, 32, 32, 32, 32, 32, 16), "lr": 3e-3, "weight_decay": 0.0},
    }
    preset_batch_sizes: ClassVar[dict[str, int]] = {"paper": 40}  # §3: "batch size of 40"
    size_multiple = 8
    inference_options = (
        InferenceOption("temperature", "float", "annealed-mean temperature T (→0: the mode, 1: the mean; §3.2)",
                        default=0.38, minimum=0.0),
        CHROMA_OPTION,
    )

    def __init__(self, config: CICConfig) -> None:
        super().__init__(config)
        c = config
        if c.loss_reduction not in REDUCTIONS:
            raise ValueError(f"cic: loss_reduction must be one of {REDUCTIONS}, got {c.loss_reduction!r}")
        if len(c.lr_milestones) != len(c.lr_drops) or list(c.lr_milestones) != sorted(c.lr_milestones):
            raise ValueError("cic: lr_milestones must be increasing fractions of the run, one per lr_drops entry; "
                             f"got {c.lr_milestones} and {c.lr_drops}")
        if c.loss == "classification":
            self.net: torch.nn.Module = CICNet(1, Q, c.widths)
        elif c.loss == "regression":
            self.net = CICRegressor(1, c.widths)
        else:
            raise ValueError(f"cic: loss must be 'classification' or 'regression', got {c.loss!r}")
        self.register_prior()  # buffers p̃ (uniform until setup() sees the training set) and w (Eq. 4)

    # ----- set-up --------------------------------------------------------------------------
    def setup(self, train_data: Dataset) -> None:
        """Empirical ab-bin prior of the training set (smoothed) and its rebalancing weights."""
        c = self.config
        if c.loss != "classification":
            return
        n = len(train_data)

        def compute() -> torch.Tensor:
            return bin_prior((train_data[i] for i in range(n)), sigma=c.prior_sigma, progress=n >= 50, total=n)

        key = _dataset_key(train_data, c.prior_sigma)
        prior = load_or_compute_prior(key, compute) if (c.prior_cache and key) else compute()
        self.set_prior(prior)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        return {"net": torch.optim.Adam(self.net.parameters(), lr=c.lr, betas=(c.beta1, c.beta2),
                                        weight_decay=c.weight_decay)}

    def learning_rates(self, step: int, total_steps: int) -> dict[str, float]:
        """§3's step schedule: ``lr`` times the drop of the last milestone (a fraction of the run) passed."""
        c = self.config
        factor = 1.0
        for milestone, drop in zip(c.lr_milestones, c.lr_drops, strict=True):
            if step >= milestone * total_steps:
                factor = drop
        return {"net": c.lr * factor}

    # ----- training ------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], step: int) -> Iterator[Phase]:
        l, ab = batch["l"], batch["ab"]
        if self.config.loss == "regression":
            err = (self.net(l).float() - ab.float()).square()
            # Eq. 1: ½ Σ_{h,w} ‖Y − Ŷ‖² per image (in normalised ab units), or the old per-element mean
            loss = err.mean() if self.config.loss_reduction == "mean" else 0.5 * err.sum(dim=(1, 2, 3)).mean()
            yield Phase("net", loss, {"loss/l2": loss.item()})
            return
        logits = self.net(l)
        # §2.1: the truth down-sampled to the logits' ¼ resolution, soft-encoded on its nearest bins
        target = self.targets(ab, tuple(logits.shape[-2:])).to(logits.device)
        loss = rebalanced_cross_entropy(logits, target, self.bin_weights, self.config.loss_reduction)
        yield Phase("net", loss, {"loss/ce": loss.item()})

    # ----- inference -----------------------------------------------------------------------
    def predict_ab(self, l: torch.Tensor, **options: Any) -> torch.Tensor:
        self.check_options(options)
        if self.config.loss == "regression":
            return self.scaled_chroma(self.net(l), options)
        t = self.annealing_temperature(options)
        logits = F.interpolate(self.net(l).float(), size=l.shape[-2:], mode="bilinear", align_corners=False)
        return self.scaled_chroma(normalize_ab(annealed_mean(logits, t)), options)


def _dataset_key(data: Dataset, sigma: float) -> str | None:
    """A cache key naming the training images (:func:`fewcolor.data.cache.data_fingerprint`: root, paths,
    sizes, modification times), the transform and the smoothing; None for a dataset without a file list
    (then the prior is computed every time)."""
    fingerprint = data_fingerprint(data)
    if fingerprint is None:
        return None
    text = json.dumps({"data": fingerprint, "transform": repr(getattr(data, "transform", None))}, sort_keys=True)
    return f"cic-{hashlib.sha256(text.encode()).hexdigest()[:16]}-hard-s{sigma:g}"
