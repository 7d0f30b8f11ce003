"""Small static HTML pages of image tables (demo, evaluation reports, contact sheets, galleries).

Images are written as PNG files in ``<page stem>_files/`` beside the page and linked relatively,
so a page folder can be moved or zipped as a whole. A page written again replaces its earlier images
(``imgNNNNN.png`` in that folder: none is left from a longer earlier version); commands refuse an existing
page or image folder unless told to overwrite.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from fewcolor.io.atomic import write_text_atomic

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:1em 0}
td,th{padding:4px 8px;text-align:center;border-bottom:1px solid #ddd;font-size:13px;vertical-align:top}
th{background:#f4f4f4}
img{image-rendering:auto;max-width:256px}
.cap{font-size:11px;color:#555;max-width:256px;word-break:break-all}
.num{text-align:right;font-variant-numeric:tabular-nums}
"""


_IMAGE_NAME = re.compile(r"img\d{5}\.png")


def companion_folder(page: str | Path) -> Path:
    """The folder of a page's images: ``<page stem>_files/`` beside it."""
    page = Path(page)
    return page.parent / f"{page.stem}_files"


@dataclass
class ImageCell:
    image: torch.Tensor  #: (3,H,W) in [0,1]
    caption: str = ""


@dataclass
class Page:
    """Build a page from sections: headings, paragraphs, number tables and image tables."""

    path: Path
    title: str
    parts: list[str] = field(default_factory=list)
    _count: int = 0

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.files_dir = companion_folder(self.path)

    def heading(self, text: str, level: int = 2) -> None:
        self.parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def paragraph(self, text: str) -> None:
        self.parts.append(f"<p>{html.escape(text)}</p>")

    def preformatted(self, text: str) -> None:
        self.parts.append(f"<pre>{html.escape(text)}</pre>")

    def number_table(self, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        body = "".join(
            "<tr>" + "".join(f"<td class=num>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>" for row in rows
        )
        self.parts.append(f"<table><tr>{head}</tr>{body}</table>")

    def _save(self, image: torch.Tensor) -> str:
        from fewcolor.io.image import write_rgb

        if self._count == 0:
            self._remove_earlier_images()
        self._count += 1
        name = f"img{self._count:05d}.png"
        write_rgb(self.files_dir / name, image.detach().float().cpu().clamp(0, 1))
        return f"{self.files_dir.name}/{name}"

    def _remove_earlier_images(self) -> None:
        """An earlier version of this page may have left more images than this one writes: they go."""
        if self.files_dir.is_dir():
            for old in self.files_dir.iterdir():
                if _IMAGE_NAME.fullmatch(old.name) and old.is_file():
                    old.unlink()

    def image_table(
        self, header: Sequence[str], rows: Sequence[Sequence[ImageCell | str | None]], row_labels: Sequence[str] = ()
    ) -> None:
        """A table whose cells are images (with captions), text, or empty."""
        head = ("<th></th>" if row_labels else "") + "".join(f"<th>{html.escape(h)}</th>" for h in header)
        out = [f"<table><tr>{head}</tr>"]
        for i, row in enumerate(rows):
            cells = [f"<th>{html.escape(row_labels[i])}</th>"] if row_labels else []
            for cell in row:
                if cell is None:
                    cells.append("<td></td>")
                elif isinstance(cell, str):
                    cells.append(f"<td>{html.escape(cell)}</td>")
                else:
                    src = self._save(cell.image)
                    cap = f"<div class=cap>{html.escape(cell.caption)}</div>" if cell.caption else ""
                    cells.append(f'<td><img src="{src}" alt="{html.escape(cell.caption)}">{cap}</td>')
            out.append("<tr>" + "".join(cells) + "</tr>")
        out.append("</table>")
        self.parts.append("".join(out))

    def write(self) -> Path:
        if self._count == 0:  # a page without images: none of an earlier version's is left either
            self._remove_earlier_images()
        doc = (
            f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(self.title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(self.title)}</h1>"
            + "\n".join(self.parts)
            + "</body></html>"
        )
        write_text_atomic(self.path, doc)
        return self.path


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
