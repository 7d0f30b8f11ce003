"""Colour features: ab distributions, dominant colours, hex palettes."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from fewcolor.color.bins import Q, nearest_bin
from fewcolor.color.ciede2000 import delta_e_2000
from fewcolor.color.features import (
    ab_distribution,
    dominant_colors,
    dominant_colors_batch,
    near_white_mask,
    palette_from_hex,
)
from fewcolor.color.lab import rgb_to_lab

RED, BLUE, GREEN, WHITE = (0.9, 0.1, 0.1), (0.1, 0.2, 0.8), (0.2, 0.7, 0.2), (1.0, 1.0, 1.0)


def _stripes(colors_rows: list[tuple[tuple[float, float, float], int]], width: int = 10) -> torch.Tensor:
    """A (3, H, W) image made of horizontal stripes: [(colour, rows), ...]."""
    rows = [torch.tensor(c).view(3, 1, 1).expand(3, n, width) for c, n in colors_rows]
    return torch.cat(rows, dim=1).contiguous()


def test_dominant_colors_recovers_known_shares() -> None:
    img = _stripes([(BLUE, 30), (RED, 50), (GREEN, 20)])
    colors, shares = dominant_colors(img)
    assert colors.shape == (10, 3) and shares.shape == (10,)
    assert torch.allclose(shares[:3], torch.tensor([0.5, 0.3, 0.2]))
    assert torch.allclose(colors[:3], torch.tensor([RED, BLUE, GREEN]), atol=1 / 255)
    # padded: repeats the last colour with share 0
    assert (shares[3:] == 0).all() and torch.equal(colors[3:], colors[2:3].expand(7, 3))
    assert torch.allclose(shares.sum(), torch.tensor(1.0))


@pytest.mark.parametrize("method", ["mediancut", "fastoctree", "kmeans"])
def test_methods_and_ignore_white(method: str) -> None:
    img = _stripes([(WHITE, 70), (RED, 20), (BLUE, 10)])
    colors, shares = dominant_colors(img, method=method)  # type: ignore[arg-type]
    assert torch.allclose(colors[0], torch.tensor(WHITE), atol=2 / 255) and shares[0] > 0.65
    colors, shares = dominant_colors(img, method=method, ignore_white=True)  # type: ignore[arg-type]
    assert torch.allclose(colors[0], torch.tensor(RED), atol=2 / 255)
    assert torch.allclose(shares[:2], torch.tensor([2 / 3, 1 / 3]), atol=1e-3)
    # an all-white image falls back to all its pixels instead of failing
    colors, shares = dominant_colors(torch.ones(3, 8, 8), ignore_white=True)
    assert torch.allclose(colors[0], torch.ones(3)) and shares[0] == 1


def test_palette_quality_on_a_photo() -> None:
    skdata = pytest.importorskip("skimage.data", reason="scikit-image (dev extra) provides the sample photo")
    img = torch.from_numpy(skdata.astronaut().copy()).permute(2, 0, 1).float() / 255.0
    start = time.perf_counter()
    colors, shares = dominant_colors(img)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0  # fast octree: about 0.01 s on one core
    assert len({tuple(c) for c in colors.tolist()}) == 10
    assert torch.all(shares[1:] <= shares[:-1]) and torch.allclose(shares.sum(), torch.tensor(1.0))
    # every pixel is close to some palette colour: mean ΔE00 to the nearest of the 10 colours
    lab_px = rgb_to_lab(img[:, ::4, ::4]).reshape(3, -1).T
    lab_pal = rgb_to_lab(colors.T.unsqueeze(-1)).squeeze(-1).T
    nearest = delta_e_2000(lab_px[:, None], lab_pal[None]).min(dim=1).values
    one_colour = delta_e_2000(lab_px, lab_px.mean(dim=0, keepdim=True).expand_as(lab_px))
    assert nearest.mean() < 10.0 and nearest.mean() < 0.4 * one_colour.mean()


def test_batched_dominant_colors() -> None:
    a = _stripes([(RED, 10), (BLUE, 10)])
    b = _stripes([(GREEN, 15), (RED, 5)])
    colors, shares = dominant_colors_batch(torch.stack([a, b]), n=4)
    assert colors.shape == (2, 4, 3) and shares.shape == (2, 4)
    assert torch.allclose(colors[1, 0], torch.tensor(GREEN), atol=1 / 255)
    same = dominant_colors(torch.stack([a, b]), n=4)
    assert torch.equal(same[0], colors) and torch.equal(same[1], shares)
    with pytest.raises(ValueError, match="RGB"):
        dominant_colors(torch.zeros(4, 5, 5))


def test_ab_distribution_hard_and_soft() -> None:
    img = _stripes([(RED, 6), (BLUE, 2)], width=4)
    hist = ab_distribution(img)
    assert hist.shape == (Q,) and torch.allclose(hist.sum(), torch.tensor(1.0))
    red_bin = int(nearest_bin(rgb_to_lab(torch.tensor(RED).view(3, 1, 1))[1:]).item())
    blue_bin = int(nearest_bin(rgb_to_lab(torch.tensor(BLUE).view(3, 1, 1))[1:]).item())
    assert hist[red_bin] == pytest.approx(0.75) and hist[blue_bin] == pytest.approx(0.25)
    soft = ab_distribution(img, soft=True)
    assert torch.allclose(soft.sum(), torch.tensor(1.0)) and (soft > 0).sum() == 10
    batch = ab_distribution(torch.stack([img, img.flip(1)]))
    assert batch.shape == (2, Q) and torch.allclose(batch[0], batch[1])


def test_ab_distribution_ignores_white() -> None:
    img = _stripes([(WHITE, 6), (RED, 2)], width=4)
    assert near_white_mask(img).float().mean() == pytest.approx(0.75)
    hist = ab_distribution(img, ignore_white=True)
    assert hist.max() == pytest.approx(1.0)
    uniform = ab_distribution(torch.ones(1, 3, 4, 4), ignore_white=True)
    assert torch.allclose(uniform, torch.full((1, Q), 1.0 / Q))


def test_palette_from_hex() -> None:
    pal = palette_from_hex("#e03c31,#f7d842")
    assert pal.shape == (2, 3) and pal.dtype == torch.float32
    assert torch.allclose(pal[0] * 255, torch.tensor([224.0, 60.0, 49.0]))
    assert torch.equal(palette_from_hex(" #FFF  000000, abc "), palette_from_hex(["#ffffff", "#000", "#aabbcc"]))
    for bad, where in [("#e03c31,#zz0000", "entry 2"), ("#12345", "entry 1"), ("", "no colours")]:
        with pytest.raises(ValueError, match=where):
            palette_from_hex(bad)


def test_features_are_deterministic() -> None:
    g = torch.Generator().manual_seed(0)
    img = torch.rand(3, 40, 40, generator=g)
    a, b = dominant_colors(img), dominant_colors(img)
    assert torch.equal(a[0], b[0]) and np.isclose(float(a[1].sum()), 1.0)
