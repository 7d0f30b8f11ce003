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


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="must both be"):
        threshold_triplet_loss(torch.zeros(2, 3), torch.zeros(2, 4, dtype=torch.bool))
