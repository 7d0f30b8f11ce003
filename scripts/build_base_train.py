"""Assemble the base colorizer's training folder from the offline data (symbolic links, nothing copied).

    python scripts/build_base_train.py [--shared ../shared/data]

Sources (docs/MODEL_CARD.md): Imagenette train (all 10 classes; none is a Tiny-ImageNet class), the
Tiny-ImageNet meta-train split of tinyimagenet-fs (never its meta-val/meta-test classes), and the Flowers-12
train split (never its test images). Tiny-ImageNet and Flowers-12 are prepared with `fewcolor data prepare`
first (this script runs it); Imagenette is unpacked from its archive into $FEWCOLOR_HOME/raw.
Result: $FEWCOLOR_HOME/datasets/base-train/{imagenette,tinyimagenet,flowers12}/<class>/<image>.
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
