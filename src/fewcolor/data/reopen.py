"""Finding a model's training images again from the root and relative paths its checkpoint recorded
(MetalGAN adapts to a query's cluster at test time — this project's extension — so it needs them after training)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from fewcolor.data.folder import ImageFolderDataset


class ImagesUnreachable(FileNotFoundError):
    """The recorded training images cannot be read here; the message says why and what to do."""


def reopen_images(root: str | None, paths: Sequence[str] | None,
                  transform: Callable[..., torch.Tensor] | None, seed: int = 0) -> ImageFolderDataset:
    """The recorded images that are still on disk, as a dataset (grey images kept: they were chosen).

    Raises :class:`ImagesUnreachable` when nothing was recorded (an in-memory training set) or none of
    the files is under ``root`` any more.
    """
    if root is None or paths is None:
        raise ImagesUnreachable("the checkpoint does not say where its training images are (trained on an "
                                "in-memory dataset)")
    base = Path(root)
    reachable = [p for p in paths if (base / p).is_file()]
    if not reachable:
        raise ImagesUnreachable(f"the training images under {base} are not reachable (copy the data there)")
    return ImageFolderDataset(base, paths=reachable, transform=transform, skip_grey=False, seed=seed)
