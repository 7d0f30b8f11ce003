"""Soft-encoding of ab onto the 313 bins (Zhang et al. 2016, §2.1)."""

from __future__ import annotations

import pytest
import torch

from fewcolor.color.bins import Q, ab_bin_centers, nearest_bin
from fewcolor.color.normalize import normalize_ab
from fewcolor.color.soft_encode import (
    soft_encode_ab,
    soft_encode_ab_normalized,
    soft_encode_points,
    soft_encode_sum,
)


def _ab(seed: int = 0) -> torch.Tensor:
    return torch.randn(3, 2, 9, 11, generator=torch.Generator().manual_seed(seed)) * 35


def test_rows_sum_to_one_with_five_neighbours() -> None:
    z = soft_encode_ab(_ab())
    assert z.shape == (3, Q, 9, 11) and z.dtype == torch.float32
    assert torch.allclose(z.sum(dim=1), torch.ones(3, 9, 11), atol=1e-5)
    assert ((z > 0).sum(dim=1) == 5).all()
    assert z.min() >= 0


def test_exact_bin_centre_gets_most_weight() -> None:
    centers = ab_bin_centers()
    z = soft_encode_points(centers)
    assert torch.equal(z.argmax(dim=1), torch.arange(Q))
    # neighbours sit >= 10 away: weight exp(-100/50) relative to 1 for the centre itself
    assert (z.max(dim=1).values > 0.4).all()


def test_hard_nearest_equals_argmax() -> None:
    ab = _ab(1)
    assert torch.equal(soft_encode_ab(ab).argmax(dim=1), nearest_bin(ab))


def test_weights_are_gaussian_in_the_distance() -> None:
    point = torch.tensor([[3.0, -7.0]])
    z = soft_encode_points(point, sigma=5.0)[0]
    idx = z.nonzero().squeeze(1)
    d2 = (ab_bin_centers()[idx] - point).square().sum(dim=1)
    expected = torch.exp(-d2 / 50.0)
    assert torch.allclose(z[idx], expected / expected.sum(), atol=1e-6)


def test_chunking_gives_identical_results() -> None:
    points = _ab(2).movedim(1, -1).reshape(-1, 2)
    assert torch.equal(soft_encode_points(points, chunk=7), soft_encode_points(points))


def test_normalized_wrapper_and_single_image() -> None:
    ab = _ab(3)
    assert torch.allclose(soft_encode_ab_normalized(normalize_ab(ab)), soft_encode_ab(ab), atol=1e-6)
    assert soft_encode_ab(ab[0]).shape == (Q, 9, 11)
    with pytest.raises(ValueError, match="2 ab channels"):
        soft_encode_ab(torch.zeros(1, 3, 4, 4))


def test_far_out_of_range_input_stays_finite() -> None:
    z = soft_encode_points(torch.tensor([[500.0, -500.0]]))
    assert torch.isfinite(z).all() and torch.allclose(z.sum(), torch.tensor(1.0))


def test_soft_encode_sum_equals_summed_encoding() -> None:
    points = _ab(4).movedim(1, -1).reshape(-1, 2)
    weights = torch.rand(points.shape[0], generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    full = soft_encode_points(points).double()
    assert torch.allclose(soft_encode_sum(points, chunk=50), full.sum(dim=0), atol=1e-5)
    assert torch.allclose(soft_encode_sum(points, weights), (full * weights[:, None]).sum(dim=0), atol=1e-5)
