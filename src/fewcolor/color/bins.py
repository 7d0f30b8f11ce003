"""The quantised ab output space of Zhang, Isola & Efros, "Colorful Image Colorization" (ECCV 2016), §2.1.

Zhang et al. quantise the ab plane with a grid of size 10 and keep the ``Q = 313`` grid points that are
"in gamut". Their list (``pts_in_hull.npy``) is not downloaded here: it is recomputed from the sRGB gamut.

Construction (deterministic, ~0.5 s on one core, cached per process):

1. sample the six faces of the sRGB cube densely (the projection of a solid onto the ab plane is bounded by
   the projection of its surface, so the faces suffice) and convert them to Lab (D65, kornia, float64);
2. keep every grid point ``(a, b)`` with ``a, b ∈ {-110, -100, …, 110}`` whose Euclidean distance to the
   nearest sRGB ab value (at any L) is below one cell diagonal, ``10·√2``.

This gives exactly 313 points, and its first entries, in (a, b) lexicographic order, are (-90, 50),
(-90, 60), … like Zhang's file. Plain rounding of sRGB colours to the nearest grid point (the cells that
contain an in-gamut colour) gives only 262 points: Zhang's set is a margin wider than the sRGB gamut, so that
soft-encoding (5 neighbours, σ = 5) of a colour on the gamut border still finds neighbours around it.
docs/COLOR.md records the counts of the other constructions that were measured.
"""

from __future__ import annotations

import functools
import math

import kornia.color
import torch

GRID_SIZE = 10.0
"""Spacing of the ab grid in Lab units (Zhang et al. 2016, §2.1)."""

AB_LIMIT = 110.0
"""Grid points lie at multiples of ``GRID_SIZE`` in ``[-AB_LIMIT, AB_LIMIT]``."""

Q = 313
"""Number of in-gamut ab bins."""

_FACE_SAMPLES = 64  # samples per side of each cube face; 48 already gives the same set (see tests)

# Pixels per chunk in nearest-bin / soft-encode searches: 16384 × 313 float32 distances ≈ 20 MB.
CHUNK_PIXELS = 16384


def srgb_gamut_ab(samples: int = _FACE_SAMPLES) -> torch.Tensor:
    """ab values (N, 2), float64, of a ``samples × samples`` grid on each face of the sRGB cube."""
    g = torch.linspace(0.0, 1.0, samples, dtype=torch.float64)
    u, v = (t.reshape(-1) for t in torch.meshgrid(g, g, indexing="ij"))
    faces = []
    for axis in range(3):
        others = [i for i in range(3) if i != axis]
        for value in (0.0, 1.0):
            channels = [u, u, u]
            channels[axis] = torch.full_like(u, value)
            channels[others[0]], channels[others[1]] = u, v
            faces.append(torch.stack(channels))
    rgb = torch.cat(faces, dim=1).reshape(1, 3, -1, 1)
    lab = kornia.color.rgb_to_lab(rgb)
    return lab[0, 1:, :, 0].T.contiguous()


def compute_ab_bin_centers(samples: int = _FACE_SAMPLES, margin: float = GRID_SIZE * math.sqrt(2.0)) -> torch.Tensor:
    """Recompute the in-gamut grid points (float64, (a, b) lexicographic order); see the module docstring."""
    steps = round(2 * AB_LIMIT / GRID_SIZE) + 1
    axis = torch.linspace(-AB_LIMIT, AB_LIMIT, steps, dtype=torch.float64)
    grid = torch.cartesian_prod(axis, axis)  # (a, b) lexicographic, a major
    gamut = srgb_gamut_ab(samples)
    nearest = torch.full((grid.shape[0],), math.inf, dtype=torch.float64)
    for chunk in gamut.split(65536):
        nearest = torch.minimum(nearest, torch.cdist(grid, chunk).min(dim=1).values)
    return grid[nearest < margin]


@functools.lru_cache(maxsize=1)
def _centers() -> torch.Tensor:
    centers = compute_ab_bin_centers().float()
    if centers.shape != (Q, 2):
        raise RuntimeError(
            f"fewcolor/color/bins.py: the recomputed ab gamut has {centers.shape[0]} bins, expected {Q}; "
            "the Lab conversion (kornia) changed: check compute_ab_bin_centers against docs/COLOR.md"
        )
    return centers


def ab_bin_centers(device: torch.device | str | None = None) -> torch.Tensor:
    """The ``Q = 313`` bin centres, shape (313, 2), float32, in ab units, (a, b) lexicographic order.

    A fresh copy each call (callers may modify it); the computation itself is cached.
    """
    centers = _centers()
    return centers.to(device if device is not None else centers.device, copy=True)


