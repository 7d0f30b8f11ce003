"""Colour features of images: the 313-bin ab distribution and dominant-colour palettes.

* :func:`ab_distribution` — the normalised histogram of an image's ab values over Zhang's 313 bins (hard or
  soft-encoded), batched. Compare two with :func:`fewcolor.color.distances.symmetric_kl`.
* :func:`dominant_colors` — the ``n`` (default 10) dominant colours of an image, sorted by pixel share, in
  the spirit of Color Thief, as used by MemoPainter (Yoo et al., CVPR 2019) for its colour features.
  Pillow's quantiser does the clustering: fast octree by default (measured on skimage's astronaut,
  512×512, one core: 0.01 s and a mean ΔE00 of 6.0 from each pixel to its nearest palette colour, against
  0.6 s / 6.8 for median cut, Color Thief's algorithm, and 1.1 s / 5.8 for median cut refined by k-means).
  Near-white pixels can be ignored (white backgrounds of emoji and sprites).
* :func:`palette_from_hex` — parse ``"#e03c31,#f7d842"`` into an ``(N, 3)`` RGB tensor.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

import numpy as np
import torch
from PIL import Image

from fewcolor.color.bins import Q, nearest_bin
from fewcolor.color.lab import rgb_to_lab
from fewcolor.color.soft_encode import soft_encode_sum

WHITE_THRESHOLD = 0.95
"""Default for ``ignore_white``: a pixel is "near white" when all its channels are >= this (sRGB [0, 1])."""

N_COLORS = 10
QuantizeMethod = Literal["mediancut", "fastoctree", "kmeans"]


def near_white_mask(rgb: torch.Tensor, threshold: float = WHITE_THRESHOLD) -> torch.Tensor:
    """Bool mask ``(..., H, W)``: True where all three channels of ``(..., 3, H, W)`` are >= ``threshold``."""
    return (rgb >= threshold).all(dim=-3)


def ab_distribution(
    rgb: torch.Tensor,
    soft: bool = False,
    ignore_white: bool = False,
    white_threshold: float = WHITE_THRESHOLD,
) -> torch.Tensor:
    """Normalised 313-bin ab histogram of sRGB images ``(B, 3, H, W)`` → ``(B, 313)`` (``(3,H,W)`` → ``(313,)``).

    ``soft=True`` accumulates Zhang's 5-NN soft-encoding (σ = 5) instead of nearest-bin counts.
    ``ignore_white`` drops near-white pixels; an image left with no pixels gets a uniform distribution
    (rather than NaN) so that distances stay finite.
    """
    single = rgb.dim() == 3
    if single:
        rgb = rgb.unsqueeze(0)
    if rgb.dim() != 4 or rgb.shape[1] != 3:
        raise ValueError(f"ab_distribution expects (B,3,H,W) or (3,H,W) RGB, got {tuple(rgb.shape)}")
    ab = rgb_to_lab(rgb)[:, 1:]
    keep = ~near_white_mask(rgb, white_threshold) if ignore_white else torch.ones_like(rgb[:, 0], dtype=torch.bool)
    if soft:
        points = ab.movedim(1, -1).reshape(rgb.shape[0], -1, 2)
        weights = keep.reshape(rgb.shape[0], -1).double()
        hist = torch.stack([soft_encode_sum(p, w) for p, w in zip(points, weights, strict=True)]).float()
    else:
        idx = nearest_bin(ab).reshape(rgb.shape[0], -1)
        hist = torch.zeros(rgb.shape[0], Q, device=rgb.device)
        hist.scatter_add_(1, idx, keep.reshape(rgb.shape[0], -1).float())
    total = hist.sum(dim=1, keepdim=True)
    hist = torch.where(total > 0, hist / total.clamp_min(1e-12), torch.full_like(hist, 1.0 / Q))
    return hist[0] if single else hist


def _quantize_pixels(pixels: np.ndarray, n: int, method: QuantizeMethod) -> tuple[np.ndarray, np.ndarray]:
    """Cluster (N, 3) uint8 pixels into at most ``n`` colours with Pillow: (palette (k, 3), counts (k,))."""
    img = Image.fromarray(pixels.reshape(-1, 1, 3), mode="RGB")
    if method == "mediancut":
        q = img.quantize(colors=n, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    elif method == "fastoctree":
        q = img.quantize(colors=n, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    elif method == "kmeans":
        # Pillow refines the median-cut palette with k-means iterations: deterministic, no RNG.
        q = img.quantize(colors=n, method=Image.Quantize.MEDIANCUT, kmeans=3, dither=Image.Dither.NONE)
    else:
        raise ValueError(f"method must be 'mediancut', 'fastoctree' or 'kmeans', got {method!r}")
    index = np.asarray(q).reshape(-1)
    palette = np.asarray((q.getpalette() or [])[: 3 * 256], dtype=np.uint8).reshape(-1, 3)
    counts = np.bincount(index, minlength=palette.shape[0])
    used = np.nonzero(counts)[0]
    return palette[used], counts[used]


def dominant_colors(
    rgb: torch.Tensor,
    n: int = N_COLORS,
    method: QuantizeMethod = "fastoctree",
    ignore_white: bool = False,
    white_threshold: float = WHITE_THRESHOLD,
    max_pixels: int | None = 262144,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``n`` dominant colours of an sRGB image ``(3, H, W)`` in [0, 1], sorted by pixel share.

    Returns ``(colors (n, 3) float32 in [0, 1], shares (n,) summing to 1)``. Images with fewer than ``n``
    distinct clusters are padded by repeating the last colour with share 0 (so the shape is fixed). With
    ``ignore_white``, near-white pixels are left out (Color Thief does the same); an all-white image then
    falls back to using every pixel. ``max_pixels`` subsamples large images on a regular stride
    (deterministic) for speed; ``None`` keeps all pixels. A ``(B, 3, H, W)`` input is dispatched to
    :func:`dominant_colors_batch`.
    """
    if rgb.dim() == 4:
        return dominant_colors_batch(rgb, n, method, ignore_white, white_threshold, max_pixels)
    if rgb.dim() != 3 or rgb.shape[0] != 3:
        raise ValueError(f"dominant_colors expects (3,H,W) or (B,3,H,W) RGB, got {tuple(rgb.shape)}")
    if not 1 <= n <= 256:
        raise ValueError(f"n must be in [1, 256], got {n}")
    pixels = rgb.detach().float().clamp(0, 1).reshape(3, -1).T
    if ignore_white:
        keep = ~(pixels >= white_threshold).all(dim=1)
        if keep.any():
            pixels = pixels[keep]
    if max_pixels is not None and pixels.shape[0] > max_pixels:
        stride = -(-pixels.shape[0] // max_pixels)
        pixels = pixels[::stride]
    as_u8 = (pixels * 255.0).round().to(torch.uint8).cpu().numpy()
    palette, counts = _quantize_pixels(as_u8, n, method)
    order = np.argsort(-counts, kind="stable")
    palette, counts = palette[order][:n], counts[order][:n]
    colors = torch.from_numpy(palette.astype(np.float32) / 255.0)
    shares = torch.from_numpy(counts.astype(np.float32) / max(int(counts.sum()), 1))
    if colors.shape[0] < n:
        pad = n - colors.shape[0]
        colors = torch.cat([colors, colors[-1:].expand(pad, 3)])
        shares = torch.cat([shares, torch.zeros(pad)])
    return colors.to(rgb.device), shares.to(rgb.device)


def dominant_colors_batch(
    rgb: torch.Tensor,
    n: int = N_COLORS,
    method: QuantizeMethod = "fastoctree",
    ignore_white: bool = False,
    white_threshold: float = WHITE_THRESHOLD,
    max_pixels: int | None = 262144,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`dominant_colors` for every image of ``(B, 3, H, W)``: ``(B, n, 3)`` colours, ``(B, n)`` shares."""
    if rgb.dim() != 4 or rgb.shape[1] != 3:
        raise ValueError(f"dominant_colors_batch expects (B,3,H,W) RGB, got {tuple(rgb.shape)}")
    results = [dominant_colors(img, n, method, ignore_white, white_threshold, max_pixels) for img in rgb]
    if not results:
        return rgb.new_zeros(0, n, 3), rgb.new_zeros(0, n)
    colors, shares = zip(*results, strict=True)
    return torch.stack(colors), torch.stack(shares)


_HEX = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


def palette_from_hex(spec: str | Iterable[str]) -> torch.Tensor:
    """Parse hex colours into an ``(N, 3)`` float32 sRGB tensor in [0, 1].

    Accepts ``"#e03c31,#f7d842"`` (commas and/or whitespace), a list of strings, ``#rgb`` shorthand and
    colours without ``#``. Raises ``ValueError`` naming the first bad entry and its position.
    """
    tokens = [t for t in re.split(r"[,\s]+", spec.strip())] if isinstance(spec, str) else list(spec)
    tokens = [t.strip() for t in tokens if t.strip()]
    if not tokens:
        raise ValueError('palette_from_hex: no colours given; expected e.g. "#e03c31,#f7d842"')
    rows = []
    for i, token in enumerate(tokens):
        match = _HEX.match(token)
        if match is None:
            raise ValueError(
                f"palette_from_hex: entry {i + 1} {token!r} is not a hex colour; use #rrggbb or #rgb, "
                'separated by commas, e.g. "#e03c31,#f7d842"'
            )
        digits = match.group(1)
        if len(digits) == 3:
            digits = "".join(c * 2 for c in digits)
        rows.append([int(digits[j : j + 2], 16) / 255.0 for j in (0, 2, 4)])
    return torch.tensor(rows, dtype=torch.float32)
