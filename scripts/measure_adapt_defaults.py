"""Measure `fewcolor adapt`'s per-method defaults (steps × learning-rate factor) on the emoji fixture.

For each target subcategory (heart, plant-flower): every fine-tuned method (tiny preset, 32 px) is trained
for a short run on the OTHER four subcategories, then adapted with each (steps, lr_factor) to the target's
first four images and scored (LPIPS, ΔE00) on its fifth, exactly as `fewcolor adapt` scores its held-out
image. Prints one markdown row per method and setting: the mean over the targets. A small, noisy
measurement (two held-out images per cell) meant to pick an order of magnitude, not a precise optimum.

    PYTHONPATH=src python scripts/measure_adapt_defaults.py [--methods unet,cgan] [--train-steps 150]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import torch

from fewcolor.bench.adapt_folder import held_out_scores
from fewcolor.data.folder import ImageFolderDataset
from fewcolor.data.transforms import few_shot_transform, train_transform
from fewcolor.methods.registry import build_method
from fewcolor.metrics.lpips import LPIPS
from fewcolor.train.adapt import adapt
from fewcolor.train.loop import TrainOptions, train

EMOJI = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "emoji"
TARGETS = ("heart", "plant-flower")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="unet,cgan,cic,iizuka,memopainter,res-cgan")
    ap.add_argument("--settings", default="30x1,100x1,300x1,100x0.3,100x3",
                    help="comma-separated STEPSxLR_FACTOR")
    ap.add_argument("--train-steps", type=int, default=150)
    args = ap.parse_args()
    lpips = LPIPS("alex")
    settings = [(int(a), float(b)) for a, b in (x.split("x") for x in args.settings.split(","))]
    print("| method | steps | lr factor | held-out LPIPS | held-out ΔE00 |", flush=True)
    print("|---|---|---|---|---|", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for target in TARGETS:
            train_root = Path(tmp) / f"train-{target}"
            for sub in EMOJI.iterdir():
                if sub.is_dir() and sub.name != target:
                    shutil.copytree(sub, train_root / sub.name)
        for name in args.methods.split(","):
            scores: dict[tuple[int, float], list[dict[str, float | None]]] = {}
            for target in TARGETS:
                images = sorted((EMOJI / target).glob("*.png"))
                held = images[-1]
                torch.manual_seed(0)
                method = build_method(name, "tiny")
                data = ImageFolderDataset(Path(tmp) / f"train-{target}", transform=train_transform(32), seed=0)
                train(method, data, TrainOptions(out_dir=Path(tmp) / f"run-{name}-{target}", steps=args.train_steps,
                                                 batch_size=8, sample_every=0, progress=False, tensorboard=False))
                scores.setdefault((0, 1.0), []).append(held_out_scores(method, held, "cpu", lpips))
                support = ImageFolderDataset(EMOJI / target, paths=[p.name for p in images[:-1]],
                                             transform=few_shot_transform(32), seed=0, skip_grey=False)
                for steps, factor in settings:
                    adapted, _ = adapt(method, support, steps, batch_size=4, lr_factor=factor)
                    scores.setdefault((steps, factor), []).append(held_out_scores(adapted, held, "cpu", lpips))
            for (steps, factor), rows in scores.items():
                lp = sum(float(r["lpips"] or 0) for r in rows) / len(rows)
                de = sum(float(r["delta_e2000"] or 0) for r in rows) / len(rows)
                print(f"| {name} | {steps} | {factor:g} | {lp:.3f} | {de:.2f} |", flush=True)


if __name__ == "__main__":
    main()
