"""Zhang et al.'s rebalanced cross-entropy: value, weighting by the true bin, and its minimum."""

from __future__ import annotations

import pytest
import torch

from fewcolor.color.bins import Q, ab_bin_centers
from fewcolor.color.prior import rebalance_weights
from fewcolor.color.soft_encode import soft_encode_ab
from fewcolor.losses.cic import rebalanced_cross_entropy, true_bin_weights


def _two_pixel_targets() -> torch.Tensor:
    centers = ab_bin_centers()
    ab = torch.stack([centers[0], centers[200]], dim=1).view(1, 2, 1, 2)  # pixel 0 in bin 0, pixel 1 in bin 200
    return soft_encode_ab(ab)


def test_true_bin_weight_is_the_argmax_bins_weight() -> None:
    target = _two_pixel_targets()
    w = torch.arange(Q, dtype=torch.float32)
    assert true_bin_weights(target, w).flatten().tolist() == [0.0, 200.0]
    with pytest.raises(ValueError, match="bins"):
        true_bin_weights(target, torch.ones(5))


def test_unweighted_value_is_soft_cross_entropy() -> None:
    target = _two_pixel_targets()
    logits = torch.randn(1, Q, 1, 2)
    per_pixel = -(target * torch.log_softmax(logits, 1)).sum(1)
    torch.testing.assert_close(rebalanced_cross_entropy(logits, target), per_pixel.sum())
    torch.testing.assert_close(rebalanced_cross_entropy(logits, target, torch.ones(Q)), per_pixel.sum())
    torch.testing.assert_close(rebalanced_cross_entropy(logits, target, reduction="mean"), per_pixel.mean())


def test_eq2_sums_over_pixels_and_averages_over_images() -> None:
    # Zhang's Eq. 2 is a sum over (h, w): an image of 2 pixels weighs twice one of 1 pixel. Averaging over
    # pixels (the old behaviour) would give the same value for a batch of two copies and for one image.
    target = _two_pixel_targets().repeat(3, 1, 1, 1)
    logits = torch.randn(3, Q, 1, 2, generator=torch.Generator().manual_seed(4))
    per_image = -(target * torch.log_softmax(logits, 1)).sum(dim=(1, 2, 3))
    torch.testing.assert_close(rebalanced_cross_entropy(logits, target), per_image.mean())
    with pytest.raises(ValueError, match="reduction"):
        rebalanced_cross_entropy(logits, target, reduction="none")


def test_a_rare_bin_pixel_contributes_more() -> None:
    # A prior where bin 0 is common and bin 200 rare: the rare pixel's error costs more.
    prior = torch.full((Q,), 1e-4, dtype=torch.float64)
    prior[0] = 1.0
    w = rebalance_weights(prior, 0.5).float()
    assert w[200] > 10 * w[0]
    target = _two_pixel_targets()
    logits = torch.zeros(1, Q, 1, 2, requires_grad=True)  # equally wrong on both pixels
    rebalanced_cross_entropy(logits, target, w).backward()
    g = logits.grad.abs().sum(1).flatten()
    assert g[1] > 10 * g[0]
    # λ = 1: no rebalancing, both pixels count the same
    logits.grad = None
    rebalanced_cross_entropy(logits, target, rebalance_weights(prior, 1.0).float()).backward()
    g = logits.grad.abs().sum(1).flatten()
    torch.testing.assert_close(g[0], g[1])


def test_minimised_by_the_target_distribution() -> None:
    target = _two_pixel_targets()
    best = rebalanced_cross_entropy(target.clamp_min(1e-12).log(), target)
    for seed in range(3):
        other = torch.randn(1, Q, 1, 2, generator=torch.Generator().manual_seed(seed))
        assert rebalanced_cross_entropy(other, target) > best
    with pytest.raises(ValueError, match="differ"):
        rebalanced_cross_entropy(torch.zeros(1, Q, 2, 2), target)


def test_every_memory_layout_gives_the_same_loss_and_gradient() -> None:
    g = torch.Generator().manual_seed(5)
    ab = torch.randn(3, 2, 4, 5, generator=g) * 40
    target = soft_encode_ab(ab)
    # the targets come pixel-major (channels-last), with no transposing copy of their bins
    assert target.shape == (3, Q, 4, 5) and target.is_contiguous(memory_format=torch.channels_last)
    logits = torch.randn(3, Q, 4, 5, generator=g)
    weights = torch.rand(Q, generator=g) + 0.5
    reference = -(weights[target.argmax(1)] * (target * torch.log_softmax(logits, 1)).sum(1)).sum(dim=(1, 2)).mean()
    results = []
    for logits_layout in (torch.contiguous_format, torch.channels_last):
        for target_layout in (torch.contiguous_format, torch.channels_last):
            x = logits.clone(memory_format=logits_layout).requires_grad_(True)
            loss = rebalanced_cross_entropy(x, target.contiguous(memory_format=target_layout), weights)
            loss.backward()
            results.append((loss.detach(), x.grad))
    for loss, grad in results:
        torch.testing.assert_close(loss, reference)
        torch.testing.assert_close(grad, results[0][1])
