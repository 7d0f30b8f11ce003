"""ColorMemory (MemoPainter §3.1): retrieval, the two update branches, ages, the oldest-slot choice."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fewcolor.nets.memory import ColorMemory


def l1_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).abs().sum(-1)


def unit(*xs: float) -> torch.Tensor:
    return F.normalize(torch.tensor([list(xs)], dtype=torch.float32), dim=1)


def make(slots: int = 4) -> ColorMemory:
    return ColorMemory(slots, key_dim=2, value_dim=1, distance=l1_distance, threshold=0.5)


def test_empty_memory_refuses_retrieval_and_first_write_fills_a_slot():
    mem = make()
    with pytest.raises(RuntimeError, match="empty"):
        mem.retrieve(unit(1, 0))
    stats = mem.update(unit(1, 0), torch.tensor([[3.0]]), sources=torch.tensor([7]), labels=torch.tensor([2]))
    assert (stats.confirmed, stats.written) == (0, 1)
    slot = stats.slots[0]
    assert mem.num_filled == 1
    assert torch.equal(mem.keys[slot], unit(1, 0)[0])
    assert mem.values[slot].item() == 3.0 and mem.sources[slot] == 7 and mem.labels[slot] == 2
    values, sims, idx = mem.retrieve(unit(0.6, 0.8), k=5)  # k is clipped to the filled slots
    assert idx.tolist() == [[slot]] and values[0, 0, 0].item() == 3.0
    assert sims[0, 0].item() == pytest.approx(0.6)


def test_confirm_branch_merges_key_and_resets_age_others_age():
    mem = make()
    mem.write(0, unit(1, 0)[0], torch.tensor([1.0]), source=0)
    mem.write(1, unit(0, 1)[0], torch.tensor([5.0]), source=1)
    mem.ages[:] = torch.tensor([3.0, 4.0, 0.0, 0.0])
    q = unit(2, 1)  # nearest slot: 0, whose value 1.0 is within δ = 0.5 of the true value 1.2
    stats = mem.update(q, torch.tensor([[1.2]]))
    assert (stats.confirmed, stats.written, stats.slots) == (1, 0, [0])
    assert torch.allclose(mem.keys[0], F.normalize(unit(1, 0)[0] + q[0], dim=0))
    assert mem.keys[0].norm().item() == pytest.approx(1.0)
    assert mem.values[0].item() == 1.0  # the value is kept, only the key moves
    assert mem.ages.tolist() == [0.0, 5.0, 1.0, 1.0]


def test_write_branch_picks_an_oldest_slot_empty_first_then_max_age():
    mem = make(3)
    mem.write(0, unit(1, 0)[0], torch.tensor([1.0]))
    mem.write(1, unit(0, 1)[0], torch.tensor([2.0]))
    # value 9 is beyond δ of the nearest slot's value: written, and the one empty slot (2) is chosen
    stats = mem.update(unit(1, 0.1), torch.tensor([[9.0]]))
    assert (stats.confirmed, stats.written, stats.slots) == (0, 1, [2])
    assert mem.ages.tolist() == [1.0, 1.0, 0.0]
    # full memory: the oldest slot (1, age 7) is overwritten
    mem.ages[:] = torch.tensor([2.0, 7.0, 3.0])
    stats = mem.update(unit(1, 0), torch.tensor([[-4.0]]), sources=torch.tensor([11]))
    assert stats.slots == [1]
    assert mem.values[1].item() == -4.0 and mem.sources[1] == 11
    assert mem.ages.tolist() == [3.0, 0.0, 4.0]
    assert torch.equal(mem.keys[1], unit(1, 0)[0])


def test_oldest_choice_among_ties_is_random_but_seeded():
    def run(seed: int) -> list[int]:
        picks = []
        for trial in range(12):
            mem = make(4)
            for s in range(4):
                mem.write(s, unit(1, s)[0], torch.tensor([0.0]))
            g = torch.Generator().manual_seed(seed * 100 + trial)
            picks += mem.update(unit(-1, 0), torch.tensor([[9.0]]), generator=g).slots
        return picks

    assert run(0) == run(0)
    assert len(set(run(0))) > 1  # all four are equally old: the choice varies


def test_batch_queries_never_overwrite_the_same_slot():
    mem = make(4)
    stats = mem.update(torch.eye(2).repeat(2, 1), torch.tensor([[0.0], [3.0], [6.0], [9.0]]))
    assert stats.written == 4 and sorted(stats.slots) == [0, 1, 2, 3]


def test_supervised_update_uses_labels():
    mem = make(4)
    mem.write(0, unit(1, 0)[0], torch.tensor([100.0]), label=3)
    stats = mem.update(unit(1, 0.1), torch.tensor([[0.0]]), labels=torch.tensor([3]), supervised=True)
    assert stats.confirmed == 1  # same label: confirmed although the values differ
    stats = mem.update(unit(1, 0.1), torch.tensor([[100.0]]), labels=torch.tensor([4]), supervised=True)
    assert stats.written == 1


def test_within_by_distance_and_by_label():
    mem = make(3)
    mem.write(0, unit(1, 0)[0], torch.tensor([1.0]), label=0)
    mem.write(1, unit(0, 1)[0], torch.tensor([2.0]), label=1)
    idx = torch.tensor([[0, 1]])
    assert mem.within(idx, torch.tensor([[1.2]])).tolist() == [[True, False]]
    assert mem.within(idx, torch.tensor([[1.2]]), labels=torch.tensor([1])).tolist() == [[False, True]]


def test_resize_recreates_empty_buffers():
    mem = make(2)
    mem.write(0, unit(1, 0)[0], torch.tensor([1.0]))
    mem.resize(5)
    assert mem.keys.shape == (5, 2) and mem.values.shape == (5, 1) and mem.num_filled == 0
    assert set(dict(mem.named_buffers())) == {"keys", "values", "ages", "filled", "sources", "labels"}
