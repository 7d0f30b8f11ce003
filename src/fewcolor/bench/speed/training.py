"""Training throughput per method, as a fraction of the machine's GEMM peak (issue #18, item 2).

Each method is built at its ``cpu`` preset and trained on 64-px crops, batch 16, with the training
loop's own step (:class:`fewcolor.train.loop.TrainStep`) and batch path (``batch_indices``,
``collate_samples``) on a folder of synthetic images decoded once (``ImageFolderDataset(cache=True)``,
as ``fewcolor train`` does). The FLOPs of one step are counted with
:class:`torch.utils.flop_counter.FlopCounterMode` (convolutions and matrix products, forward and
backward); achieved FLOP/s = FLOPs per step / wall time per step, where the wall time covers the
whole loop iteration (drawing and collating the batch included), so data loading counts against
the ratio. The ratio divides by the fp32 GEMM peak measured in the same run.

``--precision auto`` is timed against fp32 on the same model, alternating steps so both see the same
machine load; the table gives the best time(auto) / the best time(fp32).
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode
from tqdm.auto import tqdm

from fewcolor.bench.speed import Row
from fewcolor.bench.speed.gemm import gemm_gflops
from fewcolor.bench.speed.synthetic import smooth_images
from fewcolor.bench.speed.timing import call_seconds
from fewcolor.data.folder import ImageFolderDataset
from fewcolor.hardware import resolve_precision
from fewcolor.io.image import write_rgb
from fewcolor.methods.registry import build_method
from fewcolor.train.allocator import retain_freed_memory
from fewcolor.train.loop import TrainStep, batch_indices, collate_samples, epoch_of, place_method, to_device

__all__ = ["METHODS", "TARGET_RATIO", "MethodSpeed", "measure", "measure_method", "synthetic_folder"]

METHODS = ("unet", "cgan", "cic", "iizuka", "memopainter", "base")
#: issue #18: achieved / GEMM peak at the cpu presets, fp32
TARGET_RATIO = {"unet": 0.6, "cgan": 0.6, "iizuka": 0.6, "cic": 0.6}
#: issue #18: time(--precision auto) / time(fp32)
TARGET_AUTO = 1.05
SIZE, BATCH = 64, 16
#: the full run's training rounds: each method times this many steps per round, and rounds go on until
#: both minimums are reached (about two and a half minutes on the project's 2-core machine)
STEPS_PER_ROUND, MIN_ROUNDS, MIN_SECONDS = 6, 4, 120.0
#: config overrides that keep the benchmark from writing caches under FEWCOLOR_HOME
_NO_CACHE = {"cic": {"prior_cache": False}}


def synthetic_folder(root: Path, n: int, seed: int = 0) -> Path:
    """``n`` smooth colour PNGs of 72×96 px in two class folders under ``root`` (labels for Iizuka)."""
    for i, img in enumerate(smooth_images(n, (72, 96), (4, 5), seed)):
        write_rgb(root / ("a" if i % 2 else "b") / f"{i:04d}.png", img)
    return root


class MethodSpeed:
    """One method ready to train on ``data``: its loop step, batches and FLOPs per step."""

    def __init__(self, name: str, data: Path, seed: int = 0) -> None:
        self.method = build_method(name, "cpu", {"image_size": SIZE, **_NO_CACHE.get(name, {})})
        self.dataset = ImageFolderDataset(data, transform=self.method.train_transform(SIZE), seed=seed, cache=True,
                                          scan_cache=False)
        self.device = torch.device("cpu")
        retain_freed_memory()  # as the training loop does on the CPU
        torch.manual_seed(seed)
        self.method.setup(self.dataset)
        place_method(self.method, self.device)
        self.method.train()
        optimizers = self.method.configure_optimizers()
        self.steps = {p: TrainStep(self.method, optimizers, resolve_precision(p, self.device).bf16, self.device)
                      for p in ("fp32", "auto")}
        self.seed, self.step = seed, 0

    def batch(self) -> dict[str, Any]:
        n = len(self.dataset)
        idx = batch_indices(n, self.step, BATCH, self.seed)
        return to_device(collate_samples(self.dataset, idx, epoch_of(n, self.step, BATCH)), self.device)

    def run(self, precision: str = "fp32") -> float:
        """Seconds of one loop iteration (batch + step) in ``precision``."""
        t = time.perf_counter()
        if self.steps[precision](self.batch(), self.step, 10**6) is None:
            raise RuntimeError(f"{self.method.name}: non-finite step during the speed benchmark")
        self.step += 1
        return time.perf_counter() - t

    def flops(self) -> int:
        """FLOPs of one loop step (forward + backward of every phase)."""
        with FlopCounterMode(display=False) as counter:
            self.run()
        return int(counter.get_total_flops())


class _Timings:
    """One method's timed loop iterations, gathered over the benchmark's rounds."""

    def __init__(self, name: str, data: Path) -> None:
        self.name = name
        self.bench = MethodSpeed(name, data)
        for precision in ("fp32", "auto"):  # warm-up: first decode of the images, allocator, oneDNN primitives
            self.bench.run(precision)
        self.flops = self.bench.flops()
        self.fp32: list[float] = []
        self.auto: list[float] = []

    def sample(self, steps: int) -> None:
        """``steps`` timed iterations of each precision, alternating so both see the same machine load."""
        self.bench.run()  # untimed: the caches held the previous method's model
        for _ in range(steps):
            self.fp32.append(self.bench.run("fp32"))
            self.auto.append(self.bench.run("auto"))

    def rows(self) -> list[Row]:
        """GFLOP/s (the best iteration), data share, auto / fp32."""
        data_s = min(call_seconds(self.bench.batch, 3, warmup=0))  # drawing and collating a batch: the data part
        seconds = min(self.fp32)
        note = (f"{self.flops / 1e9:.2f} GFLOP/step, {seconds * 1e3:.0f} ms/step (best of {len(self.fp32)}; "
                f"median {statistics.median(self.fp32) * 1e3:.0f})")
        return [
            Row("training", f"{self.name} achieved", self.flops / seconds / 1e9, "GFLOP/s", note=note),
            Row("training", f"{self.name} data share", 100 * data_s / seconds, "% of step",
                note=f"{data_s * 1e3:.1f} ms to draw + collate a batch"),
            Row("training", f"{self.name} auto / fp32 time", min(self.auto) / seconds, "ratio", TARGET_AUTO,
                higher_is_better=False, note=f"auto = {resolve_precision('auto', self.bench.device).name}"),
        ]


def measure_method(name: str, data: Path, steps: int) -> tuple[float, list[Row]]:
    """FLOP/s of one method alone (best of ``steps`` loop iterations) and its rows: GFLOP/s, data share, auto/fp32."""
    timings = _Timings(name, data)
    timings.sample(steps)
    return timings.flops / min(timings.fp32), timings.rows()


def measure(quick: bool) -> list[Row]:
    """Every method of :data:`METHODS` (quick: fewer timed steps, a smaller peak measurement).

    The methods take turns: rounds in which each method times a few steps, with the fp32 GEMM peak
    measured before the first round and after each, until at least :data:`MIN_ROUNDS` rounds and
    :data:`MIN_SECONDS` have passed (quick: one round). A method's figure is its best step over all
    rounds and the ratio divides by the best peak over all measurements, so both sides are the best the
    machine gave over the same span of time. Why a span of minutes: on the project's machine every
    training step ran ~15 % slower for phases of 10–60 s while the GEMM peak lost 2–3 % (docs/PERFORMANCE.md,
    2026-12-05); measured one after the other in a few seconds each, the methods that fell in such a
    phase read ~15 % low.
    """
    n, repeats, steps = (1024, 2, 3) if quick else (2048, 3, STEPS_PER_ROUND)
    min_rounds, min_seconds = (1, 0.0) if quick else (MIN_ROUNDS, MIN_SECONDS)
    peaks = [gemm_gflops(n, torch.float32, repeats)]
    with tempfile.TemporaryDirectory(prefix="fewcolor-speed-") as tmp:
        data = synthetic_folder(Path(tmp), 2 * BATCH if quick else 8 * BATCH)
        timings = [_Timings(name, data) for name in tqdm(METHODS, desc="training speed: set-up", unit="method",
                                                           leave=False)]
        start, rounds = time.perf_counter(), 0
        with tqdm(desc="training speed", total=min_rounds, unit="round", leave=False) as bar:
            while rounds < min_rounds or time.perf_counter() - start < min_seconds:
                for method in timings:
                    method.sample(steps)
                peaks.append(gemm_gflops(n, torch.float32, repeats))
                rounds += 1
                if rounds == 1:  # the first round's length tells how many the minimum time takes
                    bar.total = max(min_rounds, math.ceil(min_seconds / (time.perf_counter() - start)))
                bar.total = max(bar.total, rounds)
                bar.update()
    peak = max(peaks)
    ratios = [Row("training", f"{t.name} / GEMM peak", t.flops / min(t.fp32) / 1e9 / peak, "ratio",
                  TARGET_RATIO.get(t.name)) for t in timings]
    note = f"best of {len(peaks)} measurements of an {n}x{n}x{n} product (torch.mm or 1x1 conv), between the rounds"
    rows = [row for t in timings for row in t.rows()]
    return [Row("training", "fp32 GEMM peak used", peak, "GFLOP/s", note=note), *ratios, *rows]
