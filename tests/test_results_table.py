"""scripts/results_table.py: the table of saved benchmark summaries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fewcolor.bench.results import TABLE_METRICS
from helpers import load_script

BUDGET = {"train_images": 400, "adapt_steps": 2, "batch_size": 4, "max_episodes": 3, "max_queries": 5}


def _main():  # type: ignore[no-untyped-def]
    return load_script("results_table").main


def _summary(folder: Path, label: str, lpips: float, budget: dict = BUDGET) -> None:
    aggregate = {k: {"mean": 1.0} for k, _ in TABLE_METRICS}
    aggregate["lpips"] = {"mean": lpips, "ci95_low": lpips - 0.01, "ci95_high": lpips + 0.01}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{label}.json").write_text(json.dumps({
        "method": label, "preset": "cpu", "seeds": [0], "queries": 5, "adaptation": ["own"],
        "aggregate": aggregate, "budget": budget}))


def test_rows_in_the_order_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _summary(tmp_path, "grey", 0.2)
    _summary(tmp_path, "lut", 0.05)
    assert _main()([str(tmp_path), "lut", "grey"]) == 0
    out = capsys.readouterr().out
    assert "Budget: 400 training image-gradient" in out
    lut, grey = "| lut | cpu | 1 | 5 | own | 0.050 ± 0.010", "| grey | cpu | 1 | 5 | own | 0.200 ± 0.010"
    assert out.index(lut) < out.index(grey)


def test_a_missing_label_or_mixed_budgets_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _summary(tmp_path, "grey", 0.2)
    assert _main()([str(tmp_path), "grey", "cgan"]) == 2
    assert "cgan.json does not exist (labels there: grey)" in capsys.readouterr().err
    _summary(tmp_path, "lut", 0.05, {**BUDGET, "train_images": 800})
    assert _main()([str(tmp_path), "grey", "lut"]) == 2
    assert "different budgets" in capsys.readouterr().err


def test_an_fid_on_a_small_set_is_flagged() -> None:
    from fewcolor.bench.report import table_rows

    aggregate = {k: {"mean": 1.0} for k, _ in TABLE_METRICS}
    row = {"method": "m", "preset": None, "seeds": [0], "queries": 5, "adaptation": ["own"], "aggregate": aggregate}
    fids = [line.split(" | ")[6] for line in table_rows([{**row, "fid_set_images": 20}]).splitlines()[2:3]]
    assert fids == ["1.000 †"] and "† FID on 20 images per set: unreliable below 50" in table_rows(
        [{**row, "fid_set_images": 20}])
    for fine in ({**row, "fid_set_images": 200}, row):  # enough images, or not recorded (older summaries)
        assert "†" not in table_rows([fine])
