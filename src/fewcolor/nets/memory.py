"""MemoPainter's colour memory (Yoo et al., CVPR 2019, §3.1): keys, values and ages.

The memory holds ``m`` slots ``M = (K, V, A)`` (paper Eq. 1): a unit-norm key ``K[i]`` (the spatial
feature of a grey image, the space queries live in), a colour feature value ``V[i]`` and an age
``A[i]`` (steps since the slot was last written or confirmed). Two more buffers say which training
image wrote each slot (``sources``, −1 when empty) and its class label (``labels``, −1 when unknown),
for retrieval-accuracy evaluation (paper Table 2) and ``fewcolor memory inspect``. All are registered
buffers, so they travel with the checkpoint; :meth:`ColorMemory.resize` re-creates them with the
right shapes before a checkpoint is loaded.

Retrieval is by cosine similarity (keys and queries are unit vectors, so a dot product), top-k.
The update rule (paper §3.1, "Memory update"): for a query ``q`` with true colour feature ``v``, let
``n1`` be its nearest slot. If ``dist(V[n1], v) < δ`` the slot is confirmed, ``K[n1] ← ‖q + K[n1]‖``
and ``A[n1] ← 0``; otherwise ``(q, v)`` is written into a slot chosen at random among the oldest (empty
slots first) and that slot's age is reset. Every other slot ages by one per update call.

Large memories (``slots >= index_min_slots``, 32,768 by default, on a CPU whose int8 kernel is vectorised)
search in two stages: an int8 copy of the keys (:class:`fewcolor.nets.key_index.Int8Keys`; fbgemm's quantized
linear, or ATen's int8-weight kernel where the build lacks it) scores every slot approximately, and the best
``k + max(64, k/2)`` candidates are re-ranked exactly in fp32, so the
returned similarities are exact (and differentiable in ``q``) and the top-k equals exact search unless a
true neighbour falls outside the candidates (recall@256 = 1.0 measured on random unit keys, m = 100k). The
int8 copy is a cache, never saved: built on the first large query, re-quantised row by row when this
module writes a key, rebuilt when the keys change any other way. Smaller memories (the usual few thousand
training slots) search exactly, as before. Measurements: docs/MEMOPAINTER.md, "Retrieval at scale".

"Within δ" is decided by a colour distance (symmetric KL for C_dist, CIEDE2000 for C_RGB; see
:mod:`fewcolor.methods.memopainter`) or, for the supervised upper bound of Table 2, by label equality.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from fewcolor.nets.key_index import Int8Keys, int8_scan_available

#: memories with at least this many slots use the int8 index (below it, exact search of a batch of 16
#: queries is faster: measured in docs/MEMOPAINTER.md)
INDEX_MIN_SLOTS = 32_768
#: extra candidates re-ranked exactly beyond k: max(this, k // 2)
RERANK_MARGIN = 64

#: ``distance(a, b)``: colour-feature distance, broadcasting over leading dims: (..., D), (..., D) -> (...)
ValueDistance = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class UpdateStats:
    """What one :meth:`ColorMemory.update` call did (for the logs and tests)."""

    confirmed: int  #: queries whose nearest slot's value was within δ (key merged, age reset)
    written: int  #: queries written into an old (or empty) slot
    slots: list[int]  #: the slot each query touched, in order


class ColorMemory(nn.Module):
    """Key-value-age memory of ``slots`` entries (see the module docstring).

    ``distance`` compares values (colour features) and ``threshold`` is δ. The module has no
    parameters: the learnable query head (W, b) belongs to the method, and the memory is written by
    :meth:`update`, never by gradients.
    """

    keys: torch.Tensor  # registered buffer
    values: torch.Tensor  # registered buffer
    ages: torch.Tensor  # registered buffer
    filled: torch.Tensor  # registered buffer
    sources: torch.Tensor  # registered buffer
    labels: torch.Tensor  # registered buffer

    def __init__(
        self,
        slots: int,
        key_dim: int,
        value_dim: int,
        distance: ValueDistance,
        threshold: float,
        seed: int = 0,
        index_min_slots: int = INDEX_MIN_SLOTS,
    ) -> None:
        super().__init__()
        if slots < 1 or key_dim < 1 or value_dim < 1:
            raise ValueError(f"ColorMemory needs positive sizes, got slots={slots} key_dim={key_dim} "
                             f"value_dim={value_dim}")
        self.key_dim = int(key_dim)
        self.value_dim = int(value_dim)
        self.distance = distance
        self.threshold = float(threshold)
        self.seed = int(seed)
        self.index_min_slots = int(index_min_slots)
        self._index: Int8Keys | None = None  # derived cache of `keys`, not state: see the module docstring
        self._allocate(int(slots))

    def _allocate(self, slots: int, device: torch.device | None = None) -> None:
        g = torch.Generator().manual_seed(self.seed)
        # Random unit keys for empty slots; they are never returned while a slot is empty (see `filled`).
        keys = F.normalize(torch.randn(slots, self.key_dim, generator=g), dim=1)
        self.register_buffer("keys", keys.to(device) if device else keys)
        self.register_buffer("values", torch.zeros(slots, self.value_dim, device=device))
        self.register_buffer("ages", torch.zeros(slots, device=device))
        self.register_buffer("filled", torch.zeros(slots, dtype=torch.bool, device=device))
        self.register_buffer("sources", torch.full((slots,), -1, dtype=torch.long, device=device))
        self.register_buffer("labels", torch.full((slots,), -1, dtype=torch.long, device=device))
        self._index = None

    @property
    def slots(self) -> int:
        return int(self.keys.shape[0])

    @property
    def num_filled(self) -> int:
        return int(self.filled.sum())

    def resize(self, slots: int) -> None:
        """Re-create every buffer empty with ``slots`` entries (before training or loading a checkpoint)."""
        if slots < 1:
            raise ValueError(f"ColorMemory.resize: slots must be >= 1, got {slots}")
        self._allocate(int(slots), self.keys.device)

    # ----- retrieval ------------------------------------------------------------------------
    def similarities(self, q: torch.Tensor, exclude_sources: torch.Tensor | None = None) -> torch.Tensor:
        """Cosine similarity ``q·K`` (B, m) of unit queries to every key; empty slots get −inf, and so do
        slots written by ``exclude_sources[b]`` (B,) when given (leave-one-out retrieval)."""
        self._check_queries(q)
        return self._mask(q @ self.keys.to(q.dtype).t(), exclude_sources)

    def _check_queries(self, q: torch.Tensor) -> None:
        if q.ndim != 2 or q.shape[1] != self.key_dim:
            raise ValueError(f"queries must be (B, {self.key_dim}), got {tuple(q.shape)}")

    def _mask(self, s: torch.Tensor, exclude_sources: torch.Tensor | None) -> torch.Tensor:
        """``s`` (B, m) with empty slots, and slots written by ``exclude_sources[b]``, set to −inf."""
        if self.num_filled < self.slots:  # a full memory (the large-memory case) skips a (B, m) copy
            s = s.masked_fill(~self.filled, float("-inf"))
        if exclude_sources is not None:
            own = self.sources[None, :] == exclude_sources.to(self.sources.device)[:, None]
            s = s.masked_fill(own & (exclude_sources.to(self.sources.device)[:, None] >= 0), float("-inf"))
        return s

    @property
    def indexed(self) -> bool:
        """Whether queries go through the int8 index: a large memory, a vectorised int8 kernel here, and keys
        that track in-place changes (tensors made under ``torch.inference_mode`` do not: exact search)."""
        return (self.slots >= self.index_min_slots and int8_scan_available(self.keys.device)
                and not self.keys.is_inference())

    def _current_index(self) -> Int8Keys:
        if self._index is None or not self._index.matches(self.keys):
            self._index = Int8Keys(self.keys)
        return self._index

    def _indexed_topk(self, q: torch.Tensor, k: int, exclude_sources: torch.Tensor | None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        self._check_queries(q)
        with torch.no_grad():
            approx = self._mask(self._current_index().scores(q), exclude_sources)
            approx_top, cand = approx.topk(min(self.slots, k + max(RERANK_MARGIN, k // 2)), dim=1)
            # candidates in slot order and a stable sort: equal similarities rank the lower slot first,
            # as the exact search's argmax does (duplicate keys are common in a colour memory)
            cand, order = cand.sort(dim=1)
            excluded = approx_top.gather(1, order) == float("-inf")
        exact = torch.einsum("bd,brd->br", q, self.keys[cand].to(q.dtype))
        exact = exact.masked_fill(excluded, float("-inf"))
        sims, best = exact.sort(dim=1, descending=True, stable=True)
        return sims[:, :k], cand.gather(1, best[:, :k])

    def topk(self, q: torch.Tensor, k: int, exclude_sources: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``k`` nearest filled slots of each query: (similarities (B,k'), slot indices (B,k')),
        best first, with ``k' = min(k, number of filled slots)`` (excluded slots come last, at −inf).
        Raises on an empty memory. Exact search for small memories; large ones go through the int8 index
        (see the module docstring)."""
        n = self.num_filled
        if n == 0:
            raise RuntimeError("the colour memory is empty: train the model (or write to the memory) first")
        if self.indexed:
            return self._indexed_topk(q, min(int(k), n), exclude_sources)
        return self.similarities(q, exclude_sources).topk(min(int(k), n), dim=1)

    def _nearest(self, q: torch.Tensor) -> int:
        """The nearest filled slot of one query (1, E) (the memory must not be empty)."""
        if self.indexed:
            return int(self._indexed_topk(q, 1, None)[1][0, 0])
        return int(self.similarities(q).argmax(dim=1))

    def retrieve(self, q: torch.Tensor, k: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Values of the top-``k`` slots (B,k',D), their similarities (B,k') and slot indices (B,k')."""
        sims, idx = self.topk(q, k)
        return self.values[idx], sims, idx

    def within(self, slot_idx: torch.Tensor, values: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Whether each slot's value is within δ of the query's true value: (B,k) bool for slot indices
        (B,k) and true values (B,D). With ``labels`` (B,) the test is label equality instead (the
        supervised upper bound of paper Table 2)."""
        if labels is not None:
            return self.labels[slot_idx] == labels.to(self.labels.device)[:, None]
        d = self.distance(self.values[slot_idx], values[:, None, :].to(self.values.dtype))
        return d < self.threshold

    # ----- writing --------------------------------------------------------------------------
    @torch.no_grad()
    def write(self, slot: int, key: torch.Tensor, value: torch.Tensor, source: int = -1, label: int = -1) -> None:
        """Write one slot directly: unit-normalised key, value, age 0."""
        self._set_key(slot, F.normalize(key.to(self.keys), dim=0))
        self.values[slot] = value.to(self.values)
        self.ages[slot] = 0
        self.filled[slot] = True
        self.sources[slot] = int(source)
        self.labels[slot] = int(label)

    def _set_key(self, slot: int, key: torch.Tensor) -> None:
        """``K[slot] ← key``, keeping a current int8 index current (one row re-quantised)."""
        current = self._index is not None and self._index.matches(self.keys)
        self.keys[slot] = key
        if current and self._index is not None:
            self._index.refresh(self.keys, slot)

    @torch.no_grad()
    def write_oldest(self, key: torch.Tensor, value: torch.Tensor, generator: torch.Generator | None = None,
                     source: int = -1, label: int = -1) -> int:
        """Write ``(key, value)`` into a random oldest slot (empty slots first); returns the slot."""
        slot = self._oldest_slot(generator)
        self.write(slot, key, value, source, label)
        return slot

    def _oldest_slot(self, generator: torch.Generator | None) -> int:
        # Empty slots first; otherwise one of the slots of maximal age, uniformly at random.
        empty = (~self.filled).nonzero().flatten()
        candidates = empty if empty.numel() else (self.ages == self.ages.max()).nonzero().flatten()
        pick = int(torch.randint(candidates.numel(), (1,), generator=generator).item())
        return int(candidates[pick])

    @torch.no_grad()
    def update(
        self,
        q: torch.Tensor,
        values: torch.Tensor,
        sources: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        supervised: bool = False,
    ) -> UpdateStats:
        """The memory update of paper §3.1 for a batch of unit queries ``q`` (B,E) with true colour
        features ``values`` (B,D). ``sources`` / ``labels`` (B,) record which image (and class) wrote a
        slot. All slots age by one; then each query in order either confirms its nearest slot (value
        within δ, or same label when ``supervised``) — ``K ← normalise(q + K)``, age 0 — or is written
        into a random oldest slot. Queries are processed one after another, so two queries of one batch
        never overwrite the same slot. ``generator`` seeds the oldest-slot choice."""
        b = q.shape[0]
        if values.shape != (b, self.value_dim):
            raise ValueError(f"values must be ({b}, {self.value_dim}), got {tuple(values.shape)}")
        if supervised and labels is None:
            raise ValueError("ColorMemory.update(supervised=True) needs labels")
        src = sources.tolist() if sources is not None else [-1] * b
        lab = labels.tolist() if labels is not None else [-1] * b
        q = F.normalize(q.detach().to(self.keys.dtype), dim=1)
        values = values.detach().to(self.values.dtype)
        self.ages += 1
        confirmed = written = 0
        touched: list[int] = []
        for i in range(b):
            hit = False
            if self.num_filled:
                n1 = self._nearest(q[i : i + 1])
                if supervised:
                    hit = int(self.labels[n1]) == lab[i]
                else:
                    hit = bool(self.distance(self.values[n1], values[i]) < self.threshold)
            if hit:
                self._set_key(n1, F.normalize(q[i] + self.keys[n1], dim=0))
                self.ages[n1] = 0
                confirmed += 1
                touched.append(n1)
            else:
                slot = self.write_oldest(q[i], values[i], generator, src[i], lab[i])
                written += 1
                touched.append(slot)
        return UpdateStats(confirmed, written, touched)
