"""`atomic_path(replace=False)`: a file that exists, or appears while the work runs, is never replaced."""

from __future__ import annotations

import os

import pytest
import torch

from fewcolor.io.atomic import atomic_path
from fewcolor.io.image import read_rgb, write_rgb


def _leftovers(folder) -> list[str]:
    return [n for n in os.listdir(folder) if n.endswith(".tmp")]


def test_a_new_name_is_written(tmp_path):
    with atomic_path(tmp_path / "new.txt", replace=False) as tmp:
        tmp.write_text("mine")
    assert (tmp_path / "new.txt").read_text() == "mine" and _leftovers(tmp_path) == []


def test_a_file_that_appears_meanwhile_is_kept(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(FileExistsError, match="appeared while"), atomic_path(target, replace=False) as tmp:
        tmp.write_text("ours")
        target.write_text("someone else's")  # another program takes the name during the work
    assert target.read_text() == "someone else's" and _leftovers(tmp_path) == []


def test_replace_is_the_default(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"


def test_write_rgb_without_overwrite_keeps_an_existing_file(tmp_path):
    target = tmp_path / "img.png"
    write_rgb(target, torch.zeros(3, 4, 4))
    before = target.read_bytes()
    with pytest.raises(FileExistsError):
        write_rgb(target, torch.ones(3, 4, 4), overwrite=False)
    assert target.read_bytes() == before
    write_rgb(target, torch.ones(3, 4, 4))  # overwrite=True (the default) replaces it
    assert read_rgb(target).min() == 1.0


def test_colorize_file_without_overwrite_refuses_before_the_work(tmp_path, monkeypatch):
    from fewcolor.methods.registry import build_method
    from fewcolor.pipeline import Colorizer

    src, dst = tmp_path / "in.png", tmp_path / "out.png"
    write_rgb(src, torch.rand(3, 16, 16))
    dst.write_text("mine")
    colorizer = Colorizer(build_method("lut", "tiny"))

    def no_work(*args, **kwargs):
        raise AssertionError("colorized although the output exists")

    monkeypatch.setattr(Colorizer, "colorize", no_work)
    with pytest.raises(FileExistsError, match="it is kept"):
        colorizer.colorize_file(src, dst, overwrite=False)
    assert dst.read_text() == "mine"


def test_without_hard_links_a_new_name_is_written_and_an_existing_one_kept(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise PermissionError(1, "hard links not supported here")

    monkeypatch.setattr(os, "link", no_links)
    with atomic_path(tmp_path / "new.txt", replace=False) as tmp:
        tmp.write_text("mine")
    assert (tmp_path / "new.txt").read_text() == "mine"
    with pytest.raises(FileExistsError, match="it is kept"), atomic_path(tmp_path / "new.txt", replace=False) as tmp:
        tmp.write_text("other")
    assert (tmp_path / "new.txt").read_text() == "mine" and _leftovers(tmp_path) == []


def test_without_hard_links_windows_rename_refuses_in_one_step(tmp_path, monkeypatch):
    """Windows: no check-then-replace window; a name taken during the work is kept by the rename itself."""
    from fewcolor.io import atomic

    def no_links(src, dst):
        raise PermissionError(1, "hard links not supported here")

    real_replace = os.replace

    def windows_rename(src, dst):  # Windows semantics: an existing destination is refused
        if os.path.lexists(dst):
            raise FileExistsError(17, "exists", str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "link", no_links)
    monkeypatch.setattr(atomic, "RENAME_KEEPS_EXISTING", True)
    monkeypatch.setattr(os, "rename", windows_rename)
    monkeypatch.setattr(os, "replace", lambda *a: pytest.fail("replaced without a check"))
    with atomic_path(tmp_path / "new.txt", replace=False) as tmp:
        tmp.write_text("mine")
    assert (tmp_path / "new.txt").read_text() == "mine"
    target = tmp_path / "new.txt"
    with pytest.raises(FileExistsError, match="appeared while"), atomic_path(target, replace=False) as tmp:
        tmp.write_text("other")
    assert target.read_text() == "mine" and _leftovers(tmp_path) == []
