"""The bundled base colorizer on 12 real photos at full resolution: grey input | bundled model | original.

    python scripts/photo_gallery.py [--data IMAGENETTE_VAL] [-o docs/results/photos] [--model MODEL]

The photos: scikit-image's astronaut, coffee and chelsea, and the first colour photo (by file name) of the
first nine Imagenette val classes (by wnid) — never seen in training (the base model trains on Imagenette
train). Writes one JPEG triplet per photo and prints a markdown table of ΔE00 (output and grey input against
the original) and Hasler–Süsstrunk colourfulness, with the images embedded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from fewcolor.color.lab import grey_rgb_from_l, rgb_to_l
from fewcolor.data.grey import is_grey
from fewcolor.home import fewcolor_home
from fewcolor.io.grid import image_grid
from fewcolor.io.image import read_rgb, write_rgb
from fewcolor.io.samples import sample_photos
from fewcolor.metrics.color import colorfulness_hs, mean_delta_e2000
from fewcolor.pipeline import Colorizer

SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea")
IMAGENETTE_CLASSES = 9


def imagenette_photos(val: Path) -> list[tuple[str, torch.Tensor]]:
    classes = sorted(d for d in val.iterdir() if d.is_dir())[:IMAGENETTE_CLASSES]
    if len(classes) < IMAGENETTE_CLASSES:
        raise SystemExit(f"{val}: expected {IMAGENETTE_CLASSES} class folders of Imagenette val; pass --data")
    photos = []
    for folder in classes:
        for path in sorted(folder.iterdir()):
            rgb = read_rgb(path)
            if not is_grey(rgb):  # a grey photo has nothing to show
                photos.append((f"{folder.name}-{path.stem}", rgb))
                break
    return photos


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=fewcolor_home() / "raw" / "imagenette-224" / "val",
                        help="Imagenette val folder (<wnid>/<photo>)")
    parser.add_argument("-o", "--out", type=Path, default=Path("docs/results/photos"))
    parser.add_argument("--model", type=Path, default=None, help="a checkpoint instead of the bundled model")
    parser.add_argument("--quality", type=int, default=88, help="JPEG quality of the triplets")
    args = parser.parse_args()
    colorizer = Colorizer.from_checkpoint(args.model) if args.model else Colorizer.pretrained()
    args.out.mkdir(parents=True, exist_ok=True)
    print("| photo | size | ΔE00 output | ΔE00 grey input | colourfulness output / original |")
    print("|---|---|---|---|---|")
    images = []
    for name, truth in sample_photos(SKIMAGE_PHOTOS) + imagenette_photos(args.data):
        grey = grey_rgb_from_l(rgb_to_l(truth[None]))[0]
        with torch.no_grad():
            output = colorizer.colorize(grey)
        path = args.out / f"{name}.jpg"
        write_rgb(path, image_grid([grey, output, truth], ncols=3, pad=4), quality=args.quality)
        de, de_grey = (float(mean_delta_e2000(x[None], truth[None])) for x in (output, grey))
        cf, cf_truth = (float(colorfulness_hs(x[None])) for x in (output, truth))
        print(f"| {name} | {truth.shape[2]}×{truth.shape[1]} | {de:.2f} | {de_grey:.2f} | {cf:.1f} / {cf_truth:.1f} |")
        images.append(path)
    print()
    for path in images:  # links relative to docs/, where the table goes
        link = path.relative_to("docs") if path.parts[:1] == ("docs",) else path
        print(f"![{path.stem}: grey input | bundled model | original]({link.as_posix()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
