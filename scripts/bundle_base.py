"""Copy a trained base colorizer into the package as the bundled model, with half-precision weights.

    python scripts/bundle_base.py runs/base/model.safetensors   # -> src/fewcolor/weights/base.safetensors

Network weights are stored as float16 (half the size; loading casts them back to float32); the ab prior
and its rebalancing weights stay float32 (the prior has entries far below float16's precision). The
script checks that the bundled model's colours agree with the run's to within 1 ab unit on real
photos (below a just-noticeable difference).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from fewcolor.io.checkpoint import CHECKSUM_KEY, load_checkpoint, save_checkpoint
from fewcolor.pipeline import Colorizer
from fewcolor.pretrained import BUNDLED_MODEL

KEEP_FLOAT32 = ("prior", "bin_weights")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="the run's model.safetensors")
    parser.add_argument("-o", "--out", type=Path, default=BUNDLED_MODEL)
    args = parser.parse_args()
    tensors, meta = load_checkpoint(args.model)
    half = {k: v.half() if v.is_floating_point() and k not in KEEP_FLOAT32 else v for k, v in tensors.items()}
    meta = {**meta, "bundled_from": str(args.model), "weights_dtype": "float16"}
    meta.pop(CHECKSUM_KEY, None)  # recomputed for the new tensors
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(args.out, half, meta)
    import skimage.data

    full, small = Colorizer.from_checkpoint(args.model), Colorizer.from_checkpoint(args.out)
    worst = 0.0
    for name in ("astronaut", "coffee", "chelsea"):
        rgb = torch.from_numpy(getattr(skimage.data, name)().copy()).permute(2, 0, 1).float() / 255
        worst = max(worst, float((full.predict_ab_full(rgb)[1] - small.predict_ab_full(rgb)[1]).abs().max()))
    size_mb = args.out.stat().st_size / 2**20
    print(f"{args.out}: {size_mb:.1f} MiB; max |Δab| vs the float32 model on 3 photos: {worst:.3f}")
    return 0 if worst < 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
