"""`io.html.Page`: a page written again leaves none of its earlier images; other files are kept."""

from __future__ import annotations

import torch

from fewcolor.io.html import ImageCell, Page, companion_folder


def _page(path, images: int) -> None:
    page = Page(path, "t")
    if images:
        page.image_table(["a"], [[ImageCell(torch.full((3, 4, 4), i / 4))] for i in range(images)])
    page.write()


def test_a_rewritten_page_keeps_only_its_own_images(tmp_path):
    path = tmp_path / "report.html"
    folder = companion_folder(path)
    assert folder == tmp_path / "report_files"
    _page(path, 3)
    (folder / "notes.txt").write_text("mine")
    assert sorted(p.name for p in folder.glob("*.png")) == ["img00001.png", "img00002.png", "img00003.png"]
    _page(path, 1)
    assert sorted(p.name for p in folder.glob("*.png")) == ["img00001.png"]
    _page(path, 0)
    assert list(folder.glob("*.png")) == [] and (folder / "notes.txt").read_text() == "mine"
    assert "img00001" not in path.read_text()
