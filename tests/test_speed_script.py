"""scripts/speed.py: the runner, the table and the options, with fake parts (no measuring)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from fewcolor.bench.speed import Row
from helpers import load_script


@pytest.fixture()
def speed(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    module = load_script("speed")
    calls: list[tuple[str, bool]] = []

    def fake_part(name: str):
        if name == "retrieval":
            return None

        def measure(quick: bool) -> list[Row]:
            calls.append((name, quick))
            return [Row(name, f"{name} rate", 250.0, "img/s", target=200.0, note="fake"),
                    Row(name, f"{name} latency", 6.0, "ms", target=5.0, higher_is_better=False),
                    Row(name, f"{name} peak", 1234.5, "GFLOP/s")]
        return measure

    monkeypatch.setattr(module, "part", fake_part)
    module.calls = calls
    return module


def test_table_has_every_row_target_and_verdict(speed: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert speed.main(["--quick", "--parts", "training,gemm,retrieval"]) == 0
    out = capsys.readouterr().out
    assert speed.calls == [("training", True), ("gemm", True)]  # in the order asked
    assert "(--quick)" in out and "CPU capability" in out and "torch " in out and "commit " in out
    assert "| part | quantity | value | unit | target | met |" in out
    assert "| training | training rate | 250 | img/s | ≥ 200 | yes |" in out
    assert "| gemm | gemm latency | 6 | ms | ≤ 5 | **no** |" in out
    assert "| gemm | gemm peak | 1,234 | GFLOP/s |  |  |" in out
    assert out.index("| training |") < out.index("| gemm |")
    assert "- training / training rate: fake" in out and "- retrieval: not in this checkout" in out


def test_all_parts_by_default_and_markdown_appends(speed: ModuleType, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    md = tmp_path / "PERF.md"
    md.write_text("# Performance\n")
    speed.main(["--markdown", str(md)])
    speed.main(["--markdown", str(md), "--parts", "gemm"])
    text = md.read_text()
    assert text.startswith("# Performance\n") and text.count("| part | quantity |") == 2
    assert [name for name, _ in speed.calls] == ["gemm", "setup", "inference", "training", "gemm"]
    assert all(quick is False for _, quick in speed.calls)
    assert "--quick" not in capsys.readouterr().out


def test_bad_options_are_one_line_errors(speed: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"unknown part.*nosuch; choose from gemm,setup"):
        speed.main(["--parts", "gemm,nosuch"])
    with pytest.raises(SystemExit, match="does not exist"):
        speed.main(["--markdown", str(tmp_path / "no" / "dir.md")])
    assert speed.calls == []
