"""Copy a training folder as downsized JPEGs in parts of at most ``--part-mib`` each, for a lent GPU machine.

    python scripts/pack_train_folder.py ~/.cache/fewcolor/datasets/base-train .devdata --short-side 144

The device tool sends the working tree (64 MiB a call); the base training folder is 114 MiB of 224-px
JPEGs. The base recipe resizes every image's shorter side to 144 before its random 128 crops
(``train_base.py``), so images stored at that size train the same network, up to one JPEG re-encoding.
Parts are ``OUT/part-1``, ``OUT/part-2``, …, each mirroring the source's relative paths, so the parts
together (``--data OUT``) are the source's images: the base recipe does not use the class folders.
Images already smaller than ``--short-side`` keep their size (never up-sampled; RGB JPEGs are copied as
they are). The images are those training would read (:func:`fewcolor.io.image.list_images`); a file that
cannot be read is reported and skipped.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from fewcolor.io.image import list_images


def downsized_jpeg(path: Path, short_side: int, quality: int) -> bytes:
    """``path`` as RGB JPEG bytes with its shorter side at most ``short_side`` (antialiased). A JPEG that
    is small enough already is copied byte for byte (no second encoding)."""
    with Image.open(path) as image:
        if image.format == "JPEG" and image.mode == "RGB" and min(image.size) <= short_side:
            return path.read_bytes()
        rgb = image.convert("RGB")
    scale = short_side / min(rgb.size)
    if scale < 1.0:
        rgb = rgb.resize((max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))), Image.LANCZOS)
    buffer = io.BytesIO()
    rgb.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def pack(source: Path, out: Path, short_side: int, quality: int, part_bytes: int) -> tuple[list[int], int]:
    """Write the parts; returns each part's image count and the number of files skipped."""
    files = list_images(source)
    if not files:
        raise SystemExit(f"error: {source} holds no images")
    counts: list[int] = [0]
    part_used = skipped = 0
    for path in tqdm(files, desc="pack", unit="img"):
        try:
            data = downsized_jpeg(path, short_side, quality)
        except (OSError, UnidentifiedImageError) as exc:
            print(f"warning: {path}: skipped ({exc})", file=sys.stderr)
            skipped += 1
            continue
        if part_used + len(data) > part_bytes and counts[-1]:
            counts.append(0)
            part_used = 0
        target = out / f"part-{len(counts)}" / path.relative_to(source).with_suffix(".jpg")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        part_used += len(data)
        counts[-1] += 1
    return counts, skipped


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="folder of training images (searched recursively)")
    parser.add_argument("out", type=Path, help="new folder for the parts")
    parser.add_argument("--short-side", type=int, default=144, help="largest shorter side kept (px)")
    parser.add_argument("--quality", type=int, default=85, help="JPEG quality of the copies")
    parser.add_argument("--part-mib", type=float, default=28.0, help="largest part (MiB)")
    args = parser.parse_args()
    if not args.source.is_dir():
        parser.error(f"{args.source} is not a folder")
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"{args.out} is not empty; give a new folder")
    counts, skipped = pack(args.source, args.out, args.short_side, args.quality, int(args.part_mib * 2**20))
    print(f"{sum(counts)} images in {len(counts)} parts of {counts} images ({skipped} skipped) in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
