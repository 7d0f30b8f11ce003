"""Time MetalGAN's `colorize` before the first image: cluster adaptation paid, then read from the disk cache.

Builds a `cpu`-preset MetalGAN whose tasks are the emoji fixture's clusters (untrained weights: the cost
does not depend on them), saves it, then colorizes one image with `fewcolor colorize` in two fresh
processes sharing one FEWCOLOR_HOME. Prints the wall time of each.

    PYTHONPATH=src python scripts/measure_metalgan_colorize.py [--adapt-steps 8] [--clusters 6]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EMOJI = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "emoji"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adapt-steps", type=int, default=8)
    ap.add_argument("--clusters", type=int, default=6)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "FEWCOLOR_HOME": str(Path(tmp) / "home")}
        model = Path(tmp) / "metalgan.safetensors"
        build = (
            "import torch\n"
            "from fewcolor.data.folder import ImageFolderDataset\n"
            "from fewcolor.data.transforms import train_transform\n"
            "from fewcolor.methods.registry import build_method, save_method\n"
            "torch.manual_seed(0)\n"
            f"m = build_method('metalgan', 'cpu', {{'n_clusters': {args.clusters}}})\n"
            f"m.setup(ImageFolderDataset({str(EMOJI)!r}, transform=train_transform(64)))\n"
            f"save_method(m, {str(model)!r})\n"
        )
        subprocess.run([sys.executable, "-c", build], env=env, check=True)
        image = sorted(EMOJI.glob("heart/*.png"))[0]
        for run in ("first call (adapts)", "second call (disk cache)"):
            t0 = time.time()
            subprocess.run([sys.executable, "-m", "fewcolor", "colorize", str(model), str(image), "-o",
                            str(Path(tmp) / "out"), "--adapt-steps", str(args.adapt_steps)], env=env, check=True)
            print(f"{run}: {time.time() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    main()
