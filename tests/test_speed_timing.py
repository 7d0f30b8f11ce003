"""speed.timing: each call timed alone after untimed warm-up calls; the median of those times."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from fewcolor.bench.speed import timing


class _Clock:
    """A fake ``perf_counter`` that moves only when the timed function says how long it took."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_call_seconds_times_each_call_after_the_warm_up(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock()
    monkeypatch.setattr(timing, "time", SimpleNamespace(perf_counter=clock))
    durations = iter([100.0, 7.0, 5.0, 1.0, 3.0])  # the first call is the warm-up: never counted
    calls: list[float] = []

    def fn() -> None:
        calls.append(clock.now)
        clock.now += next(durations)

    assert timing.call_seconds(fn, 4) == [7.0, 5.0, 1.0, 3.0]
    assert len(calls) == 5
    durations = iter([2.0, 4.0])
    assert timing.call_seconds(fn, 2, warmup=0) == [2.0, 4.0]


def test_median_seconds_is_the_median_of_the_timed_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock()
    monkeypatch.setattr(timing, "time", SimpleNamespace(perf_counter=clock))
    durations = iter([50.0, 5.0, 1.0, 3.0])

    def fn() -> None:
        clock.now += next(durations)

    assert timing.median_seconds(fn, 3) == 3.0
