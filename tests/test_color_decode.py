"""Annealed-mean decoding (Zhang et al. 2016, Eq. 5)."""

from __future__ import annotations

import pytest
import torch

from fewcolor.color.bins import Q, ab_bin_centers
from fewcolor.color.decode import DEFAULT_TEMPERATURE, annealed_distribution, annealed_mean


def _logits(seed: int = 0) -> torch.Tensor:
    return torch.randn(2, Q, 3, 4, generator=torch.Generator().manual_seed(seed)) * 3


def test_temperature_one_is_the_mean() -> None:
    logits = _logits()
    probs = torch.softmax(logits, dim=1)
    mean = torch.einsum("bqhw,qc->bchw", probs, ab_bin_centers())
    assert torch.allclose(annealed_mean(logits, temperature=1.0), mean, atol=1e-4)
    assert torch.allclose(annealed_mean(probs, temperature=1.0, from_probs=True), mean, atol=1e-3)


def test_low_temperature_is_the_mode() -> None:
    logits = _logits(1)
    # give every pixel a clear winner (margin 1) so the limit is reached at a finite T
    logits = logits.scatter_add(1, logits.argmax(dim=1, keepdim=True), torch.ones(2, 1, 3, 4))
    mode = ab_bin_centers()[logits.argmax(dim=1)].movedim(-1, 1)
    assert torch.equal(annealed_mean(logits, temperature=0.0), mode)
    assert torch.allclose(annealed_mean(logits, temperature=0.02), mode, atol=1e-3)


def test_default_temperature_and_shapes() -> None:
    assert DEFAULT_TEMPERATURE == 0.38
    logits = _logits(2)
    ab = annealed_mean(logits)
    assert ab.shape == (2, 2, 3, 4)
    # annealing sharpens: the annealed distribution has lower entropy than the plain softmax
    p1 = torch.softmax(logits, dim=1)
    pt = annealed_distribution(logits, DEFAULT_TEMPERATURE)
    ent = lambda p: -(p * p.clamp_min(1e-12).log()).sum(dim=1)  # noqa: E731
    assert (ent(pt) < ent(p1)).all()
    assert annealed_mean(logits.movedim(1, -1), dim=-1).shape == (2, 3, 4, 2)


def test_stable_for_huge_logits_and_differentiable() -> None:
    logits = (_logits(3) * 1e4).requires_grad_(True)
    ab = annealed_mean(logits, temperature=0.38)
    assert torch.isfinite(ab).all()
    small = _logits(4).requires_grad_(True)
    annealed_mean(small).sum().backward()
    assert small.grad is not None and torch.isfinite(small.grad).all()


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="313 bins"):
        annealed_mean(torch.zeros(1, 10, 2, 2))
    with pytest.raises(ValueError, match="temperature"):
        annealed_mean(_logits(), temperature=-1.0)
