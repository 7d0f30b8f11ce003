"""Wall-clock timing of a callable, shared by the speed parts: each call timed alone with
:func:`time.perf_counter`, after untimed warm-up calls (first-call allocations, lazy imports and index
builds, oneDNN kernel choice)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def call_seconds(fn: Callable[[], object], runs: int, warmup: int = 1) -> list[float]:
    """Seconds of each of ``runs`` calls of ``fn``, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def median_seconds(fn: Callable[[], object], runs: int) -> float:
    """Median seconds of ``runs`` calls of ``fn`` after one warm-up call."""
    return statistics.median(call_seconds(fn, runs))
