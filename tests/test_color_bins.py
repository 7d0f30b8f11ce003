"""The 313 in-gamut ab bins (Zhang et al. 2016, §2.1)."""

from __future__ import annotations

import torch

from fewcolor.color.bins import (
    GRID_SIZE,
    Q,
    ab_bin_centers,
    compute_ab_bin_centers,
    nearest_bin,
    nearest_bins,
    srgb_gamut_ab,
)


def test_there_are_313_bins_on_the_grid() -> None:
    centers = ab_bin_centers()
    assert Q == 313
    assert centers.shape == (313, 2) and centers.dtype == torch.float32
    assert torch.equal(centers, torch.round(centers / GRID_SIZE) * GRID_SIZE)  # multiples of 10
    assert centers.abs().max() <= 110
    assert len({tuple(c) for c in centers.tolist()}) == 313
    # (a, b) lexicographic, and the first entries agree with Zhang's pts_in_hull.npy: (-90, 50), (-90, 60)
    keys = centers[:, 0] * 1000 + centers[:, 1]
    assert torch.all(keys[1:] > keys[:-1])
    assert centers[:2].tolist() == [[-90.0, 50.0], [-90.0, 60.0]]


def test_bins_are_deterministic_and_converged() -> None:
    assert torch.equal(ab_bin_centers(), ab_bin_centers())
    coarse = compute_ab_bin_centers(samples=48).float()
    assert torch.equal(coarse, ab_bin_centers())


def test_callers_cannot_corrupt_the_cache() -> None:
    c = ab_bin_centers()
    c += 1000
    ab_bin_centers("cpu").mul_(5)
    assert ab_bin_centers().abs().max() <= 110


def test_every_srgb_colour_is_near_a_bin() -> None:
    gamut = srgb_gamut_ab(24).float()
    dist = torch.cdist(gamut, ab_bin_centers()).min(dim=1).values
    # every sRGB colour lies inside a kept cell: within half a cell diagonal of a bin centre
    assert dist.max() <= GRID_SIZE * 2**0.5 / 2 + 1e-4


def test_plain_rounding_gives_fewer_bins() -> None:
    # documented in docs/COLOR.md: cells that contain an sRGB colour are a strict subset (262 of 313)
    rounded = torch.unique(torch.round(srgb_gamut_ab(64) / GRID_SIZE), dim=0) * GRID_SIZE
    centers = {tuple(c) for c in ab_bin_centers().tolist()}
    assert {tuple(c) for c in rounded.float().tolist()} < centers
    assert 250 < rounded.shape[0] < 280


def test_nearest_bin_for_images_and_points() -> None:
    centers = ab_bin_centers()
    idx = torch.tensor([0, 5, 100, 312])
    assert torch.equal(nearest_bin(centers[idx] + 1.0, dim=-1), idx)  # small offsets keep the bin
    ab = torch.randn(2, 2, 5, 7, generator=torch.Generator().manual_seed(0)) * 40
    got = nearest_bin(ab)
    assert got.shape == (2, 5, 7) and got.dtype == torch.long
    brute = torch.cdist(ab.movedim(1, -1).reshape(-1, 2), centers).argmin(dim=1).reshape(2, 5, 7)
    assert torch.equal(got, brute)
    assert nearest_bin(ab[0]).shape == (5, 7)


def test_fast_k_nearest_search_is_exact() -> None:
    g = torch.Generator().manual_seed(1)
    points = torch.cat(
        [
            torch.randn(3000, 2, generator=g) * 40,  # mostly in gamut
            (torch.rand(1000, 2, generator=g) - 0.5) * 260,  # the whole grid and its border
            (torch.rand(200, 2, generator=g) - 0.5) * 2000,  # far outside: fallback path
            ab_bin_centers() + 5.0,  # exact ties between neighbouring bins
        ]
    )
    brute = torch.cdist(points.double(), ab_bin_centers().double())
    for k in (1, 5, 8):
        dist, idx = nearest_bins(points, k)
        ref = brute.topk(k, dim=1, largest=False).values
        assert torch.allclose(dist.double(), ref, atol=1e-4)
        assert torch.allclose(brute.gather(1, idx), ref, atol=1e-4)  # the indices are at those distances
    assert torch.equal(nearest_bins(points, 1)[1][:, 0], brute.argmin(dim=1))  # ties: lowest index
