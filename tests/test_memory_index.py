"""ColorMemory at scale: the int8 key index with exact re-rank (issue #18, item 5)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from fewcolor.bench.speed.retrieval import recall
from fewcolor.nets import key_index
from fewcolor.nets.key_index import Int8Keys, int8_scan_available, quantise_rows, scan_kernel
from fewcolor.nets.memory import INDEX_MIN_SLOTS, ColorMemory

needs_kernel = pytest.mark.skipif(not int8_scan_available(torch.device("cpu")),
                                  reason="no int8 kernel is vectorised on this CPU (exact search is used)")
CPU = torch.device("cpu")


@pytest.fixture(autouse=True, params=["fbgemm", "int8pack"])
def kernel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with each scan kernel: int8pack by hiding the quantized linear, as on builds without it."""
    if request.param == "fbgemm" and key_index.fbgemm_engine() is None:
        pytest.skip("this PyTorch build has no fbgemm quantized linear")
    if request.param == "int8pack":
        if not key_index.has_int8pack():
            pytest.skip("this PyTorch build has no _weight_int8pack_mm")
        monkeypatch.setattr(key_index, "fbgemm_engine", lambda: None)
    return str(request.param)


def l1_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).abs().sum(-1)


def make(slots: int, key_dim: int = 64, indexed: bool = True, threshold: float = 0.5) -> ColorMemory:
    return ColorMemory(slots, key_dim, 1, l1_distance, threshold, seed=3,
                       index_min_slots=0 if indexed else slots + 1)


def filled(slots: int, key_dim: int = 64, indexed: bool = True) -> ColorMemory:
    mem = make(slots, key_dim, indexed)
    mem.filled.fill_(True)  # the seeded random unit keys become the contents
    return mem


def queries(n: int, d: int = 64, seed: int = 5) -> torch.Tensor:
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=1)


@needs_kernel
def test_recall_against_exact_search_on_a_random_memory():
    mem = filled(6000)
    assert mem.indexed
    q = queries(32)
    sims, idx = mem.topk(q, 256)
    _, exact_idx = mem.similarities(q).topk(256, dim=1)
    assert recall(idx, exact_idx) >= 0.99
    # the returned similarities are exact fp32 dot products of the returned slots, best first
    torch.testing.assert_close(sims, (q[:, None, :] * mem.keys[idx]).sum(-1))
    assert bool((sims[:, :-1] >= sims[:, 1:]).all())


@needs_kernel
def test_index_stays_correct_after_slot_writes_without_a_rebuild():
    mem = filled(3000)
    q = queries(8)
    mem.topk(q, 16)
    index = mem._index
    slots = torch.arange(0, 3000, 7)
    new = queries(len(slots), seed=11)
    for slot, key in zip(slots.tolist(), new, strict=True):
        mem.write(slot, key, torch.zeros(1))
    assert mem._index is index  # refreshed row by row, not rebuilt
    codes, scales = quantise_rows(mem.keys)
    assert torch.equal(index.codes, codes) and torch.equal(index.scales, scales)
    # each new key is found as its own nearest slot, and the rest of the ranking is exact search's
    assert torch.equal(mem.topk(new, 1)[1][:, 0], slots)
    _, idx = mem.topk(q, 64)
    assert torch.equal(idx, mem.similarities(q).topk(64, dim=1).indices)


@needs_kernel
def test_index_rebuilds_lazily_when_keys_change_behind_its_back():
    mem = filled(2000)
    q = queries(4)
    mem.topk(q, 8)
    other = filled(2000)
    other.keys.copy_(F.normalize(torch.randn(2000, 64, generator=torch.Generator().manual_seed(9)), dim=1))
    mem.load_state_dict(other.state_dict())
    _, idx = mem.topk(q, 8)
    assert torch.equal(idx, other.similarities(q).topk(8, dim=1).indices)
    assert mem._index is not None and mem._index.matches(mem.keys)


@needs_kernel
def test_update_rule_gives_the_same_memory_with_and_without_the_index():
    exact, fast = make(600, indexed=False, threshold=0.3), make(600, threshold=0.3)
    g = torch.Generator().manual_seed(1)
    for step in range(12):  # the memory fills, then confirms and overwrites the oldest slots
        q = F.normalize(torch.randn(64, 64, generator=g), dim=1)
        v = torch.rand(64, 1, generator=g)
        src = torch.arange(64) + 64 * step
        s1 = exact.update(q, v, src, generator=torch.Generator().manual_seed(step))
        s2 = fast.update(q, v, src, generator=torch.Generator().manual_seed(step))
        assert s1 == s2
    assert fast._index is not None  # the index served the update's nearest-slot search
    for name, buf in exact.named_buffers():
        assert torch.equal(buf, getattr(fast, name)), name


