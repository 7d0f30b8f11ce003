"""Memory retrieval accuracy, as in MemoPainter's Table 2 (Yoo et al., CVPR 2019, §4.3).

For N-way K-shot episodes drawn from a labelled image folder: a fresh query head (W, b) and colour
memory are trained on the episode's N·K support images — with the threshold triplet loss and the memory
update of the paper (unsupervised: "within δ" = colour features closer than δ), or with class labels as
the values (the supervised upper bound: positives are same-class slots) — then each held-out query image
retrieves its top-1 slot. Accuracy = the share of queries whose top-1 slot was written by an image of
the query's class. Chance is 1/N.

The support set is both what the memory stores and what trains W, b, so during training an image's own
slot is left out of its top-k (leave-one-out): otherwise it would always be the trivial nearest positive
and the loss would teach nothing.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from fewcolor.data.protocol import Dataset, dataset_labels
from fewcolor.losses.triplet import memory_triplet_loss
from fewcolor.nets.memory import ColorMemory


@dataclass
class RetrievalResult:
    accuracy: float  #: share of all queries whose top-1 slot has the query's class
    queries: int
    per_episode: list[float] = field(default_factory=list)
    chance: float = 0.0  #: 1/N


def retrieval_accuracy(
    dataset: Dataset,
    n_way: int = 5,
    k_shot: int = 1,
    n_query: int = 5,
    episodes: int = 10,
    steps: int = 30,
    supervised: bool = False,
    color_feature: str = "dist",
    threshold: float | None = None,
    top_k: int | None = None,
    margin: float = 0.1,
    key_dim: int = 512,
    lr: float = 1e-3,
    memory_scale: float = 1.2,
    seed: int = 0,
    progress: bool = True,
) -> RetrievalResult:
    """Top-1 retrieval accuracy over ``episodes`` N-way K-shot episodes of a labelled ``dataset`` (sample
    dicts with ``"l"``, ``"rgb"``, ``"label"``). ``steps`` passes over the support set train the query head
    and fill the memory (one triplet-loss step then one memory update per pass, like a MemoPainter step).
    The memory has ``ceil(memory_scale × N·K)`` slots (1.2: the default of MemoPainter's unofficial code)."""
    if memory_scale <= 0:
        raise ValueError(f"memory_scale must be positive, got {memory_scale}")
    from fewcolor.backbones import FeatureExtractor, choose_backbone
    from fewcolor.color.feature_kinds import colour_distance, colour_feature
    from fewcolor.methods.memopainter import BACKBONES, DEFAULT_THRESHOLDS, DEFAULT_TOP_K

    labels = dataset_labels(dataset)
    by_class: dict[int, list[int]] = {}
    for i, lab in enumerate(labels):
        if lab >= 0:
            by_class.setdefault(lab, []).append(i)
    usable = sorted(c for c, idx in by_class.items() if len(idx) > k_shot)
    if len(usable) < n_way:
        raise ValueError(f"{n_way}-way {k_shot}-shot needs {n_way} classes with more than {k_shot} images; "
                         f"the dataset has {len(usable)} (use a labelled folder root/<class>/<image>)")
    delta = DEFAULT_THRESHOLDS[color_feature] if threshold is None else float(threshold)
    k = top_k or DEFAULT_TOP_K[color_feature]
    extractor = FeatureExtractor(*choose_backbone(BACKBONES), pooling="avg")
    cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def feats(i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if i not in cache:
            s = dataset[i]
            with torch.no_grad():
                x = extractor(s["l"][None].float())[0]
                c = colour_feature(s["rgb"][None].float(), color_feature)[0]
            cache[i] = (x, c)
        return cache[i]

    rng = random.Random(seed)
    per_episode: list[float] = []
    hits = total = 0
    for ep in tqdm(range(episodes), desc="retrieval episodes", disable=not progress):
        classes = rng.sample(usable, n_way)
        support: list[int] = []
        queries: list[int] = []
        for c in classes:
            idx = rng.sample(by_class[c], len(by_class[c]))
            support += idx[:k_shot]
            queries += idx[k_shot : k_shot + n_query]
        xs = torch.stack([feats(i)[0] for i in support])
        cs = torch.stack([feats(i)[1] for i in support])
        ys = torch.tensor([labels[i] for i in support])
        g = torch.Generator().manual_seed(seed * 1_000_003 + ep)
        head = torch.nn.Linear(xs.shape[1], key_dim)
        with torch.no_grad():  # seeded initialisation, independent of the global RNG
            bound = 1 / math.sqrt(xs.shape[1])
            head.weight.uniform_(-bound, bound, generator=g)
            head.bias.uniform_(-bound, bound, generator=g)
        memory = ColorMemory(max(1, math.ceil(memory_scale * len(support))), key_dim, cs.shape[1],
                             colour_distance(color_feature), delta, seed=seed + ep)
        opt = torch.optim.Adam(head.parameters(), lr=lr)
        for _ in range(steps):
            order = torch.randperm(len(support), generator=g)
            xb, cb, yb = xs[order], cs[order], ys[order]
            # Leave-one-out: an image's own slot would trivially be its nearest positive.
            res = memory_triplet_loss(memory, F.normalize(head(xb), dim=1), cb, k, margin,
                                      yb if supervised else None, exclude_sources=order)
            if res is not None:
                opt.zero_grad()
                res.loss.backward()
                opt.step()
            with torch.no_grad():
                memory.update(F.normalize(head(xb), dim=1), cb, order, yb, generator=g, supervised=supervised)
        with torch.no_grad():
            xq = torch.stack([feats(i)[0] for i in queries])
            _, _, top1 = memory.retrieve(F.normalize(head(xq), dim=1), 1)
            got = memory.labels[top1[:, 0]]
        want = torch.tensor([labels[i] for i in queries])
        ok = int((got == want).sum())
        per_episode.append(ok / len(queries))
        hits += ok
        total += len(queries)
    return RetrievalResult(hits / max(total, 1), total, per_episode, 1.0 / n_way)
