"""The evaluation report: thumbnails of the first and the worst images, and report.html."""

from __future__ import annotations

import heapq
import json
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from fewcolor.color.lab import grey_rgb_from_l, rgb_to_l
from fewcolor.io.html import ImageCell, Page

THUMB = 128

Thumbs = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def thumbnail(img: torch.Tensor, side: int = THUMB) -> torch.Tensor:
    """(3,H,W) scaled down so its longer side is at most ``side`` (never up)."""
    h, w = img.shape[-2:]
    scale = side / max(h, w)
    if scale >= 1:
        return img.clone()
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return F.interpolate(img[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0]


def json_safe(value: object) -> object:
    """NaN and infinities as strings (JSON has none), recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


class ReportImages:
    """Keeps grey | truth | output thumbnails of the first ``grid`` images and of the ``worst`` by LPIPS."""

    def __init__(self, grid: int, worst: int) -> None:
        self.grid_size, self.worst_size = grid, worst
        self.grid: list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self._worst: list[tuple[float, int, str, torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def add(self, index: int, name: str, pred: torch.Tensor, truth: torch.Tensor, lpips: float) -> None:
        in_grid = len(self.grid) < self.grid_size
        in_worst = self.worst_size > 0 and (len(self._worst) < self.worst_size or lpips > self._worst[0][0])
        if not (in_grid or in_worst):  # the thumbnails of an image that is not shown are never made
            return
        grey = grey_rgb_from_l(rgb_to_l(truth[None]))[0]
        g, t, o = thumbnail(grey), thumbnail(truth), thumbnail(pred)
        if in_grid:
            self.grid.append((name, g, t, o))
        item = (lpips, index, name, g, t, o)
        if len(self._worst) < self.worst_size:
            heapq.heappush(self._worst, item)
        elif in_worst:
            heapq.heapreplace(self._worst, item)

    @property
    def worst(self) -> list[tuple[float, int, str, torch.Tensor, torch.Tensor, torch.Tensor]]:
        return sorted(self._worst, reverse=True)


def write_report(path: Path, result: dict[str, Any], images: ReportImages) -> Path:
    """report.html: aggregate and set-level tables, the image grid, the worst images, the protocol."""
    page = Page(path, "fewcolor evaluation")
    aggregate: dict[str, dict[str, Any]] = result["aggregate"]
    page.heading("Per-image metrics (mean and 95 % CI)")
    rows = [[m, a["mean"], a["ci95_low"] if a["ci95_low"] is not None else "-",
             a["ci95_high"] if a["ci95_high"] is not None else "-", a["n"]] for m, a in aggregate.items()]
    page.number_table(["metric", "mean", "CI low", "CI high", "n"], rows)
    page.heading("Set-level metrics")
    if result["set"].get("set_warning"):
        page.paragraph(f"Caution: {result['set']['set_warning']}.")
    set_rows = []
    for key, value in result["set"].items():
        if isinstance(value, dict):
            value = f"{value['mean']:.4g} ± {value['std']:.3g}" if value.get("available") else "unavailable"
        set_rows.append([key, "-" if value is None else value])
    page.number_table(["metric", "value"], set_rows)
    skipped: list[dict[str, str]] = result.get("skipped") or []
    if skipped:
        page.heading(f"Skipped ({len(skipped)})")
        page.image_table(["reason"], [[s["reason"]] for s in skipped], row_labels=[s["name"] for s in skipped])
    page.heading("grey | truth | output")
    page.image_table(["grey", "truth", "output"],
                     [[ImageCell(g), ImageCell(t), ImageCell(o)] for _, g, t, o in images.grid],
                     row_labels=[name for name, *_ in images.grid])
    worst = images.worst
    page.heading(f"Worst {len(worst)} by LPIPS")
    page.image_table(["grey", "truth", "output"],
                     [[ImageCell(g), ImageCell(t), ImageCell(o, f"LPIPS {lp:.3f}")]
                      for lp, _, _, g, t, o in worst],
                     row_labels=[name for _, _, name, *_ in worst])
    page.heading("Protocol")
    page.preformatted(json.dumps(json_safe(result["protocol"]), indent=2))
    return page.write()
