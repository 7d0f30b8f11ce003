"""Exemplar-based colorization: colour a grey query by dense correspondence to the user's colour supports.

After He et al., "Deep Exemplar-based Colorization" (SIGGRAPH 2018) — correspondence in a pretrained
VGG feature space, a per-pixel similarity with a bidirectional (cycle) check, transferred ab, and a
fallback where nothing matches — and Welsh et al., "Transferring Color to Greyscale Images"
(SIGGRAPH 2002) — luminance statistics and luminance remapping in the matching, a luminance-matched
colour where there is no match. Training-free: the supports and their backbone features are stored as
buffers, so an adapted model is one checkpoint.

For each query (normalised L at the working resolution):

1. ``F_q = VGG16(L_q)`` at relu3_3 / relu4_3 / relu5_3, on the grey image resized to ``feature_size``
   (the supports' features were computed the same way when they were stored).
2. Match every relu3_3 cell to the supports coarse-to-fine (``fewcolor.nets.correspondence.match``):
   exhaustive at relu4_3 (+ relu5_3) with Welsh's luminance statistics and a cycle check, then a local
   PatchMatch-style search at relu3_3.
3. Confidence per cell ``c = ramp(s; sim_low, sim_high) · (1 if cycle-consistent else inconsistent_factor)
   · c_support`` (a support cell's own confidence: 1 for real images, the propagated confidence for a
   previous video frame).
4. Warp the supports' ab to the query's pixels through the cell match (sub-cell positions kept).
5. Edge-aware: a confidence-weighted guided filter of the warped ab with the query's L as the guide;
   keep the warped ab where the match is confident *and* coherent (neighbouring cells moved alike).
6. Blend with the fallback by the (guided-filtered) confidence: ``ab = c ab_transfer + (1 − c) ab_fallback``.
   The fallback is by default the attention colour: each query cell's softmax-weighted mean of the colours of
   its best-matching support cells (``fewcolor.nets.correspondence.attend``; Zhang et al. 2019's attention
   warp), upsampled and guided-filtered; or the supports' luminance-matched mean colour
   (``fewcolor.color.luminance_lut``), or the checkpoint named by ``fallback`` (another method, e.g. the
   bundled base colorizer).

Departures from He et al.: no learned colorization sub-network (step 5–6 replace it: guided filter and
a fixed blend), VGG16 instead of VGG19, a simpler search than Deep Image Analogy's PatchMatch, and
several supports at once. Numbers and speed: docs/EXEMPLAR.md.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from fewcolor.backbones.pyramid import VGG16_PYRAMID, GreyFeaturePyramid
from fewcolor.color.guided_filter import guided_filter
from fewcolor.color.lab import rgb_to_lab
from fewcolor.color.luminance_lut import apply_luminance_lut, luminance_lut
from fewcolor.color.normalize import normalize_ab, normalize_l
from fewcolor.data.protocol import Dataset
from fewcolor.data.transforms import working_size
from fewcolor.methods.base import InferenceOption, InferenceOptionError, Method, Phase
from fewcolor.methods.registry import register_method
from fewcolor.nets.correspondence import Match, Pyramid, attend, first_rows, match

log = logging.getLogger(__name__)

#: ``fallback`` values that are not checkpoint paths
FALLBACK_STATS, FALLBACK_BUNDLED, FALLBACK_ATTENTION = "stats", "bundled", "attention"


@dataclass
class ExemplarConfig:
    image_size: int = 256  #: working resolution (longer side); supports are stored at it
    feature_size: int = 192  #: longer side of the grey image the backbone sees (queries and supports)
    backbone: str = "vgg16"
    layers: tuple[str, ...] = VGG16_PYRAMID  #: shallow to deep; matching ends at the first
    layer_weights: tuple[float, ...] = (1.0, 1.0, 0.5)  #: w_j of each layer's cosine similarity
    coarse_layer: int = 1  #: index into ``layers`` of the exhaustive search (relu4_3, stride 8)
    lum_weight: float = 0.2  #: λ of the luminance-statistics term (normalised L units)
    sim_low: float = 0.3  #: similarity with confidence 0 (ramp start)
    sim_high: float = 0.6  #: similarity with confidence 1 (ramp end)
    inconsistent_factor: float = 0.5  #: confidence factor of a match that fails the cycle check
    filter_radius: float = 0.02  #: guided-filter radius as a fraction of the longer side
    filter_eps: float = 1e-3  #: guided-filter ε in normalised-L units squared
    max_supports: int = 16  #: at most this many supports are stored (a seeded choice when more are given)
    lut_bins: int = 20  #: lightness bands of the luminance-matched fallback colour
    #: "attention" (the soft match's colour), "stats" (the supports' colour per lightness), "bundled" (the
    #: bundled base colorizer, else stats) or a checkpoint path; chosen by measurement, docs/EXEMPLAR.md step 6
    fallback: str = FALLBACK_ATTENTION
    attention_layer: int = 0  #: index into ``layers`` of the attention fallback's soft search
    attention_temperature: float = 0.02  #: softmax temperature of the attention fallback
    attention_top_k: int = 16  #: support cells each query cell attends to
    seed: int = 0  #: seed of the choice of supports when more than ``max_supports`` are given


@dataclass
class Supports:
    """Colour supports ready to match: their feature pyramid and their pixels at working resolution.

    ``pixels`` (P, 4) holds normalised L, normalised a, b and the pixel's prior confidence of every
    support, flattened row-major one support after the other; ``sizes`` (S, 2) their (H, W).
    """

    pyramid: Pyramid
    pixels: torch.Tensor
    sizes: torch.Tensor

    @property
    def starts(self) -> torch.Tensor:
        return first_rows(self.sizes.prod(dim=1))

    @staticmethod
    def concat(items: list[Supports]) -> Supports:
        return Supports(Pyramid.concat([s.pyramid for s in items]), torch.cat([s.pixels for s in items]),
                        torch.cat([s.sizes for s in items]))


def _one_rgb(rgb: torch.Tensor) -> torch.Tensor:
    """A reference image (3,H,W) or (1,3,H,W) as (1,3,H,W); anything else is an :class:`InferenceOptionError`."""
    x = rgb if rgb.dim() == 4 else rgb[None]
    if x.dim() != 4 or x.shape[:2] != (1, 3):
        raise InferenceOptionError(f"exemplar: a reference must be one RGB image (3,H,W), got {tuple(rgb.shape)}")
    return x


def _resize(x: torch.Tensor, longer: int, multiple: int = 1) -> torch.Tensor:
    """Resize (B,C,H,W) so the longer side is about ``longer``, aspect kept, sides rounded to ``multiple``."""
    h, w = x.shape[-2:]
    size = working_size(h, w, longer, multiple)
    if size == (h, w):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=size[0] < h)


def _ramp(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    return ((x - low) / max(high - low, 1e-6)).clamp(0.0, 1.0)


def _coherence(m: Match) -> torch.Tensor:
    """(1,1,h,w): the share of a cell's 4 neighbours matched in the same support with the same displacement
    (a neighbour outside the grid counts as coherent)."""
    h, w = m.shape
    img, y, x = (t.view(h, w) for t in (m.image, m.y, m.x))
    same = torch.zeros(h, w, device=img.device)
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        ok = torch.ones(h, w, dtype=torch.bool, device=img.device)
        here = (slice(max(0, -dy), h - max(0, dy)), slice(max(0, -dx), w - max(0, dx)))
        there = (slice(max(0, dy), h - max(0, -dy)), slice(max(0, dx), w - max(0, -dx)))
        ok[here] = (img[there] == img[here]) & (y[there] - y[here] == dy) & (x[there] - x[here] == dx)
        same += ok.float()
    return (same / 4)[None, None]


@register_method
class Exemplar(Method):
    name = "exemplar"
    summary = "exemplar-based: VGG16 dense correspondence to the supports + guided filter; training-free"
    Config = ExemplarConfig
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "paper": {},
        "cpu": {"feature_size": 160},
        "tiny": {"image_size": 64, "feature_size": 64},
    }
    size_multiple = 1
    learns_in_steps = False
    inference_options = (
        InferenceOption("reference", "image-rgb", "colour from this RGB image instead of what the model stores "
                        "(exemplar: the image is the only support)"),
        InferenceOption("fallback", "str", "where no match is sure, colour from 'attention' (the weighted colour "
                        "of the best-matching support parts), 'stats' (the supports' colour per lightness), "
                        "'bundled' (the bundled base colorizer, else 'stats') or this model checkpoint",
                        default="the config's fallback", choices=(FALLBACK_ATTENTION, FALLBACK_STATS, FALLBACK_BUNDLED),
                        local_path=True),
    )

    def __init__(self, config: ExemplarConfig) -> None:
        super().__init__(config)
        c = config
        if len(c.layer_weights) != len(c.layers):
            raise ValueError(f"exemplar: {len(c.layer_weights)} layer_weights for {len(c.layers)} layers")
        if not 0 <= c.coarse_layer < len(c.layers):
            raise ValueError(f"exemplar: coarse_layer must index layers (0..{len(c.layers) - 1}), got {c.coarse_layer}")
        if not 0 <= c.attention_layer < len(c.layers):
            raise ValueError(f"exemplar: attention_layer must index layers (0..{len(c.layers) - 1}), "
                             f"got {c.attention_layer}")
        if c.attention_temperature <= 0 or c.attention_top_k < 1:
            raise ValueError(f"exemplar: attention_temperature must be > 0 and attention_top_k ≥ 1, got "
                             f"{c.attention_temperature} and {c.attention_top_k}")
        self.support_names: list[str] = []
        self._allocate([0] * len(c.layers), [0] * len(c.layers), 0, 0)

    # ----- stored supports (registered buffers, hence in the checkpoint) ----------------------------
    def _allocate(self, rows: list[int], channels: list[int], count: int, pixels: int) -> None:
        for k, (n, ch) in enumerate(zip(rows, channels, strict=True)):
            self.register_buffer(f"support_feats_{k}", torch.zeros(n, ch))
            self.register_buffer(f"support_shapes_{k}", torch.zeros(count, 2, dtype=torch.long))
            self.register_buffer(f"support_lum_{k}", torch.zeros(n, 2))
            self.register_buffer(f"support_prior_{k}", torch.zeros(n))
        self.register_buffer("support_l_stats", torch.zeros(count, 2))
        self.register_buffer("support_pixels", torch.zeros(pixels, 4))
        self.register_buffer("support_sizes", torch.zeros(count, 2, dtype=torch.long))

    def _store(self, supports: Supports) -> None:
        p = supports.pyramid
        for k in range(p.num_layers):
            setattr(self, f"support_feats_{k}", p.feats[k].contiguous())
            setattr(self, f"support_shapes_{k}", p.shapes[k].clone())
            setattr(self, f"support_lum_{k}", p.lum[k].contiguous())
            setattr(self, f"support_prior_{k}", p.prior[k].contiguous())
        self.support_l_stats = p.l_stats.clone()
        self.support_pixels = supports.pixels.contiguous()
        self.support_sizes = supports.sizes.clone()

    @property
    def num_supports(self) -> int:
        return int(self.support_sizes.shape[0])

    def stored_supports(self) -> Supports:
        """The supports stored in this model (raises when there are none)."""
        if self.num_supports == 0:
            raise InferenceOptionError(
                "exemplar: this model holds no support images: give a colour image as the reference option, or "
                "adapt the model to a few colour images first (Adapt on the web page, `fewcolor adapt` on the "
                "command line)")
        n = len(self.config.layers)
        shapes = [getattr(self, f"support_shapes_{k}") for k in range(n)]
        starts = [first_rows(s.prod(dim=1)) for s in shapes]
        pyramid = Pyramid([getattr(self, f"support_feats_{k}") for k in range(n)], shapes, starts,
                          [getattr(self, f"support_lum_{k}") for k in range(n)],
                          [getattr(self, f"support_prior_{k}") for k in range(n)], self.support_l_stats)
        return Supports(pyramid, self.support_pixels, self.support_sizes)

    # ----- the backbone (outside the module tree: its weights stay out of checkpoints) ---------------
    def backbone(self) -> GreyFeaturePyramid:
        """The frozen feature pyramid, built on first use (a :meth:`auxiliary` helper, not in the checkpoint)."""
        return self.auxiliary("backbone", lambda: GreyFeaturePyramid(self.config.backbone, tuple(self.config.layers)),
                              device=self.device)

    def pyramid_of(self, l: torch.Tensor) -> Pyramid:
        """Feature pyramid of one normalised L (1,1,H,W) (any size; seen by the backbone at ``feature_size``)."""
        lf = _resize(l.float(), self.config.feature_size, multiple=16)
        return Pyramid.of_image(self.backbone()(lf), lf)

    def encode(self, l: torch.Tensor, ab: torch.Tensor, prior: torch.Tensor | None = None,
               pyramid: Pyramid | None = None) -> Supports:
        """One colour image as a support: normalised L (1,1,H,W), normalised ab (1,2,H,W) at working
        resolution, optional prior confidence (1,1,H,W) in [0, 1] (default 1), and its pyramid when
        already computed (``pyramid_of(l)``)."""
        conf = torch.ones_like(l) if prior is None else prior.to(l)
        pixels = torch.cat([l, ab, conf], dim=1)[0].flatten(1).t()
        sizes = torch.tensor([list(l.shape[-2:])], dtype=torch.long, device=l.device)
        pyr = self.pyramid_of(l) if pyramid is None else pyramid
        return Supports(pyr if prior is None else pyr.with_prior(conf), pixels.float(), sizes)

    def encode_rgb(self, rgb: torch.Tensor) -> Supports:
        """An sRGB image (3,H,W) or (1,3,H,W) in [0, 1], resized to the working resolution, as a support."""
        x = _one_rgb(rgb)
        lab = rgb_to_lab(_resize(x.float().to(self.device), self.config.image_size))
        return self.encode(normalize_l(lab[:, :1]), normalize_ab(lab[:, 1:]))

    # ----- training-free "training" and adaptation -----------------------------------------------
    def adapt(self, support_data: Dataset, steps: int, seed: int = 0, progress: bool = False) -> bool:
        """Store (up to ``max_supports``, a seeded choice) the support images and their features; no steps."""
        n = len(support_data)
        if n == 0:
            raise ValueError("exemplar: the support set is empty")
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)) if n > self.config.max_supports \
            else torch.arange(n)
        items = [support_data[int(i)] for i in sorted(order[: self.config.max_supports].tolist())]
        encoded = []
        with torch.no_grad():
            for item in items:
                l = _resize(item["l"][None].float().to(self.device), self.config.image_size)
                ab = _resize(item["ab"][None].float().to(self.device), self.config.image_size)
                encoded.append(self.encode(l, ab))
        self._store(Supports.concat(encoded))
        self.support_names = [str(item.get("path", "")) for item in items]
        return True

    def setup(self, train_data: Dataset) -> None:
        """``fewcolor train --method exemplar`` stores a bounded, seeded subset of the training images."""
        self.adapt(train_data, steps=0, seed=self.config.seed)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {}

    def training_step(self, batch: dict[str, Any], step: int) -> Iterator[Phase]:
        yield from ()  # nothing is learnt: set-up stored the supports

    # ----- inference ---------------------------------------------------------------------------
    def _fallback_method(self, path: str) -> Method:
        from fewcolor.io.checkpoint import CheckpointError
        from fewcolor.methods.registry import load_method

        def build() -> Method:
            if not Path(path).is_file():
                raise InferenceOptionError(f"exemplar: fallback {path!r} is not a file; give a model checkpoint, "
                                           f"'{FALLBACK_ATTENTION}', '{FALLBACK_BUNDLED}' or '{FALLBACK_STATS}'")
            try:
                return load_method(path, device=self.device)
            except CheckpointError as exc:
                raise InferenceOptionError(f"exemplar: fallback {path}: {exc}") from exc

        return self.auxiliary(f"fallback:{path}", build, device=self.device)  # loaded once per path

    def fallback_ab(self, l: torch.Tensor, supports: Supports, fallback: str | None = None,
                    pyramid: Pyramid | None = None) -> torch.Tensor:
        """Normalised ab (1,2,H,W) where no match is sure: the attention colour (``attention_ab``), another
        model's prediction, or the supports' luminance-matched mean colour (each support pixel weighted by its
        prior confidence). ``pyramid``: the query's, when the caller has it."""
        from fewcolor.pretrained import bundled_model_path

        choice = str(fallback or self.config.fallback)
        if choice == FALLBACK_BUNDLED:
            bundled = bundled_model_path()
            choice = str(bundled) if bundled is not None else FALLBACK_STATS
        if choice == FALLBACK_ATTENTION:
            return self.attention_ab(l, supports, pyramid)
        if choice == FALLBACK_STATS:
            px = supports.pixels
            table = luminance_lut(px[:, 0], px[:, 1:3], px[:, 3], self.config.lut_bins)
            return apply_luminance_lut(l, table)
        other = self._fallback_method(choice)
        m = other.size_multiple
        h, w = l.shape[-2:]
        size = (max(m, round(h / m) * m), max(m, round(w / m) * m))
        ab = other.predict_ab(F.interpolate(l, size=size, mode="bilinear", align_corners=False))
        return F.interpolate(ab.float(), size=(h, w), mode="bilinear", align_corners=False)

    def support_cell_ab(self, supports: Supports, layer: int) -> torch.Tensor:
        """(N_layer, 2): each support cell's mean normalised ab at ``layer``, weighted by pixel prior confidence."""
        out = []
        shapes = supports.pyramid.shapes[layer]
        for i, (start, (h, w)) in enumerate(zip(supports.starts.tolist(), supports.sizes.tolist(), strict=True)):
            px = supports.pixels[start: start + h * w].t().reshape(1, 4, h, w)
            grid = (int(shapes[i, 0]), int(shapes[i, 1]))
            weight = F.adaptive_avg_pool2d(px[:, 3:4], grid)
            ab = F.adaptive_avg_pool2d(px[:, 1:3] * px[:, 3:4], grid) / weight.clamp_min(1e-6)
            out.append(ab[0].flatten(1).t())
        return torch.cat(out)

    def attention_ab(self, l: torch.Tensor, supports: Supports, pyramid: Pyramid | None = None) -> torch.Tensor:
        """Normalised ab (1,2,H,W): the softmax-weighted mean colour of each query cell's best support cells
        (``fewcolor.nets.correspondence.attend``), upsampled and made edge-aware by a guided filter."""
        c = self.config
        query = self.pyramid_of(l) if pyramid is None else pyramid
        k = c.attention_layer
        rows, weights = attend(query, supports.pyramid, tuple(c.layer_weights), c.lum_weight, k,
                               c.attention_temperature, c.attention_top_k)
        cell_ab = (weights[..., None] * self.support_cell_ab(supports, k)[rows]).sum(1)
        h, w = (int(v) for v in query.shapes[k][0])
        height, width = l.shape[-2:]
        ab = F.interpolate(cell_ab.t().reshape(1, 2, h, w), size=(height, width), mode="bilinear",
                           align_corners=False)
        radius = max(1, round(c.filter_radius * max(height, width)))
        return guided_filter(l, ab, radius, c.filter_eps)

    def warp(self, m: Match, supports: Supports, height: int, width: int) -> torch.Tensor:
        """The supports' pixels (1,4,H,W) (L, a, b, prior) at the query pixels' matched positions: a query
        pixel keeps its position inside its cell, mapped into the matched support cell."""
        h, w = m.shape
        dev = supports.pixels.device
        uy = (torch.arange(height, device=dev) + 0.5) * h / height
        ux = (torch.arange(width, device=dev) + 0.5) * w / width
        cy, cx = uy.floor().long().clamp(max=h - 1), ux.floor().long().clamp(max=w - 1)
        cell = (cy[:, None] * w + cx[None, :]).flatten()
        fy = (uy - cy)[:, None].expand(height, width).flatten()
        fx = (ux - cx)[None, :].expand(height, width).flatten()
        img = m.image[cell]
        grid = supports.pyramid.shapes[0][img]
        size = supports.sizes[img]
        sy = ((m.y[cell] + fy) * size[:, 0] / grid[:, 0] - 0.5).round().long()
        sx = ((m.x[cell] + fx) * size[:, 1] / grid[:, 1] - 0.5).round().long()
        sy = torch.minimum(sy.clamp_min(0), size[:, 0] - 1)
        sx = torch.minimum(sx.clamp_min(0), size[:, 1] - 1)
        rows = supports.starts[img] + sy * size[:, 1] + sx
        return supports.pixels[rows].t().reshape(1, 4, height, width)

    def transfer(self, l: torch.Tensor, supports: Supports, fallback: str | None = None,
                 pyramid: Pyramid | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Steps 1–6 of the module docstring for one query L (1,1,H,W): (ab (1,2,H,W), confidence (1,1,H,W)).

        ``pyramid``: the query's ``pyramid_of(l)`` when the caller already has it."""
        c = self.config
        height, width = l.shape[-2:]
        query = self.pyramid_of(l) if pyramid is None else pyramid
        m = match(query, supports.pyramid, tuple(c.layer_weights), c.lum_weight, c.coarse_layer)
        h, w = m.shape
        consistent = torch.where(m.consistent, 1.0, c.inconsistent_factor)
        cell_conf = (_ramp(m.similarity, c.sim_low, c.sim_high) * consistent * m.prior).view(1, 1, h, w)
        conf = F.interpolate(cell_conf, size=(height, width), mode="bilinear", align_corners=False).clamp(0, 1)
        keep = conf * F.interpolate(_coherence(m), size=(height, width), mode="bilinear", align_corners=False)
        ab_warped = self.warp(m, supports, height, width)[:, 1:3]
        radius = max(1, round(c.filter_radius * max(height, width)))
        ab_filtered = guided_filter(l, ab_warped, radius, c.filter_eps, weight=conf)
        ab_transfer = keep * ab_warped + (1 - keep) * ab_filtered
        trust = guided_filter(l, conf, radius, c.filter_eps).clamp(0, 1)
        ab = trust * ab_transfer + (1 - trust) * self.fallback_ab(l, supports, fallback, query)
        return ab, trust

    def predict_ab(self, l: torch.Tensor, reference: torch.Tensor | None = None, fallback: str | None = None,
                   **options: Any) -> torch.Tensor:
        """``reference`` (an RGB image) replaces the stored supports for this call; ``fallback`` (a model
        checkpoint path, "attention", "bundled" or "stats") replaces the configured fallback."""
        self.check_options({**options, "reference": reference})
        with torch.no_grad():
            supports = self.encode_rgb(reference) if reference is not None else self.stored_supports()
            return torch.cat([self.transfer(l[i: i + 1].float(), supports, fallback)[0] for i in range(len(l))])

    def export_blocker(self, options: Mapping[str, Any]) -> str | None:
        return ("its colour comes from a correspondence search against the stored supports (coarse-to-fine "
                "matching, top-k attention, one query image at a time) whose feature-grid sizes, search windows "
                "and chunks are Python integers computed from the input's size, and whose backbone is a frozen "
                "helper outside the module: the tracer would record a graph valid only for the export size and "
                "batch 1 (and a checkpoint fallback is another model); colour with PyTorch instead "
                "(`fewcolor colorize`)")

    # ----- checkpoint ----------------------------------------------------------------------------
    def extra_metadata(self) -> dict[str, Any]:
        n = len(self.config.layers)
        return {"supports": {
            "names": self.support_names,
            "count": self.num_supports,
            "rows": [int(getattr(self, f"support_feats_{k}").shape[0]) for k in range(n)],
            "channels": [int(getattr(self, f"support_feats_{k}").shape[1]) for k in range(n)],
            "pixels": int(self.support_pixels.shape[0]),
        }}

    def load_extra_metadata(self, meta: Any) -> None:
        s = meta.get("supports")
        if s:
            self._allocate(list(s["rows"]), list(s["channels"]), int(s["count"]), int(s["pixels"]))
            self.support_names = list(s.get("names", []))
