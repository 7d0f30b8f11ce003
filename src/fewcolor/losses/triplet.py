"""The threshold triplet loss of MemoPainter (Yoo et al., CVPR 2019, §3.1, Eq. 4).

For a query ``q`` and its top-k nearest memory slots (by cosine similarity), the positive ``n_p`` is the
nearest slot whose value lies within δ of the query's true colour feature and the negative ``n_b`` the
nearest slot whose value lies beyond δ::

    L_t = max(q·K[n_b] − q·K[n_p] + α, 0)

"Within δ" is decided by the caller (:meth:`fewcolor.nets.memory.ColorMemory.within`) and passed as a
boolean mask, so the same loss serves the unsupervised (colour distance) and supervised (same label)
variants. A query with no positive, or no negative, among its top-k has no triplet: its term is skipped
(not counted as zero in the mean) and the number of such queries is reported, so the logs show how often
it happens (at the start of training, when the memory is nearly empty, it is most queries).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from fewcolor.nets.memory import ColorMemory


@dataclass
class TripletResult:
    loss: torch.Tensor  #: mean hinge over the queries that have a triplet; 0 (with a graph) when none has
    valid: int  #: queries with both a positive and a negative among their top-k
    no_positive: int  #: queries whose top-k holds no slot within δ
    no_negative: int  #: queries whose top-k holds no slot beyond δ (and at least one within)


def threshold_triplet_loss(scores: torch.Tensor, positive: torch.Tensor, margin: float = 0.1) -> TripletResult:
    """Threshold triplet loss from the top-k similarities ``scores`` (B,k) — ``q·K[n_i]``, any order,
    differentiable w.r.t. the query — and ``positive`` (B,k) bool: slot ``n_i``'s value is within δ of the
    query's true colour feature. ``margin`` is α (0.1 in the paper). Entries with a non-finite score (−inf
    marks an empty or excluded slot) are neither positive nor negative."""
    if scores.shape != positive.shape or scores.ndim != 2:
        raise ValueError(f"scores {tuple(scores.shape)} and positive {tuple(positive.shape)} must both be (B, k)")
    usable = torch.isfinite(scores.detach())
    positive = positive.to(torch.bool) & usable
    negative = ~positive & usable
    neg_inf = torch.finfo(scores.dtype).min
    # The nearest positive / negative = the highest-similarity slot of each kind.
    s_pos = scores.masked_fill(~positive, neg_inf).max(dim=1).values
    s_neg = scores.masked_fill(~negative, neg_inf).max(dim=1).values
    has_pos, has_neg = positive.any(dim=1), negative.any(dim=1)
    valid = has_pos & has_neg
    # With no triplet at all, a zero that keeps the graph: zero gradient, finite loss (−inf × 0 would be NaN).
    loss = (torch.relu(s_neg[valid] - s_pos[valid] + margin).mean() if valid.any()
            else scores.masked_fill(~usable, 0.0).sum() * 0.0)
    return TripletResult(loss, int(valid.sum()), int((~has_pos).sum()), int((has_pos & ~has_neg).sum()))


def memory_triplet_loss(memory: ColorMemory, q: torch.Tensor, target: torch.Tensor, top_k: int, margin: float,
                        labels: torch.Tensor | None = None, exclude_sources: torch.Tensor | None = None
                        ) -> TripletResult | None:
    """Eq. 4 for queries ``q`` (B,d) against ``memory``: their ``top_k`` nearest slots, positives within δ of
    ``target`` (the true colour features; with ``labels``, the same-class slots: the supervised variant), the
    hinge with ``margin``. ``exclude_sources`` leaves out each query's own slot (leave-one-out, for MemoPainter
    Table 2's retrieval test). None while the memory is empty: there is nothing to compare with yet. MemoPainter's
    training step and the retrieval benchmark both call this one function."""
    if memory.num_filled == 0:
        return None
    sims, slots = memory.topk(q, top_k, exclude_sources=exclude_sources)
    return threshold_triplet_loss(sims, memory.within(slots, target, labels), margin)
