"""What a MemoPainter model's colour memory holds for a query (``fewcolor memory inspect``)."""

from __future__ import annotations

from pathlib import Path

import torch

from fewcolor.color.feature_kinds import feature_swatch
from fewcolor.color.lab import grey_rgb_from_l, merge_l_ab
from fewcolor.color.normalize import denormalize_ab, denormalize_l
from fewcolor.io.html import ImageCell, Page
from fewcolor.methods.base import InferenceOptionError
from fewcolor.methods.memopainter import EMPTY_MEMORY, MemoPainter
from fewcolor.pipeline import network_input


def memory_page(method: MemoPainter, rgb: torch.Tensor, path: str | Path, top_k: int = 8,
                size: int | None = None) -> Path:
    """Write an HTML page with a query image and its top-``k`` memory slots: each slot's colour feature
    drawn as a swatch, its similarity, and which training image wrote it (``fewcolor memory inspect``)."""
    if not method.config.memory:
        raise InferenceOptionError(f"{method.name} model has no memory to inspect (memory=False)")
    if method.memory.num_filled == 0:  # retrieve()'s message would offer a palette, which this page cannot take
        raise InferenceOptionError(f"{EMPTY_MEMORY}; until then it has nothing to inspect")
    l = network_input(rgb, size or method.config.image_size, method.size_multiple).to(method.device)
    method.eval()
    with torch.no_grad():
        values, sims, slots = method.retrieve(l, top_k)
        outs = method.predict_variants(l, top_k)
    page = Page(Path(path), f"MemoPainter memory: top-{values.shape[1]} slots")
    page.paragraph(f"{method.memory.num_filled} of {method.memory.slots} slots filled; colour feature "
                   f"{method.config.color_feature}; query backbone {method.backbone_choice}.")
    query_cells = [ImageCell(rgb.float().clamp(0, 1), "query"),
                   ImageCell(grey_rgb_from_l(denormalize_l(l[0].cpu())), "grey input")]
    page.image_table(["query", "grey"], [query_cells])
    rows: list[list[ImageCell | str | None]] = []
    for i in range(values.shape[1]):
        slot = int(slots[0, i])
        out = merge_l_ab(denormalize_l(l[0].cpu()), denormalize_ab(outs[i, 0].cpu()))
        rows.append([f"{i + 1}", f"slot {slot}", f"{float(sims[0, i]):.4f}",
                     f"image {int(method.memory.sources[slot])}, class {int(method.memory.labels[slot])}",
                     ImageCell(feature_swatch(values[0, i].cpu(), method.config.color_feature), "colour feature"),
                     ImageCell(out, f"coloured with slot {slot}")])
    page.image_table(["rank", "slot", "similarity", "written by", "swatch", "colouring"], rows)
    return page.write()
