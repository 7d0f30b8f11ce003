"""fewcolor's base colorizer: the seeds' best ideas on an ImageNet-pretrained encoder.

Not a paper's method: the project's own recipe for a colour prior that already knows the world, so a
user's few images only have to adapt it. Each ingredient comes from a seed paper:

1. **Pretrained encoder** (:class:`fewcolor.nets.encoders.PretrainedEncoder`, EfficientNet-Lite0 ImageNet
   weights by default): taps at strides 2–32 feed a U-Net decoder (pix2pix's skips, Isola et al. 2017
   §3.2). Frozen by default (``freeze_encoder``), so a CPU trains only the decoder; ``unfreeze_at`` lets it
   train later at ``lr · encoder_lr_scale``.
2. **Global features fused at the bottleneck** (Iizuka et al. 2016, §3.3): the encoder's pooled last
   features, replicated and mixed in by a 1×1 conv (``global_features``).
3. **Colour as classification over the 313 in-gamut ab bins** at ¼ resolution (Zhang et al. 2016, §2.1):
   soft-encoded targets (5 neighbours, σ = 5), cross-entropy weighted by the class-rebalancing weights of
   Eq. 4 (λ = ``lam``) from the training set's smoothed ab prior, computed in :meth:`setup` on a seeded
   subset of ``prior_images`` images (the prior is a distribution: a few thousand images fix it).
4. **Annealed mean** (Zhang et al. Eq. 5, T = ``temperature``) at inference; during training an **L1 term**
   on the annealed mean (weight ``l1_weight``, ab/110 units) ties the decoded colour to the truth, which the
   cross-entropy alone does not (it only scores bins).

Loss per step: ``CE_rebalanced(logits, soft(ab)) + l1_weight · |annealed_mean(logits) − ab|₁`` (both means
over pixels). Which ingredients matter is measured by the ablation in docs/MODEL_CARD.md (section "Ablation").
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from fewcolor.color.decode import annealed_mean
from fewcolor.color.normalize import normalize_ab
from fewcolor.color.prior import bin_prior
from fewcolor.data.protocol import Dataset
from fewcolor.losses.cic import rebalanced_cross_entropy
from fewcolor.methods.base import AdaptSettings, InferenceOption, Phase
from fewcolor.methods.bin_classifier import CHROMA_OPTION, BinClassifier, ab_at_size
from fewcolor.methods.registry import register_method
from fewcolor.nets.encoder_decoder import BASE_WIDTHS, EncoderDecoder, EncoderGenerator
from fewcolor.nets.encoders import PretrainedEncoder


@dataclass
class BaseColorizerConfig:
    image_size: int = 128  #: training crop (and fine-tuning crop in `adapt`)
    #: default working resolution at inference (longer side); 224 measured better than the 128 of training
    #: on Imagenette val (docs/MODEL_CARD.md): the encoder sees more context
    work_size: int = 224
    encoder: str = "efficientnet-lite0"  #: efficientnet-lite0 or vgg16 (ImageNet weights)
    encoder_pretrained: bool = True  #: False: random init of the same encoder (ablation)
    freeze_encoder: bool = True  #: keep the encoder's ImageNet weights fixed
    unfreeze_at: int = -1  #: step at which a frozen encoder starts training (-1: never)
    encoder_lr_scale: float = 0.1  #: encoder learning rate relative to ``lr`` once unfrozen
    widths: tuple[int, ...] = BASE_WIDTHS  #: decoder widths, deepest level first
    global_features: bool = True  #: Iizuka-style fusion of the pooled encoder features
    #: rebalancing λ (Zhang Eq. 4; the paper's 0.5); 1 = no rebalancing. 0.75 since the ablation of
    #: docs/MODEL_CARD.md: at 0.5 the vivid colours cost FID, LPIPS and ΔE00; 0.75 keeps 0.86× the truths'
    #: colourfulness with LPIPS 0.166 instead of 0.183 (1,000 steps, 500 Imagenette val photos)
    lam: float = 0.75
    prior_sigma: float = 5.0  #: Gaussian smoothing of the ab prior
    prior_images: int = 2000  #: training images (seeded subset) that estimate the ab prior
    neighbours: int = 5  #: soft-encoding neighbours
    encode_sigma: float = 5.0  #: soft-encoding Gaussian σ
    temperature: float = 0.38  #: annealed-mean T at inference and in the L1 term
    chroma: float = 1.0  #: scale of the decoded chroma at inference (1: as decoded; not in training)
    ce_weight: float = 1.0  #: weight of the rebalanced cross-entropy (0: L1 only, an ablation)
    l1_weight: float = 0.5  #: weight of the L1 term on the annealed mean
    lr: float = 1e-3  #: Adam learning rate of the decoder
    beta1: float = 0.9
    beta2: float = 0.99
    weight_decay: float = 0.0
    seed: int = 0  #: seed of the prior's image subset


@register_method
class BaseColorizer(BinClassifier):
    name = "base"
    summary = "fewcolor's base colorizer: pretrained encoder + U-Net decoder, 313-bin classification + L1"
    Config = BaseColorizerConfig
    channels_last = True  #: measured faster on the CPU (docs/PERFORMANCE.md)
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "paper": {},
        "cpu": {},
        "tiny": {"image_size": 32, "widths": (32, 24, 16, 16), "prior_images": 64},
    }
    size_multiple = 32
    #: measured with the first bundle on four Flowers-12 test species, 4 supports and 8 queries each
    #: (docs/ADAPT.md): 100 steps at the training learning rate with the batch-norm statistics kept (the
    #: four images' would replace those of 28,000 photos) scored best, LPIPS 0.155 / ΔE00 10.9 against
    #: 0.164 / 12.7 updating them and 0.239 / 15.7 unadapted; the λ 0.75 bundle: 0.230 / 14.74 unadapted,
    #: 0.154 / 11.25 with these settings (docs/MODEL_CARD.md)
    adapt_defaults = AdaptSettings(steps=100, lr_factor=1.0, keep_norm_statistics=True)
    inference_options = (
        InferenceOption("temperature", "float", "annealed-mean temperature T (Zhang Eq. 5; →0: the mode, 1: the mean)",
                        default=0.38, minimum=0.0),
        CHROMA_OPTION,
    )

    def __init__(self, config: BaseColorizerConfig) -> None:
        super().__init__(config)
        c = config
        self.register_prior()  # buffers p̃ (uniform until setup() sees the training set) and w (Zhang Eq. 4)
        encoder = PretrainedEncoder(c.encoder, pretrained=c.encoder_pretrained, frozen=c.freeze_encoder)
        # Named like the U-Net family's ``encoder`` generator, so their --init loads every tensor.
        self.generator = EncoderGenerator(encoder, tuple(c.widths), c.temperature, c.global_features)

    @property
    def net(self) -> EncoderDecoder:
        """The encoder-decoder that gives the 313 bin logits."""
        return self.generator.net

    # ----- set-up --------------------------------------------------------------------------
    def setup(self, train_data: Dataset) -> None:
        """The training set's smoothed ab-bin prior (on a seeded subset) and its rebalancing weights."""
        c = self.config
        n = len(train_data)
        g = torch.Generator().manual_seed(c.seed)
        order = torch.randperm(n, generator=g)[: min(n, c.prior_images)].tolist()
        prior = bin_prior((_quarter(train_data[i]["ab"]) for i in order), sigma=c.prior_sigma,
                          progress=len(order) >= 200, total=len(order))
        self.set_prior(prior)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        encoder_params = list(self.net.encoder.parameters())
        ids = {id(p) for p in encoder_params}
        decoder_params = [p for p in self.net.parameters() if id(p) not in ids]
        groups = [{"params": decoder_params, "lr": c.lr},
                  {"params": encoder_params, "lr": c.lr * c.encoder_lr_scale}]
        return {"net": torch.optim.Adam(groups, lr=c.lr, betas=(c.beta1, c.beta2), weight_decay=c.weight_decay)}

    # ----- training ------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], step: int) -> Iterator[Phase]:
        c = self.config
        if c.freeze_encoder and c.unfreeze_at >= 0 and step >= c.unfreeze_at and self.net.encoder.frozen:
            self.net.encoder.set_frozen(False)
        l, ab = batch["l"], batch["ab"]
        logits = self.net(l).float()
        small = ab_at_size(ab, tuple(logits.shape[-2:]))  # the truth at the logits' ¼ resolution
        logs: dict[str, float] = {}
        loss = logits.new_zeros(())
        if c.ce_weight > 0:
            target = self.soft_targets(small)
            # the mean over pixels, as the bundled weights were trained (CIC's Eq. 2 sums them: at 128 px the
            # CE would then outweigh the L1 term ~1000 times, another recipe)
            ce = rebalanced_cross_entropy(logits, target, self.bin_weights, reduction="mean")
            loss = loss + c.ce_weight * ce
            logs["loss/ce"] = ce.item()
        if c.l1_weight > 0:
            l1 = (normalize_ab(annealed_mean(logits, c.temperature)) - small).abs().mean()
            loss = loss + c.l1_weight * l1
            logs["loss/l1"] = l1.item()
        yield Phase("net", loss, logs)

    # ----- inference -----------------------------------------------------------------------
    def working_resolution(self) -> int:
        return int(self.config.work_size)

    def predict_ab(self, l: torch.Tensor, **options: Any) -> torch.Tensor:
        self.check_options(options)
        return self.scaled_chroma(self.generator(l, temperature=self.annealing_temperature(options)), options)


def _quarter(ab: torch.Tensor) -> torch.Tensor:
    """ab at ¼ resolution resized as the loss's targets are (:func:`ab_at_size`), so the prior that weighs the
    loss counts the colours the loss sees (and 16× fewer pixels). Until 2026-12-04 this averaged (``area``),
    which mixes neighbouring colours into duller ones than the bilinear targets hold; the bundled weights were
    trained with that prior (it is in their checkpoint, so they are unchanged)."""
    h, w = ab.shape[-2:]
    return ab_at_size(ab[None], (max(1, h // 4), max(1, w // 4)))[0]
