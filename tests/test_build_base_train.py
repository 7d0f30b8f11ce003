"""scripts/build_base_train.py: the per-class view of the base training folder."""

from __future__ import annotations

from pathlib import Path

from helpers import load_script


def test_class_view_links_each_image_under_source_and_class(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    tree = tmp_path / "base-train"
    build = load_script("build_base_train")
    names = {("imagenette", "n01440764", "a.JPEG"), ("imagenette", "n02102040", "a.JPEG"),
             ("tinyimagenet", "n01443537", "b.JPEG")}
    for source, cls, name in names:
        target = store / f"{source}-{cls}-{name}"
        target.write_bytes(source.encode())
        build.link(target, tree / source / cls / name)
    view = tmp_path / "view"
    assert build.class_view(tree, view) == 3
    assert build.class_view(tree, view) == 3  # again: the links are kept, nothing doubled
    assert sorted(p.name for p in view.iterdir()) == ["imagenette-n01440764", "imagenette-n02102040",
                                                     "tinyimagenet-n01443537"]
    linked = view / "imagenette-n02102040" / "a.JPEG"
    assert linked.is_symlink() and linked.resolve() == (store / "imagenette-n02102040-a.JPEG").resolve()
    assert linked.read_bytes() == b"imagenette"
