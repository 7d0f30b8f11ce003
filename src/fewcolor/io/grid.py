"""Image grids for sample sheets and reports."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def image_grid(
    images: Sequence[torch.Tensor], ncols: int, pad: int = 2, tile: int | None = None, fill: float = 1.0
) -> torch.Tensor:
    """Tile (3,H,W) images in [0,1] row by row into one (3,H',W') image.

    Tiles of different sizes are resized to ``tile`` (default: the first image's size).
    """
    if not images:
        raise ValueError("image_grid needs at least one image")
    h, w = (tile, tile) if tile else images[0].shape[-2:]
    nrows = -(-len(images) // ncols)
    grid = torch.full((3, nrows * (h + pad) + pad, ncols * (w + pad) + pad), fill)
    for i, img in enumerate(images):
        img = img.detach().float().cpu()
        if img.shape[0] == 1:
            img = img.expand(3, -1, -1)
        if img.shape[-2:] != (h, w):
            img = F.interpolate(img[None], size=(h, w), mode="bilinear", align_corners=False, antialias=True)[0]
        r, c = divmod(i, ncols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[:, y : y + h, x : x + w] = img.clamp(0, 1)
    return grid
