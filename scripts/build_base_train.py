"""Assemble the base colorizer's training folder from the offline data (symbolic links, nothing copied).

    python scripts/build_base_train.py [--shared ../shared/data]

Sources (docs/MODEL_CARD.md): Imagenette train (all 10 classes; none is a Tiny-ImageNet class), the
Tiny-ImageNet meta-train split of tinyimagenet-fs (never its meta-val/meta-test classes), and the Flowers-12
train split (never its test images). Tiny-ImageNet and Flowers-12 are prepared with `fewcolor data prepare`
first (this script runs it); Imagenette is unpacked from its archive into $FEWCOLOR_HOME/raw.
Result: $FEWCOLOR_HOME/datasets/base-train/{imagenette,tinyimagenet,flowers12}/<class>/<image>, and the same
images one level flatter in $FEWCOLOR_HOME/datasets/base-train-classes/<source>-<class>/<image>: a training
folder's labels are its first-level subfolders, so there a method that learns from labels (Iizuka et al.'s
classification loss) gets the ~150 real classes instead of the three sources.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
from pathlib import Path

from fewcolor.data.splits import read_split
from fewcolor.home import fewcolor_home

SPLITS = Path(__file__).resolve().parents[1] / "src" / "fewcolor" / "data" / "splits"


def link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.is_symlink():
        dst.symlink_to(src)


def class_view(tree: Path, view: Path) -> int:
    """Link every image of ``tree/<source>/<class>/<image>`` as ``view/<source>-<class>/<image>``; the count."""
    count = 0
    for image in sorted(tree.glob("*/*/*")):
        source, cls = image.parent.parent.name, image.parent.name
        link(image.resolve(), view / f"{source}-{cls}" / image.name)
        count += 1
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"), help="folder of the archives")
    args = parser.parse_args()
    home = fewcolor_home()
    out = home / "datasets" / "base-train"
    raw = home / "raw"
    if not (raw / "imagenette-224" / "train").is_dir():
        raw.mkdir(parents=True, exist_ok=True)
        with tarfile.open(args.shared / "imagenette-224.tar.gz") as tar:
            tar.extractall(raw, filter="data")
    for name, archive in (("tinyimagenet-fs", "tinyimagenet-fs100.tar.gz"), ("flowers12", "flowers12.tar.gz")):
        subprocess.run([sys.executable, "-m", "fewcolor", "data", "prepare", name,
                        "--source", str(args.shared / archive)], check=True)
    counts = {}
    imagenette = raw / "imagenette-224" / "train"
    files = sorted(p for p in imagenette.rglob("*") if p.is_file())
    for p in files:
        link(p, out / "imagenette" / p.relative_to(imagenette))
    counts["imagenette"] = len(files)
    for name, split, sub in (("tinyimagenet-fs", "meta_train", "tinyimagenet"), ("flowers12", "train", "flowers12")):
        root = home / "datasets" / name
        rels = read_split(SPLITS / name / f"{split}.txt")
        for rel in rels:
            parts = Path(rel).parts  # train/<class>/.../<file>
            link(root / rel, out / sub / parts[1] / parts[-1])
        counts[sub] = len(rels)
    print(f"{out}: {counts} ({sum(counts.values())} images)")
    view = home / "datasets" / "base-train-classes"
    classes_linked = class_view(out, view)
    print(f"{view}: the same {classes_linked} images, one folder per class ({len(list(view.iterdir()))} classes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
