"""Dense coarse-to-fine correspondence from a grey query to a set of support images in a pretrained
feature space, with a similarity and a cycle-consistency flag per query cell.

A :class:`Pyramid` holds, for one or more images, the L2-normalised activations of several backbone
layers (shallow → deep, e.g. VGG16 relu3_3/relu4_3/relu5_3 at strides 4/8/16), flattened, plus
Welsh et al.'s (SIGGRAPH 2002, §2) luminance statistics (mean and standard deviation of L over each cell, their
5×5 neighbourhood becoming the cell) and a prior
confidence per cell (1 for real colour images; a propagated video frame carries its own).

The similarity of a query cell q and a support cell p at layer k is

    s(q, p) = Σ_{j ≥ k} w_j cos(F_j(q↑j), F_j(p↑j)) / Σ_{j ≥ k} w_j  −  λ (|Δμ_L| + |Δσ_L|)

where ``q↑j`` is the ancestor cell of q at the deeper layer j (so fine matches must also agree
semantically), and the luminance term compares the cells' L statistics after Welsh's luminance
remapping of each support to the query's global mean and deviation.

Search (in the spirit of the coarse-to-fine matching of Deep Image Analogy (Liao et al. 2017), which
He et al. 2018 use; ours is simpler): an exhaustive search at the coarse layer (all cells of all
supports), with the reverse search on the same similarity matrix giving a cycle-consistency flag
(He et al. 2018's bidirectional check: q → p → q' lands within one cell of q); then at each finer layer
a local PatchMatch-style search: every cell tries the offsets of its parent's 3×3 neighbourhood
(propagation) and a ±1 jitter around its parent's own match. A support cell's prior confidence c
enters as the penalty ``(1 − c)`` on its score (a cell with c = 0 is chosen only when nothing else is).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

_EPS = 1e-6


def first_rows(counts: torch.Tensor) -> torch.Tensor:
    """Exclusive cumulative sum: the first row of each block when blocks of ``counts`` rows are stacked."""
    return torch.cat([torch.zeros(1, dtype=counts.dtype, device=counts.device), counts.cumsum(0)[:-1]])


@dataclass
class Pyramid:
    """Flattened multi-layer features of ``S`` images; every list has one entry per layer (shallow first).

    ``feats[k]`` (N_k, C_k) unit rows; ``shapes[k]`` (S, 2) grid (h, w) per image; ``starts[k]`` (S,) first
    row of each image; ``lum[k]`` (N_k, 2) the cell's mean and standard deviation of normalised L;
    ``prior[k]`` (N_k,) the cell's prior confidence in [0, 1]; ``l_stats`` (S, 2) global mean/std of L.
    """

    feats: list[torch.Tensor]
    shapes: list[torch.Tensor]
    starts: list[torch.Tensor]
    lum: list[torch.Tensor]
    prior: list[torch.Tensor]
    l_stats: torch.Tensor

    @property
    def num_images(self) -> int:
        return int(self.l_stats.shape[0])

    @property
    def num_layers(self) -> int:
        return len(self.feats)

    @staticmethod
    def of_image(maps: list[torch.Tensor], l_norm: torch.Tensor) -> Pyramid:
        """The pyramid of one image from backbone maps ``(1,C_k,h_k,w_k)`` of its L ``(1,1,H,W)`` (the
        backbone's input); prior confidence 1 everywhere."""
        feats, shapes, lum, priors = [], [], [], []
        for fmap in maps:
            h, w = fmap.shape[-2:]
            feats.append(F.normalize(fmap[0].flatten(1).t().float(), dim=1))
            shapes.append(torch.tensor([[h, w]], dtype=torch.long, device=fmap.device))
            mean = F.adaptive_avg_pool2d(l_norm, (h, w))
            std = (F.adaptive_avg_pool2d(l_norm * l_norm, (h, w)) - mean * mean).clamp_min(0).sqrt()
            lum.append(torch.cat([mean, std], dim=1)[0].flatten(1).t())
            priors.append(torch.ones(h * w, device=fmap.device))
        l_stats = torch.stack([l_norm.mean(), l_norm.std(unbiased=False)])[None]
        starts = [torch.zeros(1, dtype=torch.long, device=l_norm.device) for _ in maps]
        return Pyramid(feats, shapes, starts, lum, priors, l_stats)

    def with_prior(self, prior: torch.Tensor) -> Pyramid:
        """This one-image pyramid with the prior confidence ``(1,1,H,W)`` (any size, same extent) averaged
        over each layer's cells."""
        if self.num_images != 1:
            raise ValueError("with_prior applies to a one-image pyramid")
        priors = [F.adaptive_avg_pool2d(prior.float(), (int(shape[0, 0]), int(shape[0, 1]))).flatten().clamp(0, 1)
                  for shape in self.shapes]
        return Pyramid(self.feats, self.shapes, self.starts, self.lum, priors, self.l_stats)

    @staticmethod
    def concat(pyramids: list[Pyramid]) -> Pyramid:
        """One pyramid holding the images of all ``pyramids`` in order."""
        if not pyramids:
            raise ValueError("Pyramid.concat needs at least one pyramid")
        layers = range(pyramids[0].num_layers)
        starts = [first_rows(torch.cat([p.shapes[k].prod(dim=1) for p in pyramids])) for k in layers]
        return Pyramid(
            feats=[torch.cat([p.feats[k] for p in pyramids]) for k in layers],
            shapes=[torch.cat([p.shapes[k] for p in pyramids]) for k in layers],
            starts=starts,
            lum=[torch.cat([p.lum[k] for p in pyramids]) for k in layers],
            prior=[torch.cat([p.prior[k] for p in pyramids]) for k in layers],
            l_stats=torch.cat([p.l_stats for p in pyramids]),
        )

    def cells(self, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(image, y, x) of every row of layer ``k``."""
        sizes = self.shapes[k].prod(dim=1)
        image = torch.repeat_interleave(torch.arange(self.num_images, device=sizes.device), sizes)
        local = torch.arange(int(sizes.sum()), device=sizes.device) - self.starts[k][image]
        width = self.shapes[k][image, 1]
        return image, local // width, local % width

    def index(self, k: int, image: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Row of cell (image, y, x) at layer ``k``; y and x are clipped into the image's grid."""
        h, w = self.shapes[k][image, 0], self.shapes[k][image, 1]
        y = torch.minimum(y.clamp_min(0), h - 1)
        x = torch.minimum(x.clamp_min(0), w - 1)
        return self.starts[k][image] + y * w + x

    def remapped_lum(self, k: int, to: torch.Tensor) -> torch.Tensor:
        """Layer ``k``'s luminance statistics after Welsh et al.'s luminance remapping (2002, §2) of each image
        to the global mean and deviation ``to`` (2,): ``L' = (L − μ) σ_to / σ + μ_to``."""
        image, _, _ = self.cells(k)
        mean, std = self.l_stats[image, 0], self.l_stats[image, 1].clamp_min(_EPS)
        scale = to[1] / std
        return torch.stack([(self.lum[k][:, 0] - mean) * scale + to[0], self.lum[k][:, 1] * scale], dim=1)

    def to(self, device: torch.device | str) -> Pyramid:
        return Pyramid([t.to(device) for t in self.feats], [t.to(device) for t in self.shapes],
                       [t.to(device) for t in self.starts], [t.to(device) for t in self.lum],
                       [t.to(device) for t in self.prior], self.l_stats.to(device))


@dataclass
class Match:
    """For every cell of the query's finest layer (row-major, grid ``shape``): the matched support
    ``image`` and cell ``y, x`` at that layer, the ``similarity``, whether the coarse match was
    cycle-consistent, and the prior confidence of the matched support cell."""

    shape: tuple[int, int]
    image: torch.Tensor
    y: torch.Tensor
    x: torch.Tensor
    similarity: torch.Tensor
    consistent: torch.Tensor
    prior: torch.Tensor


def _ancestors(pyr: Pyramid, k: int, j: int, image: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Rows at layer ``j ≥ k`` of the ancestors of layer-k cells (image, y, x) (each layer halves the grid)."""
    shift = j - k
    return pyr.index(j, image, y >> shift, x >> shift)


class _Similarity:
    """The similarity s(q, p) of the module docstring for one query and one support pyramid.

    The cosine matrices of the layers deeper than the finest (few cells) are computed once, in full; the
    finest layer's cosines are computed only for the candidates the local search asks for.
    """

    def __init__(self, query: Pyramid, support: Pyramid, weights: tuple[float, ...], lum_weight: float) -> None:
        self.query, self.support, self.weights, self.lum_weight = query, support, weights, lum_weight
        self.dense = {j: query.feats[j] @ support.feats[j].t() for j in range(1, query.num_layers)}
        self.lum = [support.remapped_lum(k, query.l_stats[0]) for k in range(query.num_layers)]

    def cosine(self, k: int, q_rows: torch.Tensor, image: torch.Tensor, y: torch.Tensor, x: torch.Tensor,
               s_rows: torch.Tensor) -> torch.Tensor:
        """Weighted mean over layers j ≥ k of the cosines of the query cells' and support cells' ancestors;
        the query cells ``q_rows`` (layer k) broadcast against the support cells (image, y, x / rows)."""
        q, s = self.query, self.support
        qy, qx = q_rows // q.shapes[k][0, 1], q_rows % q.shapes[k][0, 1]
        zeros = torch.zeros_like(q_rows)
        total = torch.zeros(torch.broadcast_shapes(q_rows.shape, s_rows.shape), device=s_rows.device)
        for j in range(k, q.num_layers):
            qj = _ancestors(q, k, j, zeros, qy, qx)
            sj = s_rows if j == k else _ancestors(s, k, j, image, y, x)
            if j in self.dense:
                total += self.weights[j] * self.dense[j][qj, sj]
            else:
                total += self.weights[j] * (q.feats[j][qj] * s.feats[j][sj]).sum(-1)
        return total / sum(self.weights[k:])

    def score(self, k: int, q_rows: torch.Tensor, image: torch.Tensor, y: torch.Tensor, x: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """(similarity, support row) of query cells ``q_rows`` to support cells (image, y, x) at layer k."""
        s_rows = self.support.index(k, image, y, x)
        sim = self.cosine(k, q_rows, image, y, x, s_rows)
        dlum = (self.query.lum[k][q_rows] - self.lum[k][s_rows]).abs().sum(-1)
        return sim - self.lum_weight * dlum, s_rows

    def full_search(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Exhaustive search at layer k: (best support row, cycle-consistent) per query cell."""
        q, s = self.query, self.support
        q_img, q_y, q_x = q.cells(k)
        s_img, s_y, s_x = s.cells(k)
        rows = torch.arange(len(q_img), device=q_img.device)
        s_rows = torch.arange(len(s_img), device=s_img.device)
        sim = self.cosine(k, rows[:, None], s_img[None], s_y[None], s_x[None], s_rows[None])
        score = sim - self.lum_weight * torch.cdist(q.lum[k], self.lum[k], p=1) - (1.0 - s.prior[k])[None]
        best = score.argmax(dim=1)
        back = score.argmax(dim=0)[best]  # q -> p -> q'
        consistent = ((q_y[back] - q_y).abs() <= 1) & ((q_x[back] - q_x).abs() <= 1)
        return best, consistent

    def local_search(self, k: int, parent_rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Local search at layer k from the matches ``parent_rows`` (support rows at layer k+1, one per query
        cell of layer k+1): (best support row, the parent query cell) per query cell of layer k."""
        q, s = self.query, self.support
        _, qy, qx = q.cells(k)
        rows = torch.arange(len(qy), device=qy.device)
        ph, pw = int(q.shapes[k + 1][0, 0]), int(q.shapes[k + 1][0, 1])
        s_img, s_y, s_x = s.cells(k + 1)
        zeros = torch.zeros_like(qy)
        candidates: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                ny = ((qy >> 1) + dy).clamp(0, ph - 1)
                nx = ((qx >> 1) + dx).clamp(0, pw - 1)
                m = parent_rows[q.index(k + 1, zeros, ny, nx)]
                if dy == 0 and dx == 0:  # random search, made deterministic: a ±1 jitter around the parent's match
                    for jy in (-1, 0, 1):
                        for jx in (-1, 0, 1):
                            candidates.append((s_img[m], 2 * s_y[m] + (qy & 1) + jy, 2 * s_x[m] + (qx & 1) + jx))
                else:  # propagation: the neighbour's displacement, applied to this cell
                    candidates.append((s_img[m], 2 * (s_y[m] - ny) + qy, 2 * (s_x[m] - nx) + qx))
        best_val = torch.full((len(qy),), -torch.inf, device=qy.device)
        best_row = torch.zeros(len(qy), dtype=torch.long, device=qy.device)
        for image, y, x in candidates:
            val, row = self.score(k, rows, image, y, x)
            val = val - (1.0 - s.prior[k][row])
            better = val > best_val
            best_val = torch.where(better, val, best_val)
            best_row = torch.where(better, row, best_row)
        return best_row, q.index(k + 1, zeros, qy >> 1, qx >> 1)


def match(query: Pyramid, support: Pyramid, weights: tuple[float, ...], lum_weight: float,
          coarse_layer: int = 1) -> Match:
    """Match every cell of the query's finest layer (layer 0) to the supports, coarse-to-fine from
    ``coarse_layer`` (exhaustive) down to layer 0 (local search); see the module docstring."""
    if query.num_images != 1:
        raise ValueError(f"match: the query pyramid must hold one image, got {query.num_images}")
    if len(weights) != query.num_layers or support.num_layers != query.num_layers:
        raise ValueError(f"match: {len(weights)} weights for {query.num_layers} query / {support.num_layers} "
                         f"support layers")
    if not 0 <= coarse_layer < query.num_layers:
        raise ValueError(f"coarse_layer must be in [0, {query.num_layers - 1}], got {coarse_layer}")
    sim = _Similarity(query, support, weights, lum_weight)
    rows, consistent = sim.full_search(coarse_layer)
    for k in range(coarse_layer - 1, -1, -1):
        rows, parent = sim.local_search(k, rows)
        consistent = consistent[parent]
    q_rows = torch.arange(query.feats[0].shape[0], device=rows.device)
    image, y, x = (t[rows] for t in support.cells(0))
    similarity, _ = sim.score(0, q_rows, image, y, x)
    h, w = (int(v) for v in query.shapes[0][0])
    return Match((h, w), image, y, x, similarity, consistent, support.prior[0][rows])


def attend(query: Pyramid, support: Pyramid, weights: tuple[float, ...], lum_weight: float, layer: int,
           temperature: float, top_k: int, chunk: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft correspondence at ``layer``: for every query cell of that layer, its ``top_k`` best support cells
    (rows) and their weights ``softmax(s / temperature)`` over those ``top_k`` (s: the similarity of the module
    docstring, less the support cell's ``1 − c`` prior penalty) — the attention warp of Zhang et al., "Deep
    Exemplar-based Video Colorization" (CVPR 2019, §3.1: softmax over the correlation, temperature 0.01),
    here over several supports' cells and truncated to the ``top_k`` best. Exhaustive, ``chunk`` query cells
    at a time (memory: a few ``chunk`` × support-cells matrices). Returns (rows, weights), both (Nq, top_k)."""
    if query.num_images != 1:
        raise ValueError(f"attend: the query pyramid must hold one image, got {query.num_images}")
    if temperature <= 0:
        raise ValueError(f"attend: temperature must be > 0, got {temperature}")
    deeper = range(layer + 1, query.num_layers)
    q_img, q_y, q_x = query.cells(layer)
    s_img, s_y, s_x = support.cells(layer)
    # the deeper layers' cosine matrices are small: computed once, read at the cells' ancestors
    dense = {j: query.feats[j] @ support.feats[j].t() for j in deeper}
    s_rows = {j: _ancestors(support, layer, j, s_img, s_y, s_x) for j in deeper}
    s_lum = support.remapped_lum(layer, query.l_stats[0])
    penalty = (1.0 - support.prior[layer])[None]
    k = min(top_k, len(s_img))
    rows_out, weights_out = [], []
    for start in range(0, len(q_img), chunk):
        part = slice(start, start + chunk)
        cos = weights[layer] * (query.feats[layer][part] @ support.feats[layer].t())
        for j in deeper:  # fine matches must agree semantically too
            q_rows = _ancestors(query, layer, j, q_img[part], q_y[part], q_x[part])
            cos += weights[j] * dense[j][q_rows][:, s_rows[j]]
        score = cos / sum(weights[layer:]) - lum_weight * torch.cdist(query.lum[layer][part], s_lum, p=1) - penalty
        top, idx = score.topk(k, dim=1)
        rows_out.append(idx)
        weights_out.append(torch.softmax(top / temperature, dim=1))
    return torch.cat(rows_out), torch.cat(weights_out)
