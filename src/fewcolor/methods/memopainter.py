"""MemoPainter (Yoo et al., "Coloring With Limited Data: Few-Shot Colorization via Memory-Augmented
Networks", CVPR 2019): a colour memory retrieves a colour feature for a grey image and an AdaIN U-Net
paints with it.

The recipe, one training step (paper §3, Fig. 2):

1. **Memory network** (§3.1). The grey image goes through a frozen pretrained backbone (the paper:
   ResNet18 pool5, 512-d; here the first of :data:`BACKBONES` whose weights resolve offline, recorded in
   the checkpoint) and a learnable linear layer ``W, b``; the result is L2-normalised into the query
   ``q`` (Eq. 2). Its top-k nearest memory keys by cosine similarity give the threshold triplet loss
   ``L_t = max(q·K[n_b] − q·K[n_p] + α, 0)`` (Eq. 4): ``n_p`` the nearest slot whose colour value is within
   δ of the image's true colour feature, ``n_b`` the nearest beyond δ. Optimiser ``memory`` trains W, b.
2. **Memory update** (§3.1, no gradient): with the updated ``q``, the nearest slot is confirmed
   (key ← normalise(q + key), age 0) if its value is within δ, otherwise ``(q, C)`` is written into a
   random oldest slot (:class:`fewcolor.nets.memory.ColorMemory`).
3. **Discriminator** (§3.2): vanilla GAN (BCE) on ``D(L, ab, C)``, conditioned on the grey image and the
   colour feature (projected linearly and broadcast over the image).
4. **Generator** (§3.2): ``G(L, C)``, a U-Net with AdaIN layers whose γ, β come from an MLP on C
   (:class:`fewcolor.nets.adain.AdaINUNet`); loss = adversarial + smooth-L1 to the true ab (Eq. 6–7).
   Training conditions on the ground-truth colour feature C; at test time C is the top-1 retrieved value.

Colour features (§3.1, "Colour feature"): ``dist`` — C_dist, the 313-bin ab distribution compared with
the symmetric KL divergence; ``rgb`` — C_RGB, the 10 dominant colours compared with CIEDE2000 (mean over
the 10 colour pairs, in rank order).

**Res-cGAN** (the paper's ablation, Fig. 1 and §4): ``memory=False`` — the same generator and
discriminator with no memory network; the generator is conditioned on a learned constant feature. It
is also registered under its own name, ``res-cgan`` (``fewcolor.methods.res_cgan``).

Inference options: ``variant`` (use the i-th nearest memory slot, 1 = top-1; :meth:`predict_variants`
gives the top-K colourings at once), ``palette`` (hex colours → a colour feature), ``reference`` (an
RGB image → its colour feature).

Defaults and where they come from: α = 0.1, top-k = 256 (C_dist) / 32 (C_RGB), memory size = 1.2 × the
training set, equal weights of the adversarial and smooth-L1 terms, Adam lr 1e-4 — the paper as
reproduced by the public unofficial implementation (dongheehand/MemoPainter-PyTorch, whose README cites
the paper's supplementary material). δ: the paper's values were not available to us (that implementation
uses 0.7 with a one-sided log10 KL, a different scale); ours are measured on the emoji fixture so that δ
separates same-subcategory from different-subcategory pairs: δ = 5 for the natural-log symmetric KL
(same-subcategory pairs: median 8.9, 25th percentile 2.5; different: 10th percentile 8.3) and δ = 20 ΔE00
for C_RGB (same: 25th percentile 17.6; different: 10th percentile 25.6). See docs/MEMOPAINTER.md.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from fewcolor.color.feature_kinds import (
    FEATURE_DIMS,
    colour_distance,
    colour_feature,
    palette_feature,
    parse_palette,
)
from fewcolor.data.protocol import Dataset, collate
from fewcolor.losses.gan import GanLoss
from fewcolor.losses.triplet import memory_triplet_loss
from fewcolor.methods.base import AdaptSettings, InferenceOption, InferenceOptionError, Method, Phase
from fewcolor.methods.registry import register_method
from fewcolor.nets.discriminators import ConditionalPatchDiscriminator
from fewcolor.nets.generators import ENCODER_CHOICES, conditioned_generator
from fewcolor.nets.memory import ColorMemory

if TYPE_CHECKING:
    from fewcolor.backbones import FeatureExtractor

log = logging.getLogger(__name__)

#: an untrained (or never-written) memory: nothing to retrieve a colour from
EMPTY_MEMORY = ("memopainter: this model's colour memory is empty (saved before any training step wrote to it): "
                "train it, or adapt it to your colour images, first")
#: what colouring with an empty memory can do instead
_EMPTY_MEMORY_COLOUR = (f"{EMPTY_MEMORY}; or colour with a palette or a reference image "
                        "(the palette and reference options)")


def _palette_rgb(palette: Any) -> torch.Tensor:
    """The palette option's colours; its ``ValueError`` names the option's text, not the parsing function."""
    try:
        return parse_palette(palette)
    except ValueError as exc:
        raise ValueError(str(exc).removeprefix("palette_from_hex: ")) from None


#: query backbones in order of preference: the paper's ResNet18 pool5, else VGG16 conv5 (both 512-d)
BACKBONES: tuple[tuple[str, str], ...] = (("resnet18", "avgpool"), ("vgg16", "features.29"))
#: default δ per colour-feature kind (module docstring)
DEFAULT_THRESHOLDS: Mapping[str, float] = MappingProxyType({"dist": 5.0, "rgb": 20.0})
#: neighbours for the triplet loss per colour feature
DEFAULT_TOP_K: Mapping[str, int] = MappingProxyType({"dist": 256, "rgb": 32})


@dataclass
class MemoPainterConfig:
    image_size: int = 256  #: working resolution (longer side)
    color_feature: str = "dist"  #: "dist" (C_dist, 313-bin ab distribution) or "rgb" (C_RGB, 10 colours)
    memory: bool = True  #: False = the Res-cGAN ablation (learned constant colour feature)
    memory_slots: int = 0  #: 0 = memory_scale × the training-set size (set in setup)
    memory_scale: float = 1.2
    key_dim: int = 512  #: query / key dimension (the output of W, b)
    top_k: int = 0  #: neighbours for the triplet loss; 0 = 256 for dist, 32 for rgb
    margin: float = 0.1  #: α of the threshold triplet loss
    threshold: float = 0.0  #: δ; 0 = DEFAULT_THRESHOLDS[color_feature]
    supervised: bool = False  #: positives = same class label (the supervised upper bound of Table 2)
    base_channels: int = 64
    depth: int = 6  #: U-Net down-samplings (256 px -> 4×4)
    mlp_hidden: int = 256  #: width of the AdaIN parameter MLP
    #: none = the paper's AdaIN U-Net; else an ImageNet encoder + the base colorizer's decoder, colour-conditioned
    encoder: str = field(default="none", metadata={"choices": ENCODER_CHOICES})
    freeze_encoder: bool = True  #: keep the pretrained encoder's weights fixed (with encoder != none)
    d_base: int = 64
    d_layers: int = 3  #: PatchGAN stride-2 layers (3 = 70×70)
    d_cond: int = 64  #: channels of the projected colour feature the discriminator sees
    gan_weight: float = 1.0
    sl1_weight: float = 1.0
    lr: float = 1e-4
    memory_lr: float = 1e-4
    beta1: float = 0.9
    beta2: float = 0.999
    seed: int = 0  #: seeds the memory's initial keys and oldest-slot choices (with the step)


@register_method
class MemoPainter(Method):
    name = "memopainter"
    summary = "MemoPainter: colour memory (threshold triplet loss) + AdaIN U-Net cGAN; variants, palette, reference"
    Config = MemoPainterConfig
    #: `fewcolor adapt` defaults, measured on the emoji fixture (docs/ADAPT.md)
    adapt_defaults = AdaptSettings(steps=100, lr_factor=3)
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "paper": {},
        "cpu": {"image_size": 64, "base_channels": 16, "depth": 4, "mlp_hidden": 64, "d_base": 16,
                "d_layers": 2, "d_cond": 16, "lr": 5e-4, "memory_lr": 1e-3, "sl1_weight": 10.0},
        "tiny": {"image_size": 32, "base_channels": 8, "depth": 3, "mlp_hidden": 32, "d_base": 8,
                 "d_layers": 2, "d_cond": 8, "key_dim": 64, "lr": 2e-3, "memory_lr": 5e-3, "sl1_weight": 10.0},
    }
    inference_options = (
        InferenceOption("variant", "int", "colour with the i-th nearest memory slot (1 = the nearest)", default=1,
                        minimum=1, sweep="variants"),
        InferenceOption("palette", "str", 'colour with this palette instead of the memory, e.g. "#e03c31,#f7d842"',
                        parse=_palette_rgb),
        InferenceOption("reference", "image-rgb", "colour with the colour feature of this RGB image instead of "
                        "the memory"),
    )

    def __init__(self, config: MemoPainterConfig) -> None:
        super().__init__(config)
        c = config
        if c.color_feature not in FEATURE_DIMS:
            raise ValueError(f"memopainter: color_feature must be 'dist' or 'rgb', got {c.color_feature!r}")
        self.value_dim = FEATURE_DIMS[c.color_feature]
        self.top_k = c.top_k or DEFAULT_TOP_K[c.color_feature]
        self.threshold = c.threshold or DEFAULT_THRESHOLDS[c.color_feature]
        self.generator = conditioned_generator(c.encoder, self.value_dim, c.base_channels, c.depth, c.mlp_hidden,
                                               c.freeze_encoder)
        self.discriminator = ConditionalPatchDiscriminator(self.value_dim, c.d_cond, c.d_base, c.d_layers)
        self.gan = GanLoss("vanilla")
        self.backbone_choice: tuple[str, str] | None = None
        if c.memory:
            self.query_head = nn.Linear(512, c.key_dim)  # W, b of paper Eq. 2
            slots = c.memory_slots or 1  # the real size is set in setup() or load_extra_metadata()
            self.memory = ColorMemory(slots, c.key_dim, self.value_dim, colour_distance(c.color_feature),
                                      self.threshold, seed=c.seed)
        else:
            self.constant_feature = nn.Parameter(torch.zeros(1, self.value_dim))

    @property
    def size_multiple(self) -> int:  # type: ignore[override]
        return self.generator.size_multiple

    # ----- query network ----------------------------------------------------------------------
    def _extractor(self, device: torch.device) -> FeatureExtractor:
        """The frozen backbone, built once per backbone choice; a :meth:`auxiliary` helper, so its weights
        stay out of checkpoints."""
        from fewcolor.backbones import FeatureExtractor, choose_backbone

        if self.backbone_choice is None:
            self.backbone_choice = choose_backbone(BACKBONES)
        choice = self.backbone_choice

        def build() -> FeatureExtractor:
            fe = FeatureExtractor(*choice, pooling="avg")
            if fe.out_dim != self.query_head.in_features:
                raise ValueError(f"backbone {choice} gives {fe.out_dim}-d features; the query "
                                 f"layer expects {self.query_head.in_features}")
            return fe

        return self.auxiliary("feature_extractor", build, key=choice, device=device)

    def spatial_features(self, l: torch.Tensor) -> torch.Tensor:
        """Frozen backbone features (B,512) of normalised L."""
        with torch.no_grad():
            return self._extractor(l.device)(l.float())

    def query(self, features: torch.Tensor) -> torch.Tensor:
        """``q = normalise(W x + b)`` (paper Eq. 2)."""
        return F.normalize(self.query_head(features), dim=1)

    def features_of(self, rgb: torch.Tensor) -> torch.Tensor:
        """Ground-truth colour features of RGB images (B,3,H,W)."""
        with torch.no_grad():
            return colour_feature(rgb.float(), self.config.color_feature).to(rgb.device)

    # ----- training ---------------------------------------------------------------------------
    def setup(self, train_data: Dataset) -> None:
        c = self.config
        if c.memory:
            slots = c.memory_slots or max(1, math.ceil(c.memory_scale * len(train_data)))
            self.memory.resize(slots)
            self.backbone_choice = None
            self._extractor(torch.device("cpu"))
            log.info("memopainter: %d memory slots, query backbone %s", slots, self.backbone_choice)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        betas = (c.beta1, c.beta2)
        g_params = list(self.generator.parameters())
        opts: dict[str, torch.optim.Optimizer] = {}
        if c.memory:
            opts["memory"] = torch.optim.Adam(self.query_head.parameters(), lr=c.memory_lr, betas=betas)
        else:
            g_params.append(self.constant_feature)
        opts["discriminator"] = torch.optim.Adam(self.discriminator.parameters(), lr=c.lr, betas=betas)
        opts["generator"] = torch.optim.Adam(g_params, lr=c.lr, betas=betas)
        return opts

    def memory_loss(self, q: torch.Tensor, target: torch.Tensor, labels: torch.Tensor | None = None):
        """Threshold triplet loss (Eq. 4) of queries ``q`` against the memory's top-k slots; with
        ``labels`` the positives are the same-class slots instead (supervised)."""
        return memory_triplet_loss(self.memory, q, target, self.top_k, self.config.margin, labels)

    def training_step(self, batch: dict[str, Any], step: int) -> Iterator[Phase]:
        c = self.config
        l, ab = batch["l"], batch["ab"]
        b = l.shape[0]
        if c.memory:
            target = self.features_of(batch["rgb"])
            labels = torch.as_tensor(batch["label"], device=l.device).long()
            x = self.spatial_features(l)
            res = self.memory_loss(self.query(x), target, labels if c.supervised else None)
            if res is None:  # empty memory (the first step): nothing to compare with yet
                loss_m, logs = self.query(x).sum() * 0.0, {"memory/valid": 0.0}
            else:
                loss_m = res.loss
                logs = {"loss/triplet": res.loss.item(), "memory/valid": res.valid / b,
                        "memory/no_positive": res.no_positive / b, "memory/no_negative": res.no_negative / b}
            yield Phase("memory", loss_m, logs)
            with torch.no_grad():  # memory update with the query of the updated W, b
                g = torch.Generator().manual_seed(c.seed * 1_000_003 + step)
                stats = self.memory.update(self.query(x), target, torch.as_tensor(batch["index"]).long(),
                                           labels, generator=g, supervised=c.supervised)
            upd = {"memory/confirmed": stats.confirmed / b, "memory/filled": self.memory.num_filled / self.memory.slots}
        else:
            target = self.constant_feature.expand(b, -1)
            upd = {}
        fake = self.generator(l, target)
        d_real = self.discriminator(l, ab, target.detach())
        d_fake = self.discriminator(l, fake.detach(), target.detach())
        loss_d = self.gan.d_loss(d_real, d_fake)
        yield Phase("discriminator", loss_d, {"loss/d": loss_d.item(), **upd})
        adv = self.gan.g_loss(self.discriminator(l, fake, target))
        sl1 = F.smooth_l1_loss(fake, ab)
        loss_g = c.gan_weight * adv + c.sl1_weight * sl1
        yield Phase("generator", loss_g, {"loss/g": loss_g.item(), "loss/g_adv": adv.item(), "loss/sl1": sl1.item()})

    # ----- few-shot adaptation ------------------------------------------------------------------
    @torch.no_grad()
    def write_support(self, support_data: Dataset, seed: int = 0) -> bool:
        """Write every support image into the memory — key ``q`` of its grey image, value its colour
        feature — in a random oldest slot (the write branch of the §3.1 update, forced, so that each
        support colouring is retrievable); fine-tuning steps follow (``fewcolor.train.adapt``), during
        which the §3.1 update rule keeps running. Res-cGAN has no memory: nothing to write."""
        if not self.config.memory:
            return False
        batch = collate(support_data, range(len(support_data)))
        l, rgb = batch["l"].to(self.device), batch["rgb"].to(self.device)
        q = self.query(self.spatial_features(l))
        values = self.features_of(rgb)
        g = torch.Generator().manual_seed(seed * 1_000_003 - 1)
        for i in range(q.shape[0]):
            self.memory.write_oldest(q[i], values[i], g)
        return True

    # ----- inference --------------------------------------------------------------------------
    def retrieve(self, l: torch.Tensor, k: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Top-``k`` memory slots for normalised L: (values (B,k,D), similarities (B,k), slots (B,k))."""
        if not self.config.memory:
            raise InferenceOptionError("this is a Res-cGAN model (memory=False): it has no memory to retrieve from")
        if self.memory.num_filled == 0:
            raise InferenceOptionError(_EMPTY_MEMORY_COLOUR)
        return self.memory.retrieve(self.query(self.spatial_features(l)), k)

    def check_options(self, options: Mapping[str, Any]) -> None:
        """The declared checks, and an empty memory refused up front (before any image is read) unless a
        palette or reference gives the colour instead."""
        super().check_options(options)
        if (self.config.memory and self.memory.num_filled == 0
                and options.get("palette") is None and options.get("reference") is None):
            raise InferenceOptionError(_EMPTY_MEMORY_COLOUR)

    def condition(self, l: torch.Tensor, variant: int | None = None, palette: Any = None,
                  reference: torch.Tensor | None = None) -> torch.Tensor:
        """The colour feature (B,D) the generator paints with: a palette's, a reference image's, the
        ``variant``-th retrieved slot's (default top-1), or Res-cGAN's constant."""
        b = l.shape[0]
        given = [n for n, v in (("variant", variant), ("palette", palette), ("reference", reference)) if v is not None]
        if len(given) > 1:  # variant is also set by its sweep, variants: name both
            shown = " and ".join("variant (or variants)" if n == "variant" else n for n in given)
            raise InferenceOptionError(f"memopainter: {shown} cannot be combined; give at most one of variant "
                                       "(or variants), palette, reference")
        kind = self.config.color_feature
        if palette is not None:
            try:
                feature = palette_feature(_palette_rgb(palette), kind)
            except ValueError as exc:
                raise InferenceOptionError(f"memopainter: palette: {exc}") from None
            return feature.to(l.device).expand(b, -1)
        if reference is not None:
            ref = reference if reference.dim() == 4 else reference[None]
            if ref.shape[1] != 3:
                raise InferenceOptionError(f"reference must be an RGB image (3,H,W), got {tuple(reference.shape)}")
            return self.features_of(ref.to(l.device))[:1].expand(b, -1)
        if not self.config.memory:
            if variant is not None:
                raise InferenceOptionError("variant needs the memory; this is a Res-cGAN model (memory=False)")
            return self.constant_feature.expand(b, -1)
        i = 1 if variant is None else int(variant)
        if i < 1:
            raise InferenceOptionError(f"variant counts from 1 (the nearest slot), got {variant}")
        if 0 < self.memory.num_filled < i:  # an empty memory is refused in retrieve()
            raise InferenceOptionError(f"variant {i} asked for, but the memory holds {self.memory.num_filled} slots")
        values, _, _ = self.retrieve(l, i)
        return values[:, i - 1]

    def predict_ab(self, l: torch.Tensor, **options: Any) -> torch.Tensor:
        self.check_options(options)
        return self.generator(l, self.condition(l, **options))

    def export_blocker(self, options: Mapping[str, Any]) -> str | None:
        if self.config.memory and options.get("palette") is None and options.get("reference") is None:
            return ("its colour comes from memory retrieval, whose query runs a frozen backbone that is stopped "
                    "mid-forward by a hook and resized to the backbone's minimum input in Python, which the ONNX "
                    "tracer cannot record as one graph for every size; export with --palette or --reference (the "
                    "colour feature is then fixed), or a res-cgan model")
        return None

    def predict_variants(self, l: torch.Tensor, k: int) -> torch.Tensor:
        """The colourings from the top-``k`` memory slots: (k', B, 2, H, W), k' = min(k, filled slots)."""
        values, _, _ = self.retrieve(l, k)
        return torch.stack([self.generator(l, values[:, i]) for i in range(values.shape[1])])

    # ----- checkpoint facts ---------------------------------------------------------------------
    def extra_metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"color_feature": self.config.color_feature, "value_dim": self.value_dim}
        if self.config.memory:
            meta["memory_slots"] = self.memory.slots
            meta["memory_filled"] = self.memory.num_filled
            if self.backbone_choice is not None:
                meta["backbone"], meta["backbone_layer"] = self.backbone_choice
        return meta

    def load_extra_metadata(self, meta: Mapping[str, Any]) -> None:
        if int(meta.get("value_dim", self.value_dim)) != self.value_dim:
            raise ValueError(f"checkpoint colour features are {meta['value_dim']}-d, the config's {self.value_dim}-d")
        if self.config.memory:
            self.memory.resize(int(meta["memory_slots"]))
            if "backbone" in meta:
                self.backbone_choice = (str(meta["backbone"]), str(meta["backbone_layer"]))
