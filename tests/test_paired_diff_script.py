"""scripts/paired_diff.py: per-image differences matched by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import load_script

paired_diff = load_script("paired_diff")


def _write(path: Path, rows: dict[str, tuple[float, float]]) -> Path:
    path.write_text(json.dumps({"per_image": [{"name": n, "delta_e2000": d, "psnr": p} for n, (d, p) in rows.items()]}))
    return path


def test_differences_are_matched_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _write(tmp_path / "a.json", {"x": (5.0, 20.0), "y": (7.0, 22.0), "z": (9.0, 30.0), "only_a": (0.0, 99.0)})
    b = _write(tmp_path / "b.json", {"z": (10.0, 29.0), "y": (8.0, 23.0), "x": (6.0, 19.0)})
    s = paired_diff.paired(paired_diff.per_image(a), paired_diff.per_image(b), "delta_e2000")
    assert s["n"] == 3 and s["mean"] == pytest.approx(-1.0) and s["a_better"] == 3
    assert s["ci95_low"] == pytest.approx(-1.0) and s["ci95_high"] == pytest.approx(-1.0)  # no spread
    p = paired_diff.paired(paired_diff.per_image(a), paired_diff.per_image(b), "psnr")
    assert p["mean"] == pytest.approx(1 / 3) and p["a_better"] == 2  # higher PSNR is better
    assert paired_diff.main([str(a), str(b), "--metrics", "delta_e2000"]) == 0
    assert "A better on 3 of 3" in capsys.readouterr().out


def test_files_without_common_images_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _write(tmp_path / "a.json", {"x": (1.0, 1.0)})
    b = _write(tmp_path / "b.json", {"y": (1.0, 1.0)})
    assert paired_diff.main([str(a), str(b)]) == 2
    assert "share no image" in capsys.readouterr().err


def test_unknown_metrics_duplicates_and_single_images(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _write(tmp_path / "a.json", {"x": (1.0, 1.0)})
    b = _write(tmp_path / "b.json", {"x": (2.0, float("inf"))})
    assert paired_diff.main([str(a), str(b), "--metrics", "cf_hs_pred"]) == 2
    assert "choose from" in capsys.readouterr().err
    assert paired_diff.main([str(a), str(b), "--metrics", "delta_e2000,psnr"]) == 0  # one image: no interval
    assert "n/a" in capsys.readouterr().out
    dup = tmp_path / "dup.json"
    dup.write_text(json.dumps({"per_image": [{"name": "x", "delta_e2000": 1.0}, {"name": "x", "delta_e2000": 2.0}]}))
    assert paired_diff.main([str(dup), str(b)]) == 2
    assert "more than once" in capsys.readouterr().err
