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

"Within δ" is decided by a colour distance (symmetric KL for C_dist, CIEDE2000 for C_RGB; see
:mod:`fewcolor.methods.memopainter`) or, for the supervised upper bound of Table 2, by label equality.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

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
        if q.ndim != 2 or q.shape[1] != self.key_dim:
            raise ValueError(f"queries must be (B, {self.key_dim}), got {tuple(q.shape)}")
        s = q @ self.keys.to(q.dtype).t()
        s = s.masked_fill(~self.filled, float("-inf"))
        if exclude_sources is not None:
            own = self.sources[None, :] == exclude_sources.to(self.sources.device)[:, None]
            s = s.masked_fill(own & (exclude_sources.to(self.sources.device)[:, None] >= 0), float("-inf"))
        return s

    def topk(self, q: torch.Tensor, k: int, exclude_sources: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``k`` nearest filled slots of each query: (similarities (B,k'), slot indices (B,k')),
        best first, with ``k' = min(k, number of filled slots)`` (excluded slots come last, at −inf).
        Raises on an empty memory."""
        n = self.num_filled
        if n == 0:
            raise RuntimeError("the colour memory is empty: train the model (or write to the memory) first")
        return self.similarities(q, exclude_sources).topk(min(int(k), n), dim=1)

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
        self.keys[slot] = F.normalize(key.to(self.keys), dim=0)
        self.values[slot] = value.to(self.values)
        self.ages[slot] = 0
        self.filled[slot] = True
        self.sources[slot] = int(source)
        self.labels[slot] = int(label)

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
                n1 = int(self.similarities(q[i : i + 1]).argmax(dim=1))
                if supervised:
                    hit = int(self.labels[n1]) == lab[i]
                else:
                    hit = bool(self.distance(self.values[n1], values[i]) < self.threshold)
            if hit:
                self.keys[n1] = F.normalize(q[i] + self.keys[n1], dim=0)
                self.ages[n1] = 0
                confirmed += 1
                touched.append(n1)
            else:
                slot = self.write_oldest(q[i], values[i], generator, src[i], lab[i])
                written += 1
                touched.append(slot)
        return UpdateStats(confirmed, written, touched)
