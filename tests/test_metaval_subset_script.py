"""scripts/metaval_subset.py: the seeded choice and the links it makes."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import load_script

subset = load_script("metaval_subset")


def test_the_choice_is_seeded_and_leaves_the_input_alone() -> None:
    files = [f"train/n{c:08d}/img_{i}.JPEG" for c in range(4) for i in range(10)]
    before = list(files)
    a, b = subset.seeded_subset(files, 7, 0), subset.seeded_subset(files, 7, 0)
    assert a == b and len(set(a)) == 7 and set(a) <= set(files) and files == before
    assert subset.seeded_subset(files, 7, 1) != a
    everything = subset.seeded_subset(files, 100, 0)  # more than there are: all of them, shuffled
    assert sorted(everything) == sorted(files) and everything != files and everything[:7] == a


def test_links_go_into_class_folders(tmp_path: Path) -> None:
    root = tmp_path / "data"
    rels = ["train/n01/a.JPEG", "val/n01/b.JPEG", "val/n02/c.JPEG"]
    for rel in rels:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(rel.encode())
    out = tmp_path / "out"
    assert subset.link_subset(root, rels, out) == 3
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.JPEG")) == ["n01/a.JPEG", "n01/b.JPEG", "n02/c.JPEG"]
    assert (out / "n02" / "c.JPEG").read_bytes() == b"val/n02/c.JPEG"


def test_an_existing_output_folder_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert subset.main([str(tmp_path)]) == 2
    assert "exists" in capsys.readouterr().err
