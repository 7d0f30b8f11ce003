"""Speed part ``retrieval``: MemoPainter's top-256 memory query at scale (issue #18, item 5).

A seeded memory of random unit keys (every slot filled) is queried with random unit queries, at batch 1
and 16: exact fp32 search (``q @ K.T`` then top-k, what small memories do) against the int8 index with
exact re-rank (what :class:`fewcolor.nets.memory.ColorMemory` does at ``slots >= index_min_slots``).
Random keys are the hard case for any pruning index and the fair one for a full scan: the int8 scan's
recall does not depend on how the keys cluster. Full run: m = 100,000, d = 512; quick: m = 20,000.
"""

from __future__ import annotations

import time
from functools import partial

import torch

from fewcolor.bench.speed import Row
from fewcolor.bench.speed.timing import median_seconds
from fewcolor.nets.key_index import (
    REPACK_AFTER,
    Int8Keys,
    fbgemm_engine,
    has_int8pack,
    int8_scan_available,
    scan_kernel,
)
from fewcolor.nets.memory import ColorMemory

PART = "retrieval"
TOP_K = 256
KEY_DIM = 512
TARGET_MS = 5.0
TARGET_RECALL = 0.95


def recall(found: torch.Tensor, exact: torch.Tensor) -> float:
    """Share of the exact top-k slot indices (B, k) that ``found`` (B, k') also holds, row by row."""
    return float((exact[:, :, None] == found[:, None, :]).any(dim=2).float().mean())


def available_kernels() -> list[str]:
    """The int8 scan kernels this build has, the one the memory uses first (to compare them)."""
    have = {"fbgemm": fbgemm_engine() is not None, "int8pack": has_int8pack()}
    chosen = scan_kernel(torch.device("cpu"))
    return sorted((k for k, ok in have.items() if ok), key=lambda k: k != chosen)


def _exact_topk(memory: ColorMemory, q: torch.Tensor) -> torch.return_types.topk:
    return memory.similarities(q).topk(TOP_K, dim=1)


def _memory(slots: int) -> ColorMemory:
    memory = ColorMemory(slots, KEY_DIM, 1, lambda a, b: (a - b).abs().sum(-1), 0.0, seed=0, index_min_slots=0)
    memory.filled.fill_(True)  # the seeded random unit keys become the memory's contents
    return memory


def measure(quick: bool) -> list[Row]:
    slots = 20_000 if quick else 100_000
    reps = 5 if quick else 15
    size = f"m = {slots:,}, d = {KEY_DIM}" + (" (quick: smaller m)" if quick else "")
    memory = _memory(slots)
    g = torch.Generator().manual_seed(1)
    queries = torch.nn.functional.normalize(torch.randn(64, KEY_DIM, generator=g), dim=1)
    fast = memory.indexed
    method = (f"int8 scan ({scan_kernel(memory.keys.device)}) + fp32 re-rank" if fast
              else "exact fp32 (int8 kernel not vectorised here)")
    rows = []
    with torch.no_grad():
        for b in (1, 16):
            exact_ms = 1e3 * median_seconds(partial(_exact_topk, memory, queries[:b]), reps) / b
            rows.append(Row(PART, f"exact fp32 top-{TOP_K}, batch {b}", exact_ms, "ms/query", note=size))
        for b in (1, 16):
            ms = 1e3 * median_seconds(partial(memory.topk, queries[:b], TOP_K), reps) / b
            rows.append(Row(PART, f"{method}, batch {b}", ms, "ms/query", TARGET_MS, False, size))
        exact = _exact_topk(memory, queries).indices
        rows.append(Row(PART, f"recall@{TOP_K} vs exact", recall(memory.topk(queries, TOP_K)[1], exact), "",
                        TARGET_RECALL,
                        note=f"{len(queries)} random queries, {size}"))
        if int8_scan_available(memory.keys.device):
            for kernel in available_kernels():
                index = Int8Keys(memory.keys, kernel)
                for b in (1, 16):
                    ms = 1e3 * median_seconds(partial(index.scores, queries[:b]), reps) / b
                    rows.append(Row(PART, f"  scan alone ({kernel}), batch {b}", ms, "ms/query",
                                    note=f"{size}; the kernels compared"))
            probe = queries[:1]
            build = 1e3 * median_seconds(lambda: Int8Keys(memory.keys).scores(probe), 1 if quick else 3)
            rows.append(Row(PART, "int8 index build", build, "ms",
                            note=f"{size}; lazily, on the first large query (quantise, pack, one scan)"))
            key = torch.randn(KEY_DIM, generator=g)
            write = 1e3 * median_seconds(lambda: memory.write(7, key, torch.zeros(1)), 50)
            rows.append(Row(PART, "slot write, index kept current", write, "ms", note="one row re-quantised"))
            if scan_kernel(memory.keys.device) == "fbgemm":
                rows += _pending_rows(memory, queries[:1], g, reps)
    return rows


def _pending_rows(memory: ColorMemory, query: torch.Tensor, g: torch.Generator, reps: int) -> list[Row]:
    """fbgemm's packed codes cannot change a row: a query with REPACK_AFTER written rows pending, and the
    cost of a write averaged over REPACK_AFTER + 1 distinct slots and the query that then repacks."""
    memory.topk(query, TOP_K)  # a fresh pack, nothing pending
    slots = torch.randperm(memory.slots, generator=g)[: REPACK_AFTER + 1].tolist()
    keys = torch.randn(len(slots), KEY_DIM, generator=g)
    value = torch.zeros(1)
    for slot, key in zip(slots[:-1], keys[:-1], strict=True):
        memory.write(slot, key, value)
    pending_ms = 1e3 * median_seconds(partial(memory.topk, query, TOP_K), reps)
    start = time.perf_counter()
    for slot, key in zip(slots, keys, strict=True):
        memory.write(slot, key, value)
    memory.topk(query, TOP_K)  # more than REPACK_AFTER pending: packs again
    amortised_ms = 1e3 * (time.perf_counter() - start) / len(slots)
    return [Row(PART, f"int8 scan (fbgemm) + fp32 re-rank, batch 1, {REPACK_AFTER:,} rows pending", pending_ms,
                "ms/query", note="written since the last pack, scored from their codes"),
            Row(PART, "slot write, repack included (amortised)", amortised_ms, "ms",
                note=f"{len(slots):,} distinct slots written, then one query repacks")]
