"""MemoPainter trained through the memory's int8 index behaves as with exact search (issue #18, item 5)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests.method_checks import four_emoji, opts

from fewcolor.methods.registry import build_method
from fewcolor.nets.key_index import int8_scan_available
from fewcolor.train.loop import train


@pytest.mark.skipif(not int8_scan_available(torch.device("cpu")), reason="the int8 kernel is not vectorised here")
def test_training_through_the_index_matches_exact_search(emoji_dir: Path, tmp_path: Path) -> None:
    ds = four_emoji(emoji_dir)
    runs = []
    for indexed in (False, True):
        torch.manual_seed(0)
        method = build_method("memopainter", "tiny", {"color_feature": "rgb", "memory_slots": 48})
        method.memory.index_min_slots = 0 if indexed else 10**9
        result = train(method, ds, opts(tmp_path / str(indexed), 6))
        assert method.memory.indexed is indexed
        runs.append((method, result.history))
    (exact, h_exact), (fast, h_fast) = runs
    assert fast.memory._index is not None  # the loss's top-k and the update's nearest slot used it
    for a, b in zip(h_exact, h_fast, strict=True):
        for key in ("loss/triplet", "memory/valid", "memory/confirmed", "memory/filled"):
            assert (key in a) == (key in b)
            if key in a:
                assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), key
    assert torch.equal(exact.memory.sources, fast.memory.sources)
    torch.testing.assert_close(exact.memory.keys, fast.memory.keys)
    assert set(fast.state_dict()) == set(exact.state_dict())  # the index is not saved
