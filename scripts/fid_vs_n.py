#!/usr/bin/env python
"""How FID and KID move with the number of images N: the measurement behind ``MIN_SET_IMAGES``.

A seeded draw of ``--photos`` colour photos from FOLDER; a fixed "colorizer" that scales their chroma
(Lab a, b × ``--chroma``) is scored against the same photos, as ``evaluate`` scores an output against
its truth (``prepare_pair`` at ``--size``, the TF-Inception FID weights, KID with ``evaluate``'s
settings). The Inception features of all photos are computed once; then, for each N of ``--sizes``,
``--draws`` random subsets of N photos give FID and KID (the output and its truth: the same photos).
Prints a markdown table (mean ± std of FID over draws, mean KID) and the value on all photos.

    python scripts/fid_vs_n.py ~/.cache/fewcolor/datasets/flowers12 --photos 200 --draws 20
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from pathlib import Path

import torch
from tqdm.auto import tqdm

from fewcolor.color.lab import lab_to_rgb, rgb_to_lab
from fewcolor.io.image import ImageReadError, list_images, read_rgb
from fewcolor.metrics.evaluate import EvalConfig
from fewcolor.metrics.fid import InceptionFeatures, fid_from_features, kernel_inception_distance
from fewcolor.metrics.scoring import prepare_pair


def scaled_chroma(rgb: torch.Tensor, factor: float) -> torch.Tensor:
    """``rgb`` with its Lab a and b multiplied by ``factor`` (lightness kept)."""
    lab = rgb_to_lab(rgb)
    lab[1:] *= factor
    return lab_to_rgb(lab).clamp(0, 1)


def features(inception: InceptionFeatures, paths: list[Path], size: int, chroma: float,
             batch: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """pool3 features (n, 2048) of the outputs and of their truths; unreadable photos are skipped."""
    preds: list[torch.Tensor] = []
    truths: list[torch.Tensor] = []
    out_p: list[torch.Tensor] = []
    out_t: list[torch.Tensor] = []
    for path in tqdm(paths, desc="inception", unit="img"):
        try:
            truth = read_rgb(path)
        except ImageReadError as exc:
            print(f"skipped {exc}", file=sys.stderr)
            continue
        pred, truth = prepare_pair(scaled_chroma(truth, chroma), truth, size)
        preds.append(pred)
        truths.append(truth)
        if len(preds) == batch:
            out_p.append(inception.pool3(torch.stack(preds)))
            out_t.append(inception.pool3(torch.stack(truths)))
            preds, truths = [], []
    if preds:
        out_p.append(inception.pool3(torch.stack(preds)))
        out_t.append(inception.pool3(torch.stack(truths)))
    if not out_p:
        return torch.zeros(0, 2048, dtype=torch.float64), torch.zeros(0, 2048, dtype=torch.float64)
    return torch.cat(out_p), torch.cat(out_t)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path, help="A folder of colour photos (searched recursively).")
    ap.add_argument("--photos", type=int, default=200, help="How many photos to draw (seeded).")
    ap.add_argument("--draws", type=int, default=20, help="Random subsets per N.")
    ap.add_argument("--sizes", default="3,5,10,20,30,50,80,100", help="The N values, comma-separated.")
    ap.add_argument("--chroma", type=float, default=0.5, help="The colorizer: Lab a, b times this.")
    ap.add_argument("--size", type=int, default=256, help="prepare_pair's evaluation size.")
    ap.add_argument("--seed", type=int, default=0, help="Seed of the photo draw, the subsets and KID.")
    args = ap.parse_args(argv)
    if not args.folder.is_dir():
        print(f"error: {args.folder}: not a folder of photos", file=sys.stderr)
        return 2
    try:
        sizes = sorted({int(n) for n in args.sizes.split(",")})
    except ValueError:
        print(f"error: --sizes {args.sizes}: give whole numbers separated by commas", file=sys.stderr)
        return 2
    if sizes[0] < 2 or args.draws < 2:
        print("error: FID needs N >= 2 in --sizes, and a spread needs --draws >= 2", file=sys.stderr)
        return 2
    rng = random.Random(args.seed)
    found = list_images(args.folder)
    if len(found) < max(max(sizes), 2):
        print(f"error: {args.folder} holds {len(found)} images; --sizes goes up to {max(sizes)}", file=sys.stderr)
        return 2
    paths = sorted(rng.sample(found, min(args.photos, len(found))))
    fp, ft = features(InceptionFeatures(), paths, args.size, args.chroma)
    n_all = len(fp)
    if n_all < 2:
        print(f"error: {n_all} of the drawn photos could be read; FID needs at least 2", file=sys.stderr)
        return 1
    cfg = EvalConfig()

    def kid(idx: list[int]) -> float:
        return kernel_inception_distance(fp[idx], ft[idx], cfg.kid_subsets, cfg.kid_subset_size, args.seed)[0]

    print(f"{n_all} photos from {args.folder}, chroma x{args.chroma:g}, {args.size} px, {args.draws} draws per N")
    print(f"all {n_all}: FID {fid_from_features(fp, ft):.1f}, KID {kid(list(range(n_all))):.4f}")
    head, fids, kids = ["N"], ["FID, mean ± std over draws"], ["KID"]
    for n in sizes:
        if n > n_all:
            continue
        draws = [rng.sample(range(n_all), n) for _ in range(args.draws)]
        values = [fid_from_features(fp[d], ft[d]) for d in draws]
        head.append(str(n))
        fids.append(f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}")
        kids.append(f"{statistics.mean(kid(d) for d in draws):.4g}")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    print("| " + " | ".join(fids) + " |")
    print("| " + " | ".join(kids) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
