"""Convolutions of tiny feature maps or few output channels as matrix products (a speed detail: same numbers).

``nn.Conv2d`` and ``nn.ConvTranspose2d`` run oneDNN on the CPU, which is slow where a U-Net's inner
levels are: a 4×4 kernel over 1×1 and 2×2 maps with 256–512 channels (docs/PERFORMANCE.md: in the
unet cpu preset the 512→256 transposed convolution of 2×2 maps, forward + backward, took longer than
the next one, 512→128 of 4×4 maps, which does twice the arithmetic). There the layers compute as
matrix products, whose backward is again matrix products:

- a convolution with a 1×1 output is one product with the kernel taps that meet the input (the
  others multiply zero padding);
- a transposed convolution of a 1×1 input likewise, with the taps that land inside the output;
- a transposed convolution of an input of at most :data:`GEMM_MAX_PIXELS` pixels is one product
  followed by ``fold`` (the col2im form of the operation);
- a transposed convolution of a larger input to at most :data:`FOLD_MAX_OUT_CHANNELS` channels (the
  U-Net's 64→2 output layer of 32×32 maps) is a 1×1 convolution to ``out·kh·kw`` channels followed by
  ``fold``: forward + backward 4.1 → 2.9 ms in the unet cpu preset (docs/PERFORMANCE.md).

The layers are the ``nn`` classes with another ``forward``: the same parameters and state dict, the
same results up to float rounding (summation order; tested to 1e-5 against the parent's forward and
backward). Everything else keeps the parent's kernel: larger maps to more channels, devices other than the CPU,
dtypes other than fp32 (bf16 autocast included), channels-last tensors, groups, dilation, output
padding, non-zero padding modes, tracing (ONNX export: a traced graph must hold for every map size)
and ``torch.compile`` (its graph stays the plain layers').
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

#: transposed convolutions of inputs of at most this many pixels (2×2) take the product + ``fold``;
#: measured slower than oneDNN from 4×4 inputs on
GEMM_MAX_PIXELS = 4
#: transposed convolutions of larger inputs to at most this many channels (a colorizer's ab output layer)
#: take a 1×1 convolution + ``fold``: oneDNN's transposed-convolution kernel for 2 output channels ran at
#: ~25 GFLOP/s (docs/PERFORMANCE.md); measured slower than oneDNN for 32–256 output channels
FOLD_MAX_OUT_CHANNELS = 2


def _taps(weight: torch.Tensor, rows: range, cols: range) -> torch.Tensor:
    """``weight[:, :, rows, cols]`` as a ``(weight.shape[0], -1)`` matrix, gathered by ``index_select`` over the
    flattened kernel: its copy and its gradient's scatter ran 2.5× faster than a slice's (0.36 against 0.89 ms
    per 256×256×4×4 weight, forward + backward; docs/PERFORMANCE.md)."""
    kw = weight.shape[-1]
    flat = torch.tensor([r * kw + c for r in rows for c in cols], device=weight.device)
    return weight.reshape(-1, weight.shape[-2] * kw).index_select(1, flat).reshape(weight.shape[0], -1)


def unfold_by_view(x: torch.Tensor, kernel: tuple[int, int], padding: tuple[int, int],
                   stride: tuple[int, int]) -> torch.Tensor:
    """``F.unfold(x, kernel, padding=padding, stride=stride)`` for a 4-D ``x``: the zero-padded map read
    through one strided view and copied once, where ``F.unfold``'s im2col kernel walks channel by channel
    (0.18 against 0.44 ms for the U-Net output layer's 16×2×64×64 gradient; slower than im2col for many
    channels of tiny maps, so only :class:`_FoldFewChannels` uses it)."""
    (kh, kw), (ph, pw), (sh, sw) = kernel, padding, stride
    n, c, h, w = x.shape
    padded = F.pad(x, (pw, pw, ph, ph))
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    sn, sc, srow, scol = padded.stride()
    windows = padded.as_strided((n, c, kh, kw, oh, ow), (sn, sc, srow, scol, srow * sh, scol * sw))
    return windows.reshape(n, c * kh * kw, oh * ow)


class _FoldFewChannels(torch.autograd.Function):
    """``F.fold`` whose backward unfolds the gradient with :func:`unfold_by_view` (the transposed
    convolutions to few channels of :class:`GemmConvTranspose2d`)."""

    @staticmethod
    def forward(ctx: Any, cols: torch.Tensor, size: tuple[int, int], kernel: tuple[int, int],
                padding: tuple[int, int], stride: tuple[int, int]) -> torch.Tensor:
        ctx.geometry = kernel, padding, stride
        return F.fold(cols, size, kernel, padding=padding, stride=stride)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        return unfold_by_view(grad, *ctx.geometry), None, None, None, None


def _plain(layer: nn.Conv2d | nn.ConvTranspose2d, x: torch.Tensor) -> bool:
    """Whether ``x`` through ``layer`` is a case the matrix forms cover (see the module docstring)."""
    return (x.dim() == 4 and x.device.type == "cpu" and x.dtype == torch.float32
            and layer.weight.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")
            and not torch.jit.is_tracing() and not torch.compiler.is_compiling()
            and x.is_contiguous() and layer.weight.is_contiguous() and layer.groups == 1
            and layer.padding_mode == "zeros" and layer.dilation == (1, 1) and not any(layer.output_padding))


class GemmConv2d(nn.Conv2d):
    """``nn.Conv2d`` that computes a 1×1 output as one matrix product (see the module docstring)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.padding, str) or not _plain(self, x):  # padding "same"/"valid": the parent's
            return super().forward(x)
        h, w = x.shape[-2:]
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        one_pixel = (h + 2 * ph - kh) // sh == 0 and (w + 2 * pw - kw) // sw == 0
        if not (one_pixel and ph + h <= kh and pw + w <= kw):
            return super().forward(x)
        taps = _taps(self.weight, range(ph, ph + h), range(pw, pw + w))
        out = x.reshape(x.shape[0], -1) @ taps.t()
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(x.shape[0], self.out_channels, 1, 1)


class GemmConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` that computes tiny inputs, or outputs of few channels, as matrix products (see the
    module docstring)."""

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if output_size is not None or isinstance(self.padding, str) or not _plain(self, x):
            return super().forward(x, output_size)
        n, c, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        oh, ow = (h - 1) * sh - 2 * ph + kh, (w - 1) * sw - 2 * pw + kw
        if h * w > GEMM_MAX_PIXELS:
            if self.out_channels > FOLD_MAX_OUT_CHANNELS:
                return super().forward(x, output_size)
            # every input pixel's contributions at once: a 1×1 convolution to out·kh·kw channels, then fold
            taps = self.weight.reshape(c, -1).t().reshape(-1, c, 1, 1)
            out = _FoldFewChannels.apply(F.conv2d(x, taps).flatten(2), (oh, ow), self.kernel_size, self.padding,
                                         self.stride)
        elif h == w == 1:
            taps = _taps(self.weight, range(ph, ph + oh), range(pw, pw + ow))
            out = (x.reshape(n, c) @ taps).reshape(n, self.out_channels, oh, ow)
        else:
            rows = x.permute(0, 2, 3, 1).reshape(n * h * w, c) @ self.weight.reshape(c, -1)  # (n·h·w, out·kh·kw)
            out = F.fold(rows.reshape(n, h * w, -1).transpose(1, 2), (oh, ow), self.kernel_size,
                         padding=self.padding, stride=self.stride)
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1)
        return out
