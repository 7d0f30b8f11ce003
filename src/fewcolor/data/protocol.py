"""What fewcolor needs of a dataset (a structural type: any object with these methods qualifies)."""

from __future__ import annotations

from typing import Any, Protocol


class Dataset(Protocol):
    """A sized, indexable set of samples.

    ``dataset[i]`` is the sample dict of docs/ARCHITECTURE.md (``rgb``, ``l``, ``ab``, ``label``,
    ``index``, ``path``). :class:`fewcolor.data.folder.ImageFolderDataset` is the usual one; tests use
    in-memory tensors. Optional extras that some users look for with ``getattr``: ``root`` and ``paths``
    (a folder dataset: caches are keyed by them and MetalGAN finds its images again), ``read(i)`` (the
    untransformed image) and ``labels``.
    """

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> dict[str, Any]: ...
