"""The 313 in-gamut ab bins (Zhang et al. 2016, §2.1)."""

from __future__ import annotations

from pathlib import Path

import kornia.color
import numpy as np
import pytest
import torch

from fewcolor.color.bins import GRID_SIZE, Q, ab_bin_centers, bins_id, nearest_bin, nearest_bins


def srgb_gamut_ab(samples: int) -> torch.Tensor:
    """ab (N, 2), float64, of a ``samples²`` grid on each face of the sRGB cube (the ab projection of the
    solid is bounded by that of its surface)."""
    g = torch.linspace(0.0, 1.0, samples, dtype=torch.float64)
    u, v = (t.reshape(-1) for t in torch.meshgrid(g, g, indexing="ij"))
    faces = []
    for axis in range(3):
        for value in (0.0, 1.0):
            others = [i for i in range(3) if i != axis]
            channels = [u, u, u]
            channels[axis] = torch.full_like(u, value)
            channels[others[0]], channels[others[1]] = u, v
            faces.append(torch.stack(channels))
    lab = kornia.color.rgb_to_lab(torch.cat(faces, dim=1).reshape(1, 3, -1, 1))
    return lab[0, 1:, :, 0].T.contiguous()


def test_bins_are_zhangs_released_list(shared_dir: Path) -> None:
    oracle = shared_dir / "fixtures" / "cic" / "pts_in_hull.npy"
    if not oracle.is_file():
        pytest.skip(f"{oracle} is absent")
    expected = torch.from_numpy(np.load(oracle).astype(np.float32))
    assert torch.equal(ab_bin_centers(), expected)  # same points in the same order: indices are compatible


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


def test_bins_differ_from_the_old_gamut_margin_rule_in_three_bins() -> None:
    # The rule this module used before (grid points within 10·√2 of an sRGB ab value) also gives 313
    # points, but not Zhang's: docs/COLOR.md records the difference, checked here.
    axis = torch.arange(-110.0, 111.0, GRID_SIZE, dtype=torch.float64)
    grid = torch.cartesian_prod(axis, axis)
    near = torch.cdist(grid, srgb_gamut_ab(64)).min(dim=1).values < GRID_SIZE * 2**0.5
    old = {tuple(p) for p in grid[near].int().tolist()}
    ours = {tuple(p) for p in ab_bin_centers().int().tolist()}
    assert len(old) == Q
    assert sorted(ours - old) == [(40, 90), (100, -90), (100, 0)]
    assert sorted(old - ours) == [(-60, 100), (80, 80), (110, -60)]
    assert torch.equal(ab_bin_centers(), ab_bin_centers()) and len(bins_id()) == 12


def test_callers_cannot_corrupt_the_cache() -> None:
    c = ab_bin_centers()
    c += 1000
    ab_bin_centers("cpu").mul_(5)
    assert ab_bin_centers().abs().max() <= 110


def test_every_srgb_colour_is_near_a_bin() -> None:
    gamut = srgb_gamut_ab(24).float()
    dist = torch.cdist(gamut, ab_bin_centers()).min(dim=1).values
    # every sRGB colour lies inside a kept cell: within half a cell diagonal of a bin centre (max 7.03 here)
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


def test_nearest_bin_shortcut_equals_the_distance_search() -> None:
    """The rounding shortcut of nearest_bin gives nearest_bins' answer everywhere: inside cells, on cell
    borders and corners (ties to the lower index), a hair off them, out of gamut, far away, NaN and inf."""
    g = torch.Generator().manual_seed(2)
    borders = torch.round((torch.rand(2000, 2, generator=g) - 0.5) * 260 / 5) * 5  # multiples of 5
    points = torch.cat(
        [
            (torch.rand(20000, 2, generator=g) - 0.5) * 260,
            borders,
            borders + (torch.rand(2000, 2, generator=g) - 0.5) * 2e-4,
            borders + (torch.rand(2000, 2, generator=g) - 0.5) * 2e-2,
            (torch.rand(200, 2, generator=g) - 0.5) * 2000,
            torch.tensor([[float("nan"), 0.0], [0.0, float("inf")], [-float("inf"), 5.0]]),
        ]
    )
    assert torch.equal(nearest_bin(points, dim=-1), nearest_bins(points, 1)[1][:, 0])
