"""The quantised ab output space of Zhang, Isola & Efros, "Colorful Image Colorization" (ECCV 2016), §2.1.

Zhang et al. quantise the ab plane with a grid of size 10 and keep ``Q = 313`` "in-gamut" grid points. This
module ships their exact list (``resources/pts_in_hull.npy`` of the released code, richzhang/colorization,
BSD-2-Clause, © 2016 Richard Zhang, Phillip Isola, Alexei A. Efros): for every a, the kept b values form one
contiguous run, so the list is the 20 rows of :data:`ZHANG_AB_ROWS` ``(a, first b, last b)``. A network
trained against these indices is compatible with Zhang's released models and priors.

An earlier version of this module recomputed the set from the sRGB gamut (grid points within 10·√2 of an
sRGB ab value): that rule also gives 313 points, but three of them differ from Zhang's list (docs/COLOR.md),
so the bins are not recomputed any more. ``tests/test_color_bins.py`` checks the list against the released
file when ``../shared/fixtures/cic/pts_in_hull.npy`` is present.
"""

from __future__ import annotations

import functools
import hashlib
import math

import torch

GRID_SIZE = 10.0
"""Spacing of the ab grid in Lab units (Zhang et al. 2016, §2.1)."""

AB_LIMIT = 110.0
"""Grid points lie at multiples of ``GRID_SIZE`` in ``[-AB_LIMIT, AB_LIMIT]``."""

Q = 313
"""Number of in-gamut ab bins."""

ZHANG_AB_ROWS: tuple[tuple[int, int, int], ...] = (
    (-90, 50, 90), (-80, 20, 90), (-70, 0, 90), (-60, -20, 90), (-50, -30, 100),
    (-40, -40, 100), (-30, -50, 100), (-20, -50, 100), (-10, -60, 100), (0, -70, 100),
    (10, -80, 90), (20, -80, 90), (30, -90, 90), (40, -100, 90), (50, -100, 80),
    (60, -110, 80), (70, -110, 80), (80, -110, 70), (90, -110, 70), (100, -90, 0),
)
"""Zhang et al.'s ``pts_in_hull.npy`` as rows ``(a, first b, last b)``: the bins ``(a, b)`` for b from first to
last in steps of 10, rows in increasing a (so the list is in (a, b) lexicographic order, like the file)."""

# Pixels per chunk in nearest-bin / soft-encode searches: 16384 × 313 float32 distances ≈ 20 MB.
CHUNK_PIXELS = 16384


@functools.lru_cache(maxsize=1)
def _centers() -> torch.Tensor:
    rows = [(a, b) for a, first, last in ZHANG_AB_ROWS for b in range(first, last + 1, int(GRID_SIZE))]
    centers = torch.tensor(rows, dtype=torch.float32)
    if centers.shape != (Q, 2):  # guards an edit of the table above
        raise RuntimeError(f"fewcolor/color/bins.py: ZHANG_AB_ROWS gives {centers.shape[0]} bins, expected {Q}")
    return centers


def ab_bin_centers(device: torch.device | str | None = None) -> torch.Tensor:
    """The ``Q = 313`` bin centres, shape (313, 2), float32, in ab units, (a, b) lexicographic order.

    A fresh copy each call (callers may modify it).
    """
    centers = _centers()
    return centers.to(device if device is not None else centers.device, copy=True)


def bins_id() -> str:
    """A short digest of the bin list: caches of per-bin data (priors) record it and are rebuilt when it differs."""
    return hashlib.sha256(_centers().numpy().tobytes()).hexdigest()[:12]


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


#: half-width (grid units) of the band around a Voronoi cell border where :func:`nearest_bin` defers to the
#: distance search: far wider than float32 rounding (~1e-6), so the shortcut never decides a near-tie.
_BORDER_MARGIN = 1e-3


def nearest_bin(ab: torch.Tensor, dim: int = -3) -> torch.Tensor:
    """Index (int64) of the nearest bin centre for every ab vector; ``ab`` is in ab units.

    ``dim`` is the axis holding (a, b): ``-3`` for images ``(2, H, W)`` / ``(B, 2, H, W)`` (result
    ``(H, W)`` / ``(B, H, W)``), ``-1`` for point lists ``(..., 2)``. This is Zhang's "hard" encoding.

    The bins are grid points, so a point's nearest grid point, when it is a bin, is its nearest bin: that is
    one rounding and one table look-up per point. Points within :data:`_BORDER_MARGIN` of a cell border
    (possible ties), or whose nearest grid point is out of gamut, take :func:`nearest_bins`' distance search,
    so the result equals that search's for every point (ties to the lower index included).
    """
    points, rest = _points_last(ab.float(), dim)
    table, _ = _grid_lookup(points.device)
    side = table.shape[0] - 2 * _WINDOW
    grid = points.add(AB_LIMIT).div_(GRID_SIZE)
    cell = grid.round()
    inside = grid.sub_(cell).abs_().amax(dim=1) < 0.5 - _BORDER_MARGIN
    cell = cell.nan_to_num_(0.0).clamp_(0, side - 1).add_(_WINDOW).long()
    idx = table.view(-1)[cell[:, 0] * table.shape[1] + cell[:, 1]]
    hard = ~inside | (idx == Q)  # NaN points fail ``inside`` too
    if hard.any():
        idx[hard] = nearest_bins(points[hard], 1)[1][:, 0]
    return idx.reshape(rest)
