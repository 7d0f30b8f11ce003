"""fewcolor.data.splits: split-file format and deterministic (stratified) splitting."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from fewcolor.data.splits import make_splits, read_split, write_split


def test_write_then_read_roundtrip_with_header(tmp_path: Path) -> None:
    paths = ["b/2.png", Path("a") / "1.png", "c.jpg"]
    f = write_split(tmp_path / "sub" / "train.txt", paths, header="train split\nseed 0")
    text = f.read_text()
    assert text.startswith("# train split\n# seed 0\n") and text.endswith("c.jpg\n")
    assert read_split(f) == ["b/2.png", "a/1.png", "c.jpg"]


def test_read_skips_comments_and_blank_lines(tmp_path: Path) -> None:
    f = tmp_path / "s.txt"
    f.write_text("# comment\n\n  a/x.png  \n./b/y.png\n   # indented comment\n")
    assert read_split(f) == ["a/x.png", "b/y.png"]


@pytest.mark.parametrize(
    ("line", "message"),
    [("a\\b.png", "backslashes"), ("/abs/x.png", "absolute"), ("../x.png", r"'\.\.'"),
     ("C:/x.png", "absolute")],
)
def test_read_refuses_non_portable_paths(tmp_path: Path, line: str, message: str) -> None:
    f = tmp_path / "s.txt"
    f.write_text(f"ok.png\n{line}\n")
    with pytest.raises(ValueError, match=message) as info:
        read_split(f)
    assert "s.txt:2" in str(info.value)


def test_read_refuses_duplicates_and_missing_file(tmp_path: Path) -> None:
    f = tmp_path / "s.txt"
    f.write_text("a.png\nb.png\na.png\n")
    with pytest.raises(ValueError, match="listed twice"):
        read_split(f)
    with pytest.raises(FileNotFoundError, match=r"nope\.txt"):
        read_split(tmp_path / "nope.txt")


def test_make_splits_is_deterministic_partition_with_exact_counts() -> None:
    paths = [f"img{i:03d}.png" for i in range(101)]
    fr = {"train": 0.8, "val": 0.1, "test": 0.1}
    a = make_splits(paths, fr, seed=3)
    assert a == make_splits(list(reversed(paths)), fr, seed=3)  # input order does not matter
    assert a != make_splits(paths, fr, seed=4)
    assert [len(a[k]) for k in fr] == [81, 10, 10]  # largest remainder: 80.8 -> 81
    assert sorted(a["train"] + a["val"] + a["test"]) == paths


def test_make_splits_stratified_keeps_class_proportions() -> None:
    paths = [f"{c}/{i}.png" for c in "abc" for i in range(10)]
    labels = [p[0] for p in paths]
    out = make_splits(paths, {"train": 0.6, "test": 0.4}, seed=0, stratify_by=labels)
    assert Counter(p[0] for p in out["train"]) == {"a": 6, "b": 6, "c": 6}
    assert Counter(p[0] for p in out["test"]) == {"a": 4, "b": 4, "c": 4}


def test_make_splits_checks_arguments() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        make_splits(["a"], {"train": 0.5, "test": 0.4})
    with pytest.raises(ValueError, match="labels"):
        make_splits(["a", "b"], {"train": 1.0}, stratify_by=[0])
    with pytest.raises(ValueError, match="duplicates"):
        make_splits(["a", "a"], {"train": 1.0})
