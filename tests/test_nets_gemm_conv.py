"""Convolutions of tiny maps as matrix products: the nn layers' numbers, their parameters, their fallbacks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fewcolor.nets.gemm_conv import GemmConv2d, GemmConvTranspose2d, unfold_by_view
from fewcolor.nets.unet import UNetGenerator

CASES = [  # (class, its nn parent, input side h×w, bias, output channels)
    (GemmConv2d, nn.Conv2d, (2, 2), True, 5),
    (GemmConv2d, nn.Conv2d, (2, 2), False, 5),
    (GemmConv2d, nn.Conv2d, (3, 3), True, 5),  # one output pixel that not every tap reaches
    (GemmConvTranspose2d, nn.ConvTranspose2d, (1, 1), True, 5),
    (GemmConvTranspose2d, nn.ConvTranspose2d, (1, 1), False, 5),
    (GemmConvTranspose2d, nn.ConvTranspose2d, (2, 2), False, 5),
    (GemmConvTranspose2d, nn.ConvTranspose2d, (1, 3), True, 5),
    (GemmConvTranspose2d, nn.ConvTranspose2d, (8, 8), True, 2),  # few output channels: 1×1 conv + fold
    (GemmConvTranspose2d, nn.ConvTranspose2d, (6, 9), False, 1),
]


def _pair(cls: type[nn.Module], parent: type[nn.Module], bias: bool, cout: int = 5) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    fast = cls(6, cout, 4, stride=2, padding=1, bias=bias)
    ref = parent(6, cout, 4, stride=2, padding=1, bias=bias)
    ref.load_state_dict(fast.state_dict())
    return fast, ref


def _forward_backward(layer: nn.Module, x: torch.Tensor, grad: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    x = x.detach().clone().requires_grad_()
    y = layer(x)
    y.backward(torch.ones_like(y) if grad is None else grad)
    return y, [x.grad, *(p.grad for p in layer.parameters())]


@pytest.mark.parametrize(("cls", "parent", "side", "bias", "cout"), CASES)
def test_matrix_forms_give_the_parent_layers_outputs_and_gradients(cls, parent, side, bias, cout, monkeypatch) -> None:
    fast, ref = _pair(cls, parent, bias, cout)
    x = torch.randn(3, 6, *side)
    y_ref, g_ref = _forward_backward(ref, x, grad := torch.randn_like(ref(x)))

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the parent's kernel ran")

    monkeypatch.setattr(parent, "forward", refuse)  # the matrix form must answer by itself
    y, g = _forward_backward(fast, x, grad)
    assert y.shape == y_ref.shape and y.is_contiguous()
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-5)
    for a, b in zip(g, g_ref, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert list(fast.state_dict()) == list(ref.state_dict())


@pytest.mark.parametrize(("cls", "parent"), [(GemmConv2d, nn.Conv2d), (GemmConvTranspose2d, nn.ConvTranspose2d)])
def test_other_inputs_keep_the_parents_kernel_bit_for_bit(cls, parent) -> None:
    fast, ref = _pair(cls, parent, True)
    big = torch.randn(2, 6, 4, 4)  # 4×4: more than GEMM_MAX_PIXELS, a 2×2 output
    torch.testing.assert_close(fast(big), ref(big), atol=0, rtol=0)
    small = torch.randn(2, 6, 2, 2) if cls is GemmConv2d else torch.randn(2, 6, 1, 1)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # bf16 autocast: the parent's bf16 kernel
        torch.testing.assert_close(fast(small), ref(small), atol=0, rtol=0)
    fast_cl = fast.to(memory_format=torch.channels_last)
    ref_cl = ref.to(memory_format=torch.channels_last)
    small_cl = torch.randn(2, 6, 2, 2).to(memory_format=torch.channels_last)
    torch.testing.assert_close(fast_cl(small_cl), ref_cl(small_cl), atol=0, rtol=0)


@pytest.mark.filterwarnings("ignore:`torch.jit.trace")
@pytest.mark.parametrize(("cls", "parent", "side"),
                         [(GemmConv2d, nn.Conv2d, 2), (GemmConvTranspose2d, nn.ConvTranspose2d, 1)])
def test_a_trace_keeps_the_convolution_so_it_holds_at_other_sizes(cls, parent, side) -> None:
    fast, ref = _pair(cls, parent, True)
    traced = torch.jit.trace(fast, torch.randn(2, 6, side, side))  # ONNX export traces like this
    other = torch.randn(2, 6, 4 * side, 4 * side)
    torch.testing.assert_close(traced(other), ref(other), atol=1e-5, rtol=1e-5)


def _reference_unet(net: UNetGenerator) -> UNetGenerator:
    """``net`` with the plain nn layers the U-Net had before: oneDNN convolutions, ReLU not in place (its
    Dropout stays: the same masks for one seed; tests/test_nets_dropout.py tests them)."""
    for m in net.modules():
        if type(m) is GemmConv2d:
            m.__class__ = nn.Conv2d
        elif type(m) is GemmConvTranspose2d:
            m.__class__ = nn.ConvTranspose2d
        elif isinstance(m, nn.ReLU):
            m.inplace = False
    return net


def test_unet_trains_as_with_the_plain_nn_layers() -> None:
    """The cpu preset's shape (depth 6: 1×1 and 2×2 inner maps), dropout on: same outputs and gradients."""
    torch.manual_seed(1)
    fast = UNetGenerator(base=4, depth=6, dropout=0.5)
    ref = _reference_unet(UNetGenerator(base=4, depth=6, dropout=0.5))
    ref.load_state_dict(fast.state_dict())
    x = torch.rand(3, 1, 64, 64) * 2 - 1
    outs, grads = [], []
    for net in (fast, ref):
        torch.manual_seed(2)  # the same dropout masks
        y = net(x)
        (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        outs.append(y)
        grads.append([p.grad for p in net.parameters()])
    torch.testing.assert_close(outs[0], outs[1], atol=1e-5, rtol=1e-5)
    for a, b in zip(*grads, strict=True):  # rounding only: ~5e-7 of each gradient's norm (up to 1e-4 in one element)
        assert (a - b).norm() <= 1e-5 * b.norm()
    assert any(isinstance(m, GemmConvTranspose2d) for m in fast.modules())


def test_under_torch_compile_the_parents_kernel_runs(monkeypatch) -> None:
    fast, _ = _pair(GemmConvTranspose2d, nn.ConvTranspose2d, False)
    sentinel = torch.zeros(1)
    monkeypatch.setattr(nn.ConvTranspose2d, "forward", lambda self, x, output_size=None: sentinel)
    assert fast(torch.randn(2, 6, 1, 1)) is not sentinel
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    assert fast(torch.randn(2, 6, 1, 1)) is sentinel


@pytest.mark.parametrize(("shape", "kernel", "padding", "stride"), [
    ((2, 2, 8, 8), (4, 4), (1, 1), (2, 2)),  # the U-Net output layer's geometry
    ((1, 3, 7, 5), (3, 2), (0, 1), (2, 1)),  # odd sizes, unequal kernel, padding and stride
    ((3, 1, 4, 4), (4, 4), (2, 2), (3, 3)),
])
def test_unfold_by_view_equals_unfold(shape, kernel, padding, stride) -> None:
    x = torch.randn(shape)
    assert torch.equal(unfold_by_view(x, kernel, padding, stride), F.unfold(x, kernel, padding=padding, stride=stride))


@pytest.mark.parametrize(("kernel", "stride", "padding", "side"), [
    (3, 1, 0, (5, 5)), (5, 2, 2, (4, 6)), ((3, 4), (1, 2), (1, 0), (3, 5)),
])
def test_few_output_channels_fold_for_other_geometries(kernel, stride, padding, side, monkeypatch) -> None:
    torch.manual_seed(0)
    fast = GemmConvTranspose2d(6, 2, kernel, stride=stride, padding=padding)
    ref = nn.ConvTranspose2d(6, 2, kernel, stride=stride, padding=padding)
    ref.load_state_dict(fast.state_dict())
    x = torch.randn(3, 6, *side)
    y_ref, g_ref = _forward_backward(ref, x, grad := torch.randn_like(ref(x)))
    monkeypatch.setattr(nn.ConvTranspose2d, "forward", lambda *a, **k: (_ for _ in ()).throw(AssertionError("parent")))
    y, g = _forward_backward(fast, x, grad)
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-5)
    for a, b in zip(g, g_ref, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
