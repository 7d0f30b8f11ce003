"""What fewcolor needs of a dataset (a structural type: any object with these methods qualifies)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from torch.utils.data import default_collate


class Dataset(Protocol):
    """A sized, indexable set of samples.

    ``dataset[i]`` is the sample dict of docs/ARCHITECTURE.md (``rgb``, ``l``, ``ab``, ``label``,
    ``index``, ``path``). :class:`fewcolor.data.folder.ImageFolderDataset` is the usual one; tests use
    in-memory tensors. Optional extras that some users look for with ``getattr``: ``root`` and ``paths``
    (a folder dataset: caches are keyed by them and MetalGAN finds its images again), ``read(i)`` (the
    untransformed image), ``labels`` and ``collate(indices)`` (a batch built faster than from the samples:
    :func:`collate`).
    """

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> dict[str, Any]: ...


def collate(dataset: Dataset, indices: Sequence[int]) -> dict[str, Any]:
    """The batch of samples ``indices``: the dataset's own ``collate`` where it has one (batched work, e.g.
    :meth:`fewcolor.data.folder.ImageFolderDataset.collate`), else ``default_collate`` of its samples."""
    own = getattr(dataset, "collate", None)
    if own is not None:
        return own(indices)
    return default_collate([dataset[i] for i in indices])


def dataset_labels(dataset: Dataset) -> list[int]:
    """Every sample's class label: the dataset's ``labels`` list when it has one of the right length (a
    folder's first-level subfolders), else each sample's ``"label"`` (reads every sample)."""
    labels = getattr(dataset, "labels", None)
    if labels is not None and len(labels) == len(dataset):
        return [int(x) for x in labels]
    return [int(dataset[i]["label"]) for i in range(len(dataset))]
