"""fewcolor.bench.speed.gemm and .training on tiny problems: the rows are consistent measurements."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fewcolor.bench.speed import gemm, part, training


def test_gemm_peak_is_positive_and_rows_name_their_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    assert gemm.gemm_gflops(64, repeats=2) > 0
    monkeypatch.setattr(gemm, "gemm_gflops", lambda n, dtype=torch.float32, repeats=5, device="cpu": float(n))
    monkeypatch.setattr(gemm, "cpu_has_native_bf16", lambda: True)
    rows = {r.name: r for r in gemm.measure(quick=True) if not r.name.startswith("CUDA")}
    assert rows["CPU fp32 peak"].value == 1024 and "CPU bf16 peak" in rows and "1024x1024" in rows["CPU fp32 peak"].note
    assert part("gemm") is gemm.measure and part("training") is training.measure


def test_the_conv_engine_computes_the_same_product() -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(128, 128, generator=g), torch.randn(128, 128, generator=g)
    torch.testing.assert_close(gemm.mm_as_conv(a, b), a @ b, rtol=1e-4, atol=1e-3)


def test_training_rows_divide_counted_flops_by_the_peak(tmp_path: Path) -> None:
    data = training.synthetic_folder(tmp_path, 8)
    assert sorted(p.parent.name for p in data.rglob("*.png")) == ["a"] * 4 + ["b"] * 4
    bench = training.MethodSpeed("unet", data)
    assert bench.method.config.image_size == training.SIZE and len(bench.dataset) == 8
    flops = bench.flops()
    assert flops > 1e9  # a 6-level U-Net of width 32 on 16 images of 64² is GFLOPs, forward + backward
    flop_s, method_rows = training.measure_method("unet", data, steps=1)
    rows = {r.name: r for r in method_rows}
    assert rows["unet achieved"].value == pytest.approx(flop_s / 1e9)
    assert 0 < rows["unet data share"].value < 100
    assert rows["unet auto / fp32 time"].target == 1.05 and not rows["unet auto / fp32 time"].higher_is_better
    assert rows["unet auto / fp32 time"].value > 0


def test_training_ratio_divides_by_the_best_peak(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    peaks = iter([50.0, 80.0, 60.0])
    monkeypatch.setattr(training, "METHODS", ("unet", "cic"))
    monkeypatch.setattr(training, "gemm_gflops", lambda *a, **k: next(peaks))
    monkeypatch.setattr(training, "measure_method", lambda name, data, steps: (
        {"unet": 40e9, "cic": 20e9}[name], []))
    rows = {r.name: r for r in training.measure(quick=True)}
    assert rows["fp32 GEMM peak used"].value == 80.0
    assert rows["unet / GEMM peak"].value == pytest.approx(0.5) and rows["unet / GEMM peak"].target == 0.6
    assert rows["cic / GEMM peak"].value == pytest.approx(0.25)
