"""The inference speed part measures what its rows say (tiny counts here; the benchmark runs the real ones)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from fewcolor.bench.speed import part
from fewcolor.bench.speed.inference import COLORIZE_TARGET, EVAL_TARGET, measure_colorize, measure_evaluate
from fewcolor.pipeline import Colorizer

pytestmark = pytest.mark.weights


def test_part_is_found() -> None:
    assert part("inference") is not None


def test_evaluate_and_colorize_rows(tmp_path: Path, lpips_weights) -> None:
    colorizer = Colorizer.pretrained(device="cpu")
    row = measure_evaluate(colorizer, 3, tmp_path / "eval")
    assert row.unit == "img/s" and row.target == EVAL_TARGET and row.higher_is_better
    assert math.isfinite(row.value) and row.value > 0 and row.note.startswith("3 pairs")
    assert len(list((tmp_path / "eval" / "pred").iterdir())) == 3
    rows = measure_colorize(colorizer, 1, tmp_path / "colorize")
    total, parts = rows[0], rows[1:]
    assert total.target == COLORIZE_TARGET and total.higher_is_better is False
    assert [r.unit for r in rows] == ["s"] * 4 and all(0 < r.value < 60 for r in rows)
    assert (tmp_path / "colorize" / "photo_colorized.png").is_file()
    assert [r.name.split("of which ")[1] for r in parts] == ["network", "Lab at full size", "PNG write"]
