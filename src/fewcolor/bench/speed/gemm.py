"""The machine's matrix-multiply peak: the yardstick the training throughput is divided by.

Large square products (2·n³ FLOPs each) on every thread PyTorch uses, best of several repeats after a
warm-up. On a CPU the same product is also run as a 1×1 convolution, and the faster of the two counts:
PyTorch's CPU wheel has two GEMM engines, MKL behind ``torch.mm`` and oneDNN behind convolutions, and
on an AMD CPU oneDNN measured ~1.4× MKL (2026-12-02: 112 vs 80 GFLOP/s for n = 2048 under the same load).
Dividing training FLOP/s by MKL's rate alone gave ratios above 1 for conv-only networks. fp32 always;
bf16 only where the hardware computes it natively (:func:`fewcolor.hardware.cpu_has_native_bf16`),
since an emulated bf16 product says nothing about the machine's peak. On a CUDA machine the GPU's fp32
(and bf16) peak is measured too.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from fewcolor.bench.speed import Row
from fewcolor.bench.speed.timing import call_seconds
from fewcolor.hardware import cpu_has_native_bf16

__all__ = ["gemm_gflops", "measure", "mm_as_conv"]


def mm_as_conv(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` for n×n matrices (n a multiple of 64) computed by oneDNN as a 1×1 convolution: n input
    channels, n output channels, n = (n/64)·64 pixels — the same 2·n³ multiply-adds as ``torch.mm``."""
    n = a.shape[0]
    x, w = a.t().reshape(1, n, n // 64, 64), b.t().reshape(n, n, 1, 1)
    return torch.nn.functional.conv2d(x, w).reshape(n, n).t()


def _then(fn: Callable[[], object], sync: Callable[[], None]) -> Callable[[], None]:
    """``fn`` followed by ``sync`` (a CUDA product is timed once it has finished, not when it was queued)."""
    def both() -> None:
        fn()
        sync()
    return both


def gemm_gflops(n: int, dtype: torch.dtype = torch.float32, repeats: int = 5,
                device: str | torch.device = "cpu") -> float:
    """Best GFLOP/s of ``repeats`` products of two n×n matrices of ``dtype`` on ``device`` (after one warm-up),
    over ``torch.mm`` and, on a CPU with n a multiple of 64, the same product as a 1×1 convolution."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=g).to(device=device, dtype=dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    on_cuda = torch.device(device).type == "cuda"
    sync: Callable[[], None] = torch.cuda.synchronize if on_cuda else (lambda: None)
    products: list[Callable[[], object]] = [lambda: torch.mm(a, b, out=out)]
    if not on_cuda and n % 64 == 0:
        products.append(lambda: mm_as_conv(a, b))
    best = min(min(call_seconds(_then(product, sync), repeats)) for product in products)
    return 2 * n**3 / best / 1e9


def measure(quick: bool) -> list[Row]:
    """fp32 (and native bf16) GEMM peak of the CPU, and of a CUDA GPU when present."""
    n, repeats = (1024, 3) if quick else (2048, 5)
    threads = torch.get_num_threads()
    note = f"{n}x{n}x{n} product, best of torch.mm (MKL) and a 1x1 conv (oneDNN), {repeats} repeats, {threads} threads"
    rows = [Row("gemm", "CPU fp32 peak", gemm_gflops(n, torch.float32, repeats), "GFLOP/s", note=note)]
    if cpu_has_native_bf16():
        rows.append(Row("gemm", "CPU bf16 peak", gemm_gflops(n, torch.bfloat16, repeats), "GFLOP/s", note=note))
    if torch.cuda.is_available():
        n_gpu = 4096 if quick else 8192
        gpu_note = f"{n_gpu}x{n_gpu} torch.mm, best of {repeats}, {torch.cuda.get_device_name()}"
        rows.append(Row("gemm", "CUDA fp32 peak", gemm_gflops(n_gpu, torch.float32, repeats, "cuda"), "GFLOP/s",
                        note=gpu_note))
        if torch.cuda.is_bf16_supported():
            rows.append(Row("gemm", "CUDA bf16 peak", gemm_gflops(n_gpu, torch.bfloat16, repeats, "cuda"),
                            "GFLOP/s", note=gpu_note))
    return rows
