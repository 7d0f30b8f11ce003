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
from fewcolor.train.loop import TrainStep, batch_indices, collate_samples, epoch_of, place_method, to_device

__all__ = ["METHODS", "TARGET_RATIO", "MethodSpeed", "measure", "measure_method", "synthetic_folder"]

METHODS = ("unet", "cgan", "cic", "iizuka", "memopainter", "base")
#: issue #18: achieved / GEMM peak at the cpu presets, fp32
TARGET_RATIO = {"unet": 0.6, "cgan": 0.6, "iizuka": 0.6, "cic": 0.6}
#: issue #18: time(--precision auto) / time(fp32)
TARGET_AUTO = 1.05
SIZE, BATCH = 64, 16
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


def measure_method(name: str, data: Path, steps: int) -> tuple[float, list[Row]]:
    """FLOP/s of one method (best of ``steps`` loop iterations) and its rows: GFLOP/s, data share, auto/fp32."""
    bench = MethodSpeed(name, data)
    for precision in ("fp32", "auto"):  # warm-up: first decode of the images, allocator, oneDNN primitives
        bench.run(precision)
    flops = bench.flops()
    fp32: list[float] = []
    auto: list[float] = []
    for _ in range(steps):  # alternate, so both precisions see the same machine load
        fp32.append(bench.run("fp32"))
        auto.append(bench.run("auto"))
    data_s = min(call_seconds(bench.batch, 3, warmup=0))  # drawing and collating a batch: the data part
    seconds = min(fp32)
    note = f"{flops / 1e9:.2f} GFLOP/step, {seconds * 1e3:.0f} ms/step (best of {steps})"
    return flops / seconds, [
        Row("training", f"{name} achieved", flops / seconds / 1e9, "GFLOP/s", note=note),
        Row("training", f"{name} data share", 100 * data_s / seconds, "% of step",
            note=f"{data_s * 1e3:.1f} ms to draw + collate a batch"),
        Row("training", f"{name} auto / fp32 time", min(auto) / min(fp32), "ratio", TARGET_AUTO,
            higher_is_better=False, note=f"auto = {resolve_precision('auto', bench.device).name}"),
    ]


def measure(quick: bool) -> list[Row]:
    """Every method of :data:`METHODS` (quick: fewer timed steps, a smaller peak measurement).

    The fp32 GEMM peak is measured before each method and after the last; the ratios divide by the
    best of those, so a moment of load on a shared machine does not inflate them.
    """
    # 24 full steps: the best of a few seconds per method, not of half a second that one burst of host load can cover
    n, repeats, steps = (1024, 2, 3) if quick else (2048, 3, 24)
    peaks = [gemm_gflops(n, torch.float32, repeats)]
    achieved: dict[str, float] = {}
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="fewcolor-speed-") as tmp:
        data = synthetic_folder(Path(tmp), 2 * BATCH if quick else 8 * BATCH)
        for name in tqdm(METHODS, desc="training speed", unit="method", leave=False):
            achieved[name], method_rows = measure_method(name, data, steps)
            rows += method_rows
            peaks.append(gemm_gflops(n, torch.float32, repeats))
    peak = max(peaks)
    ratios = [Row("training", f"{name} / GEMM peak", flops / 1e9 / peak, "ratio", TARGET_RATIO.get(name))
              for name, flops in achieved.items()]
    note = f"best of {len(peaks)} measurements of an {n}x{n}x{n} product (torch.mm or 1x1 conv), between the methods"
    return [Row("training", "fp32 GEMM peak used", peak, "GFLOP/s", note=note), *ratios, *rows]
