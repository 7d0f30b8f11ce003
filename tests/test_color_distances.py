"""Symmetric KL between colour distributions."""

from __future__ import annotations

import pytest
import torch

from fewcolor.color.distances import symmetric_kl


def _dist(seed: int, shape: tuple[int, ...] = (4, 313)) -> torch.Tensor:
    p = torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return p / p.sum(dim=-1, keepdim=True)


def test_equals_kl_both_ways() -> None:
    p, q = _dist(0), _dist(1)
    kl = lambda a, b: (a * (a / b).log()).sum(dim=-1)  # noqa: E731
    assert torch.allclose(symmetric_kl(p, q), kl(p, q) + kl(q, p), atol=1e-6)


def test_properties() -> None:
    p, q = _dist(2), _dist(3)
    assert symmetric_kl(p, q).shape == (4,)
    assert torch.allclose(symmetric_kl(p, q), symmetric_kl(q, p))
    assert torch.allclose(symmetric_kl(p, p), torch.zeros(4, dtype=torch.float64), atol=1e-12)
    assert (symmetric_kl(p, q) > 0).all()


def test_empty_bins_stay_finite_and_dim_works() -> None:
    p = torch.zeros(313)
    p[0] = 1.0
    q = torch.zeros(313)
    q[1] = 1.0
    d = symmetric_kl(p, q)
    assert torch.isfinite(d) and d > 10
    a, b = _dist(4, (313, 3)), _dist(5, (313, 3))
    assert torch.allclose(symmetric_kl(a, b, dim=0), symmetric_kl(a.T, b.T))
    with pytest.raises(ValueError, match="shapes differ"):
        symmetric_kl(p, q[:10])
