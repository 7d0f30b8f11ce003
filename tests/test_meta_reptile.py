"""Reptile idiom (fewcolor.meta.reptile): the outer-optimiser form equals the plain update."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fewcolor.meta.reptile import (
    apply_buffer_deltas_,
    buffer_deltas,
    meta_step_size,
    reptile_grad,
    reptile_update_,
)


def _pair(seed: int = 0) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.Linear(4, 3))
    fast = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.Linear(4, 3))
    with torch.no_grad():
        for b in fast.buffers():
            if b.is_floating_point():
                b.add_(torch.rand_like(b))
    return net, fast


def test_sgd_on_reptile_grad_is_exactly_the_plain_update() -> None:
    net, fast = _pair()
    theta = [p.detach().clone() for p in net.parameters()]
    tilde = [p.detach().clone() for p in fast.parameters()]
    lam = 1e-3
    reptile_grad(net.parameters(), fast.parameters())
    for p, a, b in zip(net.parameters(), theta, tilde, strict=True):
        assert torch.equal(p.grad, a - b)
    torch.optim.SGD(net.parameters(), lr=lam).step()
    for p, a, b in zip(net.parameters(), theta, tilde, strict=True):
        # SGD computes θ − λ(θ − θ̃); compare with the paper's θ + λ(θ̃ − θ) up to float rounding
        assert torch.equal(p.detach(), a - lam * (a - b))
        torch.testing.assert_close(p.detach() - a, lam * (b - a), rtol=0, atol=1.2e-7)  # one float32 ulp at |θ|≈1
    plain, _ = _pair()
    reptile_update_(plain.parameters(), fast.parameters(), lam)
    for p, q in zip(plain.parameters(), net.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-8)


def test_accumulated_grad_is_the_mean_delta_of_a_meta_batch() -> None:
    net, fast1 = _pair(0)
    _, fast2 = _pair(1)
    reptile_grad(net.parameters(), fast1.parameters(), scale=0.5)
    reptile_grad(net.parameters(), fast2.parameters(), scale=0.5, accumulate=True)
    for p, a, b in zip(net.parameters(), fast1.parameters(), fast2.parameters(), strict=True):
        torch.testing.assert_close(p.grad, p.detach() - (a.detach() + b.detach()) / 2)


def test_reptile_grad_rejects_mismatched_parameter_lists() -> None:
    net, fast = _pair()
    with pytest.raises(ValueError, match="fast parameters"):
        reptile_grad(net.parameters(), list(fast.parameters())[:-1])


def test_meta_step_size_constant_and_linear_anneal() -> None:
    assert meta_step_size(50, 100, 1e-3) == 1e-3
    assert meta_step_size(0, 100, 1.0, 0.0) == 1.0
    assert meta_step_size(25, 100, 1.0, 0.0) == pytest.approx(0.75)
    assert meta_step_size(100, 100, 1.0, 0.2) == pytest.approx(0.2)
    assert meta_step_size(500, 100, 1.0, 0.2) == pytest.approx(0.2)  # held at the end value


def test_buffers_interpolate_but_counters_do_not() -> None:
    net, fast = _pair()
    before = {n: b.clone() for n, b in net.named_buffers()}
    deltas = buffer_deltas(net, fast)
    apply_buffer_deltas_(net, deltas, 0.25)
    fast_bufs = dict(fast.named_buffers())
    for n, b in net.named_buffers():
        if b.is_floating_point():
            torch.testing.assert_close(b, before[n] + 0.25 * (fast_bufs[n] - before[n]))
        else:
            assert torch.equal(b, before[n])
