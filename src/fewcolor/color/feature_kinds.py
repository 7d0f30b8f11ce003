"""MemoPainter's colour features by kind (Yoo et al., CVPR 2019, §3.1 "Colour feature").

``dist`` — C_dist, the 313-bin ab distribution, compared with the symmetric KL divergence; ``rgb`` —
C_RGB, the 10 dominant colours, compared with CIEDE2000 (mean over the 10 rank-matched pairs). Also: the
feature of a user palette and a swatch that draws a feature. Bad palettes raise ``ValueError``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from fewcolor.color.bins import ab_bin_centers
from fewcolor.color.ciede2000 import palette_distance
from fewcolor.color.distances import symmetric_kl
from fewcolor.color.features import ab_distribution, dominant_colors, palette_from_hex
from fewcolor.color.lab import lab_to_rgb

#: colour-feature kinds: their dimension
FEATURE_DIMS = {"dist": 313, "rgb": 30}
#: dominant colours in C_RGB (paper §3.1)
N_DOMINANT = 10


def colour_feature(rgb: torch.Tensor, kind: str) -> torch.Tensor:
    """The colour feature of RGB images (B,3,H,W) in [0,1]: C_dist (B,313), the ab distribution over the
    313 bins, or C_RGB (B,30), the 10 dominant colours (sorted by pixel share, near-white pixels left out
    as Color Thief does) flattened."""
    if kind == "dist":
        return ab_distribution(rgb).float()
    if kind == "rgb":
        colours, _ = dominant_colors(rgb, N_DOMINANT, ignore_white=True)
        return colours.float().flatten(1)
    raise ValueError(f"unknown colour feature {kind!r}; use 'dist' or 'rgb'")


def colour_distance(kind: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The distance between colour features of ``kind`` (broadcasting over leading dims): symmetric KL
    (natural log) for C_dist, mean CIEDE2000 of rank-matched colours for C_RGB."""
    if kind == "dist":
        return _dist_feature_distance
    if kind == "rgb":
        return _rgb_feature_distance
    raise ValueError(f"unknown colour feature {kind!r}; use 'dist' or 'rgb'")


def _dist_feature_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = torch.broadcast_tensors(a, b)
    return symmetric_kl(a, b)


def _rgb_feature_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = torch.broadcast_tensors(a, b)
    shape = a.shape[:-1]
    d = palette_distance(a.reshape(-1, N_DOMINANT, 3).clamp(0, 1), b.reshape(-1, N_DOMINANT, 3).clamp(0, 1))
    return d.reshape(shape)


def parse_palette(palette: str | Sequence[str] | torch.Tensor) -> torch.Tensor:
    """A palette as RGB (n,3) in [0,1] from ``"#e03c31,#f7d842"``, a list of hex strings, or a tensor."""
    if torch.is_tensor(palette):
        rgb = palette.detach().float().cpu()
        if rgb.ndim != 2 or rgb.shape[1] != 3 or rgb.shape[0] < 1:
            raise ValueError(f"palette tensor must be (n, 3) RGB in [0,1], got {tuple(rgb.shape)}")
        return rgb.clamp(0, 1)
    return palette_from_hex(palette)


def palette_feature(palette: str | Sequence[str] | torch.Tensor, kind: str) -> torch.Tensor:
    """The colour feature (1, D) of a palette (its colours in order of importance).

    C_RGB: the colours repeated cyclically to 10 ranks. C_dist: the ab distribution of an image made of
    equal stripes of the palette colours (so every colour weighs the same).
    """
    rgb = parse_palette(palette)
    if kind == "rgb":
        reps = math.ceil(N_DOMINANT / rgb.shape[0])
        return rgb.repeat(reps, 1)[:N_DOMINANT].reshape(1, -1)
    stripes = rgb.t()[:, None, :, None].expand(3, 8, -1, 8).reshape(3, 8, -1)
    return colour_feature(stripes[None], kind)


def feature_swatch(feature: torch.Tensor, kind: str, width: int = 160, height: int = 32) -> torch.Tensor:
    """A colour feature drawn as an RGB strip (3,height,width): C_RGB's 10 colours in equal stripes; for
    C_dist the 10 most probable ab bins (at L = 65) in stripes as wide as their probability."""
    if kind == "rgb":
        colours = feature.reshape(N_DOMINANT, 3).clamp(0, 1)
        weights = torch.full((N_DOMINANT,), 1.0 / N_DOMINANT)
    else:
        p, idx = feature.float().topk(N_DOMINANT)
        centres = ab_bin_centers()[idx].float()
        lab = torch.cat([torch.full((N_DOMINANT, 1), 65.0), centres], dim=1)
        colours = lab_to_rgb(lab.t()[:, :, None])[:, :, 0].t().clamp(0, 1)
        weights = p / p.sum().clamp_min(1e-12)
    edges = torch.cumsum(weights, 0) * width
    cols = torch.searchsorted(edges, torch.arange(width).float() + 0.5).clamp(max=N_DOMINANT - 1)
    return colours[cols].t()[:, None, :].expand(3, height, width).contiguous()
