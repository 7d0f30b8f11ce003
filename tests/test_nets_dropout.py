"""Dropout draws its masks faster where PyTorch draws serially: PyTorch's own bits at p != 0.5, fair coins
from random bits at p = 0.5."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fewcolor.nets import dropout as dropout_module
from fewcolor.nets.dropout import Dropout, bernoulli_draws_serially, fair_coin_mask


@pytest.mark.parametrize(("p", "shape"), [(0.3, (3, 7, 5)), (0.9, (1000,)), (0.25, (16, 64, 16, 16))])
def test_masks_outputs_and_generator_state_equal_nn_dropouts_off_one_half(p: float, shape: tuple[int, ...]) -> None:
    x = torch.randn(shape)
    results = []
    for layer in (Dropout(p), nn.Dropout(p)):
        torch.manual_seed(7)
        results.append((layer(x), torch.rand(4)))  # the next draw shows the generator state after
    (y, after), (y_ref, after_ref) = results
    assert torch.equal(y, y_ref) and torch.equal(after, after_ref)
    assert 0 < (y == 0).float().mean() < 1


@pytest.fixture
def serial_draws(monkeypatch) -> None:
    """Take the fast draws whatever this CPU is (on Intel with MKL the layer keeps nn.Dropout's kernel)."""
    monkeypatch.setattr(dropout_module, "bernoulli_draws_serially", lambda: True)


def test_one_half_keeps_each_element_with_probability_one_half(serial_draws) -> None:
    x = torch.rand(1 << 20) + 1
    torch.manual_seed(3)
    y = Dropout(0.5)(x)
    kept = y != 0
    assert torch.equal(y[kept], 2 * x[kept])  # survivors scaled by 1 / keep
    # 2**20 fair coins: the kept share is within 0.005 of 1/2 (10 standard deviations); so is each of a
    # byte's eight bits (every bit of a draw is used) and the pairs of neighbours (no correlation)
    assert abs(kept.float().mean() - 0.5) < 0.005
    for bit in range(8):
        assert abs(kept[bit::8].float().mean() - 0.5) < 0.01
    assert abs((kept[1:] & kept[:-1]).float().mean() - 0.25) < 0.005
    torch.manual_seed(3)
    assert torch.equal(Dropout(0.5)(x), y)  # the seed fixes the mask
    assert not torch.equal(Dropout(0.5)(x), y)  # and the generator moved on


def test_fair_coin_masks_of_any_size_and_their_gradient(serial_draws) -> None:
    assert fair_coin_mask((3, 7, 5)).shape == (3, 7, 5)  # 105 elements: not a multiple of eight
    torch.manual_seed(0)
    draws = torch.empty(2, dtype=torch.uint8).random_()
    torch.manual_seed(0)
    mask = fair_coin_mask((13,))
    assert mask.tolist() == [bool(int(draws[i // 8]) >> (i % 8) & 1) for i in range(13)]
    x = torch.randn(4, 9, requires_grad=True)
    y = Dropout(0.5)(x)
    y.sum().backward()
    assert torch.equal(x.grad, (y != 0).float() * 2)


def test_eval_other_dtypes_and_p_zero_are_nn_dropouts() -> None:
    x = torch.randn(4, 8)
    assert torch.equal(Dropout(0.5).eval()(x), x)
    assert torch.equal(Dropout(0.0)(x), x)
    torch.manual_seed(1)
    y = Dropout(0.5)(x.double())
    torch.manual_seed(1)
    assert torch.equal(y, nn.Dropout(0.5)(x.double()))


@pytest.mark.parametrize(("mkl", "vendor", "serial"), [
    (True, "GenuineIntel", False),  # PyTorch's MKL branch: other masks, so nn.Dropout's kernel stays
    (True, "AuthenticAMD", True),
    (True, "", False),  # unknown vendor: keep nn.Dropout's kernel
    (False, "GenuineIntel", True),
])
def test_the_serial_draw_is_assumed_only_where_pytorch_draws_serially(mkl, vendor, serial, monkeypatch) -> None:
    monkeypatch.setattr(torch.backends.mkl, "is_available", lambda: mkl)
    monkeypatch.setattr(dropout_module, "cpu_vendor", lambda: vendor)
    bernoulli_draws_serially.cache_clear()
    try:
        assert bernoulli_draws_serially() is serial
    finally:
        bernoulli_draws_serially.cache_clear()


@pytest.mark.parametrize(("p", "draw"), [(0.5, "fair_coin_mask"), (0.3, "rand")])
def test_under_torch_compile_nn_dropouts_kernel_runs(p, draw, serial_draws, monkeypatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("drew")

    monkeypatch.setattr(*((dropout_module, draw, refuse) if draw != "rand" else (torch, "rand", refuse)))
    with pytest.raises(AssertionError, match="drew"):
        Dropout(p)(torch.randn(8))
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    assert Dropout(p)(torch.randn(8)).shape == (8,)
