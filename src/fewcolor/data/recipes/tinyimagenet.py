"""``tinyimagenet-fs``: Tiny-ImageNet-200 (64², 100 train + 50 val images per class) for few-shot tests.

Classes are permuted with ``random.Random(0)`` (from their sorted wnids) and cut 128 meta-train /
32 meta-val / 40 meta-test; grey images (:func:`fewcolor.data.grey.is_grey`) are dropped. The prepared
layout is ``train/<wnid>/<file>.JPEG`` and ``val/<wnid>/<file>.JPEG`` (JPEG bytes copied unchanged) plus
``classes.tsv`` (wnid → names from ``words.txt``). Split files list those relative paths.
"""

from __future__ import annotations

import random

from fewcolor.data.grey import is_grey
from fewcolor.data.recipes._common import BuildContext, Recipe, Splits
from fewcolor.data.recipes._sources import shared_tarball
from fewcolor.data.recipes._tar import iter_tar
from fewcolor.io.atomic import write_text_atomic
from fewcolor.io.image import read_rgb

NAME = "tinyimagenet-fs"
TARBALL = "tinyimagenet-fs100.tar.gz"
SPLIT_NAMES = ("meta_train", "meta_val", "meta_test")
CUTS = {"meta_train": 128, "meta_val": 32, "meta_test": 40}
CLASS_SEED = 0
# smoke: a few classes of each split, a few images of each class folder
SMOKE_CLASSES = {"meta_train": 4, "meta_val": 1, "meta_test": 2}
SMOKE_PER_FOLDER = 10


def class_splits(wnids: list[str], seed: int = CLASS_SEED) -> dict[str, list[str]]:
    """Permute the sorted wnids with ``random.Random(seed)`` and cut them 128 / 32 / 40."""
    if len(wnids) != sum(CUTS.values()):
        raise ValueError(f"{NAME}: expected {sum(CUTS.values())} classes, found {len(wnids)}")
    order = sorted(wnids)
    random.Random(seed).shuffle(order)
    out, start = {}, 0
    for split in SPLIT_NAMES:
        out[split] = sorted(order[start:start + CUTS[split]])
        start += CUTS[split]
    return out


def class_of(rel: str) -> str:
    """``train/<wnid>/<file>`` → ``<wnid>``."""
    return rel.split("/")[1]


def _archive_rel(member: str, val_labels: dict[str, str]) -> str | None:
    """The prepared relative path of an archive member, or ``None`` when it is not an image we keep."""
    parts = member.split("/")
    if len(parts) == 4 and parts[0] == "train" and parts[2] == "images":
        return f"train/{parts[1]}/{parts[3]}"
    if len(parts) == 3 and parts[:2] == ["val", "images"] and parts[2] in val_labels:
        return f"val/{val_labels[parts[2]]}/{parts[2]}"
    return None


def build(ctx: BuildContext) -> Splits:
    tarball = shared_tarball(TARBALL, ctx.source)
    split_of_class: dict[str, str] | None = None
    wanted_files: set[str] | None = None
    if ctx.wanted is not None:
        split_of_class = {class_of(p): s for s, paths in ctx.wanted.items() for p in paths}
        if ctx.smoke:  # read only the listed members: a smoke prep touches a few hundred files
            wanted_files = {p for paths in ctx.wanted.values() for p in paths}

    def keep(rel: str) -> bool:
        if wanted_files is not None:
            return rel in wanted_files
        return split_of_class is None or class_of(rel) in split_of_class

    val_labels: dict[str, str] = {}
    pending_val: dict[str, bytes] = {}  # val images met before val_annotations.txt (not in this archive)
    words: dict[str, str] = {}
    kept: list[str] = []
    grey: list[str] = []

    def store(rel: str, data: bytes) -> None:
        path = ctx.out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if is_grey(read_rgb(path)):
            path.unlink()
            grey.append(rel)
        else:
            kept.append(rel)

    for member, read in iter_tar(tarball, desc=f"{NAME}: {tarball.name}"):
        if member == "val/val_annotations.txt":
            for line in read().decode("utf-8").splitlines():
                fields = line.split("\t")
                if len(fields) >= 2:
                    val_labels[fields[0]] = fields[1]
            continue
        if member == "words.txt":
            for line in read().decode("utf-8").splitlines():
                wnid, _, names = line.partition("\t")
                words[wnid] = names.strip()
            continue
        if member.startswith("val/images/") and not val_labels:
            pending_val[member] = read()
            continue
        rel = _archive_rel(member, val_labels)
        if rel is not None and keep(rel):
            store(rel, read())
    for member, data in pending_val.items():
        rel = _archive_rel(member, val_labels)
        if rel is not None and keep(rel):
            store(rel, data)

    if split_of_class is None:  # --write-splits: the classes are those of the train folder
        cut = class_splits(sorted({class_of(r) for r in kept + grey if r.startswith("train/")}))
        split_of_class = {c: s for s, classes in cut.items() for c in classes}
    produced: Splits = {s: [] for s in SPLIT_NAMES}
    for rel in kept:
        if class_of(rel) in split_of_class:
            produced[split_of_class[class_of(rel)]].append(rel)
    classes = sorted({class_of(r) for r in kept})
    write_text_atomic(ctx.out_dir / "classes.tsv", "".join(f"{c}\t{words.get(c, '')}\n" for c in classes))
    ctx.stats.update(images_read=len(kept) + len(grey), grey_removed=len(grey), images=len(kept),
                     classes=len(classes))
    return {s: sorted(v) for s, v in produced.items()}


def smoke_subset(splits: Splits) -> Splits:
    out: Splits = {}
    for split, paths in splits.items():
        classes = sorted({class_of(p) for p in paths})[: SMOKE_CLASSES[split]]
        per_folder: dict[tuple[str, str], int] = {}
        chosen = []
        for p in sorted(paths):
            key = (class_of(p), p.split("/")[0])
            if key[0] in classes and per_folder.get(key, 0) < SMOKE_PER_FOLDER:
                per_folder[key] = per_folder.get(key, 0) + 1
                chosen.append(p)
        out[split] = chosen
    return out


def split_header(split: str) -> str:
    return (f"{NAME} {split}: {CUTS[split]} Tiny-ImageNet classes (sorted wnids permuted with "
            f"random.Random({CLASS_SEED}), cut 128/32/40);\n"
            "grey images removed (fewcolor.data.grey.is_grey). Paths are relative to the prepared folder.")


RECIPE = Recipe(NAME, "Tiny-ImageNet-200 64², 128/32/40 meta-train/val/test classes", SPLIT_NAMES, build,
                smoke_subset, split_header)
