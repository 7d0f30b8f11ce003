"""The machine's matrix-multiply peak: the yardstick the training throughput is divided by.

Large square ``torch.mm`` products (2·n³ FLOPs each) on every thread PyTorch uses, best of several
repeats after a warm-up. fp32 always; bf16 only where the hardware computes it natively
(:func:`fewcolor.train.hardware.cpu_has_native_bf16`), since an emulated bf16 product says nothing
about the machine's peak. On a CUDA machine the GPU's fp32 (and bf16) peak is measured too.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from fewcolor.bench.speed import Row
from fewcolor.train.hardware import cpu_has_native_bf16

__all__ = ["gemm_gflops", "measure"]


def gemm_gflops(n: int, dtype: torch.dtype = torch.float32, repeats: int = 5,
                device: str | torch.device = "cpu") -> float:
    """Best GFLOP/s of ``repeats`` products of two n×n matrices of ``dtype`` on ``device`` (after one warm-up)."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=g).to(device=device, dtype=dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    sync: Callable[[], None] = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    torch.mm(a, b, out=out)
    sync()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b, out=out)
        sync()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def measure(quick: bool) -> list[Row]:
    """fp32 (and native bf16) GEMM peak of the CPU, and of a CUDA GPU when present."""
    n, repeats = (1024, 3) if quick else (2048, 5)
    threads = torch.get_num_threads()
    note = f"{n}x{n} torch.mm, best of {repeats}, {threads} threads"
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
