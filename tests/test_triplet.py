"""Threshold triplet loss (MemoPainter Eq. 4): value, gradient, and the no-positive / no-negative cases."""

from __future__ import annotations

import pytest
import torch

from fewcolor.losses.triplet import threshold_triplet_loss


def test_value_and_gradient_on_a_constructed_case():
    # query 0: positive = slot 2 (0.5, the best within δ), negative = slot 0 (0.9): hinge 0.9-0.5+0.1 = 0.5
    # query 1: positive = slot 0 (0.8) beats negative 0.3 by more than α: hinge 0
    scores = torch.tensor([[0.9, 0.7, 0.5, 0.1], [0.8, 0.3, 0.2, 0.1]], requires_grad=True)
    positive = torch.tensor([[False, False, True, True], [True, False, False, True]])
    out = threshold_triplet_loss(scores, positive, margin=0.1)
    assert out.loss.item() == pytest.approx((0.5 + 0.0) / 2)
    assert (out.valid, out.no_positive, out.no_negative) == (2, 0, 0)
    out.loss.backward()
    expected = torch.tensor([[0.5, 0.0, -0.5, 0.0], [0.0, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(scores.grad, expected)


def test_queries_without_positive_or_negative_are_skipped_and_counted():
    scores = torch.tensor([[0.9, 0.5], [0.8, 0.7], [0.2, 0.6]], requires_grad=True)
    positive = torch.tensor([[False, False], [True, True], [False, True]])
    out = threshold_triplet_loss(scores, positive, margin=0.1)
    assert (out.valid, out.no_positive, out.no_negative) == (1, 1, 1)
    assert out.loss.item() == pytest.approx(max(0.2 - 0.6 + 0.1, 0.0))


def test_no_triplet_at_all_gives_zero_loss_with_zero_gradient():
    scores = torch.tensor([[0.9, 0.5]], requires_grad=True)
    out = threshold_triplet_loss(scores, torch.tensor([[False, False]]))
    assert out.loss.item() == 0.0 and out.valid == 0
    out.loss.backward()
    assert torch.equal(scores.grad, torch.zeros_like(scores))


def test_no_triplet_among_excluded_slots_is_a_finite_zero():
    # −inf marks an excluded slot (leave-one-out); a query left with no triplet must not make the loss NaN
    scores = torch.tensor([[float("-inf"), 0.5]], requires_grad=True)
    out = threshold_triplet_loss(scores, torch.tensor([[True, False]]))
    assert out.loss.item() == 0.0 and (out.valid, out.no_positive) == (0, 1)
    out.loss.backward()
    assert scores.grad is not None and torch.equal(scores.grad, torch.zeros_like(scores))


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="must both be"):
        threshold_triplet_loss(torch.zeros(2, 3), torch.zeros(2, 4, dtype=torch.bool))


def test_memory_triplet_loss_against_a_memory_with_leave_one_out():
    import torch.nn.functional as F

    from fewcolor.losses.triplet import memory_triplet_loss
    from fewcolor.nets.memory import ColorMemory

    mem = ColorMemory(4, key_dim=2, value_dim=1, distance=lambda a, b: (a - b).abs().sum(-1), threshold=0.5)
    q = F.normalize(torch.tensor([[1.0, 0.0]]), dim=1)
    target = torch.tensor([[0.0]])
    assert memory_triplet_loss(mem, q, target, top_k=3, margin=0.1) is None  # empty: nothing to compare with
    keys = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=1)
    for i, (value, label) in enumerate(((0.0, 7), (5.0, 3))):  # source 0 (the query's own): value 0; source 1: 5
        mem.update(keys[i : i + 1], torch.tensor([[value]]), sources=torch.tensor([i]), labels=torch.tensor([label]))
    assert mem.num_filled == 2
    # positive = the own slot (similarity 1), negative = the other (0): hinge max(0 − 1 + 1.5, 0) = 0.5
    own = memory_triplet_loss(mem, q, target, top_k=3, margin=1.5)
    assert own is not None and own.valid == 1 and own.loss.item() == pytest.approx(0.5, abs=1e-6)
    # leaving the own slot out there is no positive: no triplet, and a finite zero, not NaN
    loo = memory_triplet_loss(mem, q, target, top_k=3, margin=1.5, exclude_sources=torch.tensor([0]))
    assert loo is not None and (loo.valid, loo.no_positive) == (0, 1) and loo.loss.item() == 0.0
    # supervised: the same-label slot is the positive whatever its colour
    sup = memory_triplet_loss(mem, q, target, top_k=3, margin=1.5, labels=torch.tensor([3]))
    assert sup is not None and sup.valid == 1 and sup.loss.item() == pytest.approx(max(1.0 - 0.0 + 1.5, 0), abs=1e-6)