def exact_cdist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Euclidean distances without the matmul shortcut, whose cancellation error (~1e-3) flips near-ties
    between chunkings; exact distances make nearest-bin and soft-encoding independent of batch layout."""
    return torch.cdist(x, y, compute_mode="donot_use_mm_for_euclid_dist")


def _points_last(ab: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Size]:
    """Move the size-2 channel axis ``dim`` last and flatten: (N, 2) and the shape of the other axes."""
    if ab.shape[dim] != 2:
        raise ValueError(f"expected 2 ab channels on dim {dim}, got shape {tuple(ab.shape)}")
    moved = ab.movedim(dim, -1)
    return moved.reshape(-1, 2), moved.shape[:-1]


_WINDOW = 2  # candidate block: (2·_WINDOW + 1)² grid points around the nearest grid point


@functools.lru_cache(maxsize=4)
def _grid_lookup(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(23+2W)² table grid point -> bin index (Q where out of gamut, padded by W), and the block offsets."""
    side = round(2 * AB_LIMIT / GRID_SIZE) + 1
    table = torch.full((side + 2 * _WINDOW, side + 2 * _WINDOW), Q, dtype=torch.long)
    cells = torch.round((_centers() + AB_LIMIT) / GRID_SIZE).long() + _WINDOW
    table[cells[:, 0], cells[:, 1]] = torch.arange(Q)
    r = torch.arange(-_WINDOW, _WINDOW + 1)
    offsets = torch.cartesian_prod(r, r)  # (a, b) lexicographic: candidates come in bin-index order
    return table.to(device), offsets.to(device)


def _smallest(d: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """k smallest along dim 1, ascending; for k = 1 argmin, whose ties go to the first (lowest) index."""
    if k == 1:
        j = d.argmin(dim=1, keepdim=True)
        return d.gather(1, j), j
    return d.topk(k, dim=1, largest=False, sorted=True)


def nearest_bins(points: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact ``k`` nearest bin centres of (N, 2) ab points: ``(distances (N, k), indices (N, k))``, ascending.

    Fast path: only the bins in the 5×5 block of grid points around each point's nearest grid point are
    searched; any grid point outside that block is at least ``10·W + 5 = 25`` away, so the result is exact
    whenever the k-th candidate is closer than that. Other points (outside the grid, or on the gamut border
    with too few candidates) fall back to a search over all 313 bins. Ties resolve to the lower bin index.
    """
    points = points.float()
    n = points.shape[0]
    dist = torch.empty(n, k, dtype=torch.float32, device=points.device)
    idx = torch.empty(n, k, dtype=torch.long, device=points.device)
    if n == 0:
        return dist, idx
    table, offsets = _grid_lookup(points.device)
    centers = ab_bin_centers(points.device)
    padded = torch.cat([centers, torch.full((1, 2), math.inf, device=points.device)])  # row Q: no bin
    side = table.shape[0] - 2 * _WINDOW
    bound = GRID_SIZE * _WINDOW + GRID_SIZE / 2
    for start in range(0, n, CHUNK_PIXELS):
        block = points[start : start + CHUNK_PIXELS]
        g = torch.round((block + AB_LIMIT) / GRID_SIZE).long().clamp(0, side - 1) + _WINDOW
        cand = g[:, None, :] + offsets[None]  # (n, 25, 2)
        bins = table[cand[..., 0], cand[..., 1]]  # (n, 25), Q where no bin
        d = (block[:, None, :] - padded[bins]).square().sum(dim=-1).sqrt()
        d = torch.nan_to_num(d, nan=math.inf)  # inf - inf for points far outside the grid
        d_k, j = _smallest(d, k)
        i_k = bins.gather(1, j)
        bad = ~(d_k[:, -1] < bound)
        if bad.any():  # exact fallback over all bins
            d_k[bad], i_k[bad] = _smallest(exact_cdist(block[bad], centers), k)
        dist[start : start + block.shape[0]] = d_k
        idx[start : start + block.shape[0]] = i_k
    return dist, idx


def nearest_bin(ab: torch.Tensor, dim: int = -3) -> torch.Tensor:
    """Index (int64) of the nearest bin centre for every ab vector; ``ab`` is in ab units.

    ``dim`` is the axis holding (a, b): ``-3`` for images ``(2, H, W)`` / ``(B, 2, H, W)`` (result
    ``(H, W)`` / ``(B, H, W)``), ``-1`` for point lists ``(..., 2)``. This is Zhang's "hard" encoding.
    """
    points, rest = _points_last(ab.float(), dim)
    return nearest_bins(points, 1)[1][:, 0].reshape(rest)
