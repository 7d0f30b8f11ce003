"""The speed benchmark's retrieval part (issue #18, item 5), in its quick form."""

from __future__ import annotations

import torch

from fewcolor.bench.speed import part
from fewcolor.bench.speed.retrieval import available_kernels
from fewcolor.nets.key_index import int8_scan_available, scan_kernel


def test_quick_retrieval_rows() -> None:
    measure = part("retrieval")
    assert measure is not None
    rows = {r.name: r for r in measure(True)}
    assert {"exact fp32 top-256, batch 1", "exact fp32 top-256, batch 16", "recall@256 vs exact"} <= set(rows)
    timed = [r for r in rows.values() if r.target == 5.0]
    assert len(timed) == 2 and all(not r.higher_is_better and r.unit == "ms/query" for r in timed)
    assert all(r.value > 0 and "quick" in r.note for r in timed)
    assert rows["recall@256 vs exact"].value >= 0.95
    if int8_scan_available(torch.device("cpu")):  # the kernels this build has, the memory's own first
        kernels = available_kernels()
        assert kernels[0] == scan_kernel(torch.device("cpu"))
        assert {f"  scan alone ({k}), batch {b}" for k in kernels for b in (1, 16)} <= set(rows)
        if kernels[0] == "fbgemm":
            assert rows["slot write, repack included (amortised)"].value > 0
