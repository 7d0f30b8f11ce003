"""A folder of links to N seeded images of the Tiny-ImageNet meta-val classes, to tune inference settings on.

    python scripts/metaval_subset.py METAVAL500 --count 500

The meta-val classes (``tinyimagenet-fs``'s 32 of 200) are in no benchmark's test episodes and in none of
the base colorizer's training data, so settings chosen on them (the annealed-mean temperature, the chroma
scale: docs/MODEL_CARD.md) are not tuned on what the benchmarks score. The split's files (train and val
images of those classes) are shuffled with ``random.Random(seed)`` and the first ``count`` linked as
``OUT/<wnid>/<file>`` (class folders, as ``fewcolor evaluate --data`` reads them). Needs the prepared
dataset (``fewcolor data prepare tinyimagenet-fs``); OUT must not exist yet.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from fewcolor.data.recipes import dataset_dir, is_prepared, recipe_splits


def seeded_subset(files: list[str], count: int, seed: int) -> list[str]:
    """The first ``count`` of ``files`` after a ``random.Random(seed)`` shuffle (the input is not changed)."""
    shuffled = list(files)
    random.Random(seed).shuffle(shuffled)
    return shuffled[:count]


def link_subset(root: Path, chosen: list[str], out: Path) -> int:
    """Link each relative path of ``root`` as ``out/<class folder>/<file name>``; returns how many."""
    for rel in chosen:
        parts = Path(rel).parts  # train/<wnid>/<file> or val/<wnid>/<file>
        target = out / parts[1] / parts[-1]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(root / rel)
    return len(chosen)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to create (must not exist)")
    parser.add_argument("--count", type=int, default=500, help="images to link (default 500)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the shuffle (default 0)")
    args = parser.parse_args(argv)
    if args.out.exists():
        print(f"error: {args.out} exists; give a new folder", file=sys.stderr)
        return 2
    if not is_prepared("tinyimagenet-fs"):
        print("error: tinyimagenet-fs is not prepared: run `fewcolor data prepare tinyimagenet-fs` first",
              file=sys.stderr)
        return 2
    files = list(recipe_splits("tinyimagenet-fs")["meta_val"])
    n = link_subset(dataset_dir("tinyimagenet-fs", False, None), seeded_subset(files, args.count, args.seed),
                    args.out)
    print(f"{n} meta-val images linked under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
