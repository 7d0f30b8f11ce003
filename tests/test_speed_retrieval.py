"""The speed benchmark's retrieval part (issue #18, item 5), in its quick form."""

from __future__ import annotations

from fewcolor.bench.speed import part


def test_quick_retrieval_rows() -> None:
    measure = part("retrieval")
    assert measure is not None
    rows = {r.name: r for r in measure(True)}
    assert {"exact fp32 top-256, batch 1", "exact fp32 top-256, batch 16", "recall@256 vs exact"} <= set(rows)
    timed = [r for r in rows.values() if r.target == 5.0]
    assert len(timed) == 2 and all(not r.higher_is_better and r.unit == "ms/query" for r in timed)
    assert all(r.value > 0 and "quick" in r.note for r in timed)
    assert rows["recall@256 vs exact"].value >= 0.95