@needs_kernel
def test_empty_and_excluded_slots_and_odd_key_sizes():
    mem, ref = make(200, key_dim=40), make(200, key_dim=40, indexed=False)
    g = torch.Generator().manual_seed(2)
    for slot in range(0, 200, 2):  # half the memory filled; two slots per source
        key, value = torch.randn(40, generator=g), torch.zeros(1)
        mem.write(slot, key, value, source=slot // 4)
        ref.write(slot, key, value, source=slot // 4)
    q, exclude = queries(3, 40), torch.tensor([0, 5, -1])
    sims, idx = mem.topk(q, 150, exclude_sources=exclude)  # more than the 100 filled slots
    ref_sims, ref_idx = ref.topk(q, 150, exclude_sources=exclude)
    assert sims.shape == (3, 100)
    assert torch.equal(torch.isinf(sims), torch.isinf(ref_sims))
    finite = ~torch.isinf(ref_sims)
    assert torch.equal(idx[finite], ref_idx[finite])
    torch.testing.assert_close(sims[finite], ref_sims[finite])


@needs_kernel
def test_similarities_are_differentiable_like_exact_search():
    mem, ref = filled(1000), filled(1000, indexed=False)
    q1 = queries(4).requires_grad_()
    q2 = q1.detach().clone().requires_grad_()
    mem.topk(q1, 32)[0].sum().backward()
    ref.topk(q2, 32)[0].sum().backward()
    torch.testing.assert_close(q1.grad, q2.grad)


def test_small_memories_search_exactly():
    mem = ColorMemory(3000, 64, 1, l1_distance, 0.5, seed=3)
    mem.filled.fill_(True)
    assert INDEX_MIN_SLOTS > 3000 and not mem.indexed
    q = queries(5)
    sims, idx = mem.topk(q, 256)
    want_sims, want_idx = mem.similarities(q).topk(256, dim=1)
    assert torch.equal(idx, want_idx) and torch.equal(sims, want_sims)
    assert mem._index is None


@pytest.mark.parametrize(("capability", "indexed"), [("DEFAULT", False), ("AVX2", True), ("AVX512", True)])
def test_capability_decides_the_search(monkeypatch: pytest.MonkeyPatch, capability: str, indexed: bool):
    has_kernel = key_index.fbgemm_engine() is not None or hasattr(torch.ops.aten, "_weight_int8pack_mm")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    mem = filled(500)
    assert mem.indexed is (indexed and has_kernel)
    q = queries(3)
    _, idx = mem.topk(q, 20)
    assert torch.equal(idx, mem.similarities(q).topk(20, dim=1).indices)
    assert (mem._index is not None) is mem.indexed


@needs_kernel
def test_int8_scores_are_close_to_fp32(kernel: str):
    keys = F.normalize(torch.randn(300, 72, generator=torch.Generator().manual_seed(4)), dim=1)
    q = queries(6, 72)
    approx = Int8Keys(keys).scores(q).float()
    # fbgemm also quantizes the query (uint8, 7 bits per tensor): about twice int8pack's error
    assert (approx - q @ keys.t()).abs().max().item() < (1e-2 if kernel == "fbgemm" else 5e-3)


@needs_kernel
def test_the_kernel_is_the_quantized_linear_where_it_exists(kernel: str):
    assert scan_kernel(CPU) == kernel == Int8Keys(F.normalize(torch.randn(10, 16), dim=1)).kernel
    assert scan_kernel(torch.device("meta")) is None


@needs_kernel
def test_rows_written_after_the_pack_are_scored_from_their_codes_then_repacked(
        kernel: str, monkeypatch: pytest.MonkeyPatch):
    if kernel != "fbgemm":
        pytest.skip("int8pack reads the codes directly: nothing is packed")
    monkeypatch.setattr(key_index, "REPACK_AFTER", 5)
    keys = F.normalize(torch.randn(400, 48, generator=torch.Generator().manual_seed(6)), dim=1)
    index, q = Int8Keys(keys), queries(4, 48)
    index.scores(q)
    packed = index._packed
    new = queries(6, 48, seed=8)
    for i, slot in enumerate((3, 50, 51, 399, 7)):
        keys[slot] = new[i]
        index.refresh(keys, slot)
    assert index._pending == {3, 7, 50, 51, 399}
    assert (index.scores(q) - q @ keys.t()).abs().max().item() < 1e-2  # the new rows score as keys now
    assert index._packed is packed  # five pending rows: no repack yet
    keys[50] = -keys[50]  # a pending row written again: its cached dequantised key must not be reused
    index.refresh(keys, 50)
    assert (index.scores(q) - q @ keys.t()).abs().max().item() < 1e-2
    assert index._packed is packed and len(index._pending) == 5
    keys[100] = new[5]
    index.refresh(keys, 100)
    assert (index.scores(q) - q @ keys.t()).abs().max().item() < 1e-2
    assert index._packed is not packed and not index._pending  # six > REPACK_AFTER: packed again


@needs_kernel
def test_broadcast_of_the_buffers_marks_the_index_stale(tmp_path: Path):
    # Collectives write without bumping the in-place version counter; broadcast_buffers bumps it.
    import torch.distributed as dist

    from fewcolor.meta.distributed import broadcast_buffers

    mem = filled(500)
    mem.topk(queries(2), 4)
    assert mem._index is not None and mem._index.matches(mem.keys)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        broadcast_buffers(mem)
    finally:
        dist.destroy_process_group()
    assert not mem._index.matches(mem.keys)


def test_a_memory_made_in_inference_mode_searches_exactly():
    with torch.inference_mode():  # its keys cannot tell the index about in-place writes
        mem = filled(300)
        q = queries(2)
        assert not mem.indexed
        _, idx = mem.topk(q, 10)
        assert torch.equal(idx, mem.similarities(q).topk(10, dim=1).indices)


@needs_kernel
def test_duplicate_keys_rank_the_lower_slot_first_like_exact_search():
    mem = filled(2000)
    key = queries(1, seed=21)[0]
    for slot in (300, 17, 250):
        mem.write(slot, key, torch.zeros(1))
    _, idx = mem.topk(key[None], 3)
    assert idx.tolist() == [[17, 250, 300]]
    assert mem._nearest(key[None]) == 17 == int(mem.similarities(key[None]).argmax(dim=1))
