"""Copy a trained base colorizer into the package as the bundled model.

    python scripts/bundle_base.py runs/base/model.safetensors   # -> src/fewcolor/weights/base.safetensors

Weights stay float32 (about 27 MiB): float16 weights, tried first, moved the annealed mean by up to 1.7 ab
units on real photos, the encoder's alone as much (its features feed every decoder level). The
script checks that the bundled model gives the run's colours on real photos.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fewcolor.io.checkpoint import CHECKSUM_KEY, load_checkpoint, save_checkpoint
from fewcolor.io.samples import sample_photos
from fewcolor.pipeline import Colorizer
from fewcolor.pretrained import BUNDLED_MODEL


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="the run's model.safetensors")
    parser.add_argument("-o", "--out", type=Path, default=BUNDLED_MODEL)
    args = parser.parse_args()
    tensors, meta = load_checkpoint(args.model)
    meta = {**meta, "bundled_from": str(args.model)}
    meta.pop(CHECKSUM_KEY, None)  # recomputed for the new tensors
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(args.out, tensors, meta)
    full, small = Colorizer.from_checkpoint(args.model), Colorizer.from_checkpoint(args.out)
    worst = 0.0
    for _, rgb in sample_photos(("astronaut", "coffee", "chelsea")):
        worst = max(worst, float((full.predict_ab_full(rgb)[1] - small.predict_ab_full(rgb)[1]).abs().max()))
    size_mb = args.out.stat().st_size / 2**20
    print(f"{args.out}: {size_mb:.1f} MiB; max |Δab| vs the float32 model on 3 photos: {worst:.3f}")
    return 0 if worst < 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
