"""Cluster tasks for MetalGAN: image descriptors → PCA → K-means; every cluster is a task.

MetalGAN (Fontanini et al., ICIAP 2019, §3.1) describes each training image by the MAC descriptor
(Tolias et al. 2016) of a pretrained backbone layer, reduces it with PCA to 512 dimensions and
clusters the result with K-means (k = 64); a cluster ``K(q)`` is the task of every image in it.
This module is backbone-free (``data/`` sits above ``backbones/``): it takes the descriptors as a
tensor. :func:`fewcolor.backbones.clustering.cluster_dataset` computes them with a backbone and caches
the result.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from fewcolor.data.protocol import Dataset

__all__ = ["ClusterTasks", "fit_pca", "fit_tasks", "kmeans", "write_cluster_report"]

log = logging.getLogger(__name__)


@dataclass
class ClusterTasks:
    """K-means tasks in a PCA space of image descriptors.

    ``pca_mean`` (D,) and ``pca_components`` (d, D) project a descriptor ``x`` to ``(x - mean) @ Cᵀ``;
    ``centroids`` (k, d) live in that space; ``assignments`` (N,) is the cluster of each training image.
    """

    centroids: torch.Tensor
    pca_mean: torch.Tensor
    pca_components: torch.Tensor
    assignments: torch.Tensor
    info: dict[str, Any] = field(default_factory=dict)  #: backbone, layer, seed... (JSON)

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """Descriptors (B, D) → PCA coordinates (B, d)."""
        f = features.to(self.pca_mean)
        return (f - self.pca_mean) @ self.pca_components.T

    def assign(self, features: torch.Tensor) -> torch.Tensor:
        """The nearest centroid (Euclidean, in PCA space) of each descriptor (B, D) → (B,) long."""
        return torch.cdist(self.project(features), self.centroids).argmin(dim=1)

    def task_indices(self, k: int) -> list[int]:
        """Indices of the training images in cluster ``k``."""
        if not 0 <= k < self.k:
            raise IndexError(f"cluster {k} out of range: there are {self.k} clusters")
        return torch.nonzero(self.assignments == k).flatten().tolist()

    def counts(self) -> list[int]:
        return torch.bincount(self.assignments, minlength=self.k).tolist()

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, torch.Tensor], info: Mapping[str, Any]) -> ClusterTasks:
        """The inverse of :meth:`tensors` (with ``info``)."""
        return cls(tensors["centroids"], tensors["pca_mean"], tensors["pca_components"],
                   tensors["assignments"].long(), dict(info))

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"centroids": self.centroids, "pca_mean": self.pca_mean, "pca_components": self.pca_components,
                "assignments": self.assignments}


def fit_pca(x: torch.Tensor, n_components: int) -> tuple[torch.Tensor, torch.Tensor]:
    """PCA by SVD of the centred data: ``(mean (D,), components (d, D))`` with ``d = min(n, N, D)``.

    The component signs are fixed (largest-magnitude entry positive) so results do not depend on the
    SVD implementation.
    """
    x = x.double()
    mean = x.mean(dim=0)
    _, _, vh = torch.linalg.svd(x - mean, full_matrices=False)
    d = min(n_components, vh.shape[0])
    comps = vh[:d]
    signs = torch.sign(comps.gather(1, comps.abs().argmax(dim=1, keepdim=True)))
    comps = comps * torch.where(signs == 0, torch.ones_like(signs), signs)
    return mean.float(), comps.float()


def kmeans(x: torch.Tensor, k: int, seed: int = 0, n_init: int = 10, max_iter: int = 300
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """K-means (k-means++ init, Lloyd iterations, best of ``n_init``): ``(centroids (k,d), labels (N,))``."""
    from sklearn.cluster import KMeans

    n = x.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"cannot make {k} clusters from {n} images; choose k between 1 and {n}")
    km = KMeans(n_clusters=k, n_init=n_init, max_iter=max_iter, random_state=seed)
    labels = km.fit_predict(x.double().numpy())
    return torch.from_numpy(km.cluster_centers_).float(), torch.from_numpy(labels).long()


def fit_tasks(features: torch.Tensor, k: int, pca_dim: int = 512, seed: int = 0,
              info: Mapping[str, Any] | None = None) -> ClusterTasks:
    """Descriptors (N, D) → PCA to ``pca_dim`` → K-means with ``k`` clusters (MetalGAN §3.1)."""
    if features.ndim != 2:
        raise ValueError(f"expected descriptors shaped (N, D), got {tuple(features.shape)}")
    mean, comps = fit_pca(features, pca_dim)
    z = (features.float() - mean) @ comps.T
    centroids, labels = kmeans(z, k, seed=seed)
    meta = {"k": k, "pca_dim": int(comps.shape[0]), "seed": seed, **(info or {})}
    return ClusterTasks(centroids, mean, comps, labels, meta)


# ------------------------------------------------------------------------------------ contact sheet
def write_cluster_report(tasks: ClusterTasks, dataset: Dataset, out_dir: str | os.PathLike[str],
                         per_row: int = 8, thumb: int = 64, seed: int = 0) -> Path:
    """Write ``assignments.csv``, ``clusters.json`` and ``index.html`` (a row of samples per cluster,
    MetalGAN Fig. 2) into ``out_dir``; returns the page's path.

    ``dataset`` is the clustered dataset (``paths`` are used for names when present; images come from
    ``dataset.read(i)`` when it exists, else ``dataset[i]["rgb"]``). Samples are drawn with ``seed``.
    """
    import csv

    import torch.nn.functional as F

    from fewcolor.io.atomic import atomic_path, write_text_atomic
    from fewcolor.io.html import ImageCell, Page

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names: Sequence[str] = getattr(dataset, "paths", None) or [str(i) for i in range(len(tasks.assignments))]
    # surrogateescape writes a non-UTF-8 file name back as its original bytes, so each row names its file.
    with atomic_path(out / "assignments.csv") as tmp, tmp.open("w", newline="", encoding="utf-8",
                                                               errors="surrogateescape") as f:
        w = csv.writer(f)
        w.writerow(["index", "path", "cluster"])
        for i, c in enumerate(tasks.assignments.tolist()):
            w.writerow([i, names[i], c])
    members = {c: tasks.task_indices(c) for c in range(tasks.k)}
    summary = {"info": tasks.info, "k": tasks.k, "counts": tasks.counts(),
               "clusters": {str(c): [names[i] for i in idx] for c, idx in members.items()}}
    write_text_atomic(out / "clusters.json", json.dumps(summary, indent=2))

    def thumbnail(i: int) -> torch.Tensor:
        rgb = dataset.read(i) if hasattr(dataset, "read") else dataset[i]["rgb"]
        scale = thumb / max(rgb.shape[-2:])
        size = (max(1, round(rgb.shape[-2] * scale)), max(1, round(rgb.shape[-1] * scale)))
        return F.interpolate(rgb[None].float(), size=size, mode="bilinear", antialias=True,
                             align_corners=False)[0].clamp(0, 1)

    g = torch.Generator().manual_seed(seed)
    page = Page(out / "index.html", f"{tasks.k} cluster tasks")
    page.paragraph(f"{len(tasks.assignments)} images; " + ", ".join(f"{k}={v}" for k, v in tasks.info.items()
                                                                   if not isinstance(v, (dict, list))))
    rows, labels = [], []
    for c, idx in members.items():
        pick = [idx[j] for j in torch.randperm(len(idx), generator=g)[:per_row].tolist()]
        cells: list[ImageCell | str | None] = [ImageCell(thumbnail(i), Path(names[i]).name) for i in pick]
        rows.append(cells + [None] * (per_row - len(cells)))
        labels.append(f"cluster {c} ({len(idx)})")
    page.image_table([f"sample {j + 1}" for j in range(per_row)], rows, row_labels=labels)
    return page.write()
