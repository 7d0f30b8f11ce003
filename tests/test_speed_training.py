"""fewcolor.bench.speed.gemm and .training on tiny problems: the rows are consistent measurements."""

from __future__ import annotations

import types
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


def test_methods_take_turns_and_the_ratio_divides_each_best_step_by_the_best_peak(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    turns: list[str] = []
    seconds = {"unet": iter([0.5, 0.4, 0.2, 0.3]), "cic": iter([0.3, 0.4, 0.5, 0.6])}

    class FakeTimings:
        """A method whose step takes the next of its ``seconds`` at each turn."""

        def __init__(self, name: str, data: Path) -> None:
            self.name, self.flops, self.fp32 = name, {"unet": 8e9, "cic": 6e9}[name], []

        def sample(self, steps: int) -> None:
            turns.append(self.name)
            self.fp32.append(next(seconds[self.name]))

        def rows(self) -> list:
            return []

    peaks = iter([50.0, 80.0, 60.0, 70.0, 40.0])  # before the rounds, then after each of the four
    monkeypatch.setattr(training, "METHODS", ("unet", "cic"))
    monkeypatch.setattr(training, "gemm_gflops", lambda *a, **k: next(peaks))
    monkeypatch.setattr(training, "_Timings", FakeTimings)
    monkeypatch.setattr(training, "MIN_SECONDS", 0.0)  # the fake steps take no time: the four rounds' minimum
    rows = {r.name: r for r in training.measure(quick=False)}
    assert turns == ["unet", "cic"] * 4  # spread over the same span of time, not one after the other
    assert rows["fp32 GEMM peak used"].value == 80.0
    # unet's best step came in the third round: 8 GFLOP / 0.2 s = 40 GFLOP/s over 80
    assert rows["unet / GEMM peak"].value == pytest.approx(0.5) and rows["unet / GEMM peak"].target == 0.6
    assert rows["cic / GEMM peak"].value == pytest.approx(0.25)  # 6 GFLOP / 0.3 s = 20 GFLOP/s


def test_rounds_go_on_until_the_minimum_time_has_passed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    turns: list[int] = []

    class FakeTimings:
        def __init__(self, name: str, data: Path) -> None:
            self.name, self.flops, self.fp32 = name, 1e9, []

        def sample(self, steps: int) -> None:
            turns.append(steps)
            self.fp32.append(1.0)

        def rows(self) -> list:
            return []

    clock = iter(range(0, 10_000, 30))  # every look at the clock: 30 s later
    monkeypatch.setattr(training, "METHODS", ("unet",))
    monkeypatch.setattr(training, "gemm_gflops", lambda *a, **k: 100.0)
    monkeypatch.setattr(training, "_Timings", FakeTimings)
    monkeypatch.setattr(training, "MIN_ROUNDS", 1)
    monkeypatch.setattr(training, "MIN_SECONDS", 100.0)
    monkeypatch.setattr(training, "time", types.SimpleNamespace(perf_counter=lambda: float(next(clock))))
    training.measure(quick=False)
    assert len(turns) == 3 and set(turns) == {training.STEPS_PER_ROUND}  # 30, 60, 90 s < 100: a round each
    monkeypatch.setattr(training, "MIN_ROUNDS", 5)
    monkeypatch.setattr(training, "MIN_SECONDS", 0.0)
    turns.clear()
    training.measure(quick=False)
    assert len(turns) == 5  # the minimum number of rounds, though no time is asked for
