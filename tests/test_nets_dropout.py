"""Dropout draws PyTorch's own masks (the same bits, the same generator state after), faster where it can."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fewcolor.nets import dropout as dropout_module
from fewcolor.nets.dropout import Dropout, bernoulli_draws_serially


@pytest.mark.parametrize(("p", "shape"), [(0.5, (16, 64, 16, 16)), (0.3, (3, 7, 5)), (0.9, (1000,))])
def test_masks_outputs_and_generator_state_equal_nn_dropouts(p: float, shape: tuple[int, ...]) -> None:
    x = torch.randn(shape)
    results = []
    for layer in (Dropout(p), nn.Dropout(p)):
        torch.manual_seed(7)
        results.append((layer(x), torch.rand(4)))  # the next draw shows the generator state after
    (y, after), (y_ref, after_ref) = results
    assert torch.equal(y, y_ref) and torch.equal(after, after_ref)
    assert 0 < (y == 0).float().mean() < 1


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


def test_under_torch_compile_nn_dropouts_kernel_runs(monkeypatch) -> None:
    monkeypatch.setattr(dropout_module, "bernoulli_draws_serially", lambda: True)
    monkeypatch.setattr(torch, "rand", lambda *a, **k: (_ for _ in ()).throw(AssertionError("rand drew")))
    with pytest.raises(AssertionError, match="rand drew"):
        Dropout(0.5)(torch.randn(8))
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    assert Dropout(0.5)(torch.randn(8)).shape == (8,)
