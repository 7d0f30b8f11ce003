"""Per-image paired differences of two scored runs on the same images: mean, 95 % CI, how often A wins.

    python scripts/paired_diff.py A/metrics.json B/metrics.json [--metrics delta_e2000,lpips,psnr]

A and B are ``metrics.json`` files of ``fewcolor evaluate`` or of one benchmark seed
(``RUN/<protocol>/<method>/seed0/metrics.json``); images are matched by name, and only names in both
count. Prints, per metric, the mean of A − B with its 95 % interval (Student's t over the matched images,
:func:`fewcolor.metrics.stats.mean_ci95`) and on how many images A is better (lower, or higher for
PSNR/SSIM/AUC; only scored metrics, not colourfulness values). An interval that cannot be computed (one
image, a non-finite value such as PSNR = inf) prints as n/a. Two overlapping per-method intervals can hide a
consistent per-image difference, and a difference of means can be noise: this says which.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fewcolor.metrics.stats import mean_ci95

HIGHER_IS_BETTER = {"psnr", "ssim", "auc"}
#: the per-image scores where lower or higher means better (colourfulness values are not scores)
SCORED = {"delta_e2000", "lpips", "psnr", "ssim", "auc", "delta_cf_hs", "delta_cf_abs"}
Rows = dict[str, dict[str, float]]


def per_image(path: Path) -> Rows:
    """The per-image rows of a metrics.json by name; a name twice is an error (the pairing would be ambiguous)."""
    rows = json.loads(path.read_text())["per_image"]
    by_name = {row["name"]: row for row in rows}
    if len(by_name) != len(rows):
        raise ValueError(f"{path}: {len(rows) - len(by_name)} image name(s) appear more than once")
    return by_name


def _signed(x: float | int | None) -> str:
    return "n/a" if x is None else f"{x:+.4f}"


def paired(a: Rows, b: Rows, metric: str) -> dict[str, float | int | None]:
    """Mean and 95 % CI of A − B over the images both scored, and ``a_better``: images where A is better."""
    names = sorted(set(a) & set(b))
    diffs = [a[n][metric] - b[n][metric] for n in names]
    stats = mean_ci95(diffs)
    sign = 1 if metric in HIGHER_IS_BETTER else -1
    stats["a_better"] = sum(1 for d in diffs if sign * d > 0)
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path, help="metrics.json of A")
    parser.add_argument("b", type=Path, help="metrics.json of B (the baseline)")
    parser.add_argument("--metrics", default="delta_e2000,lpips,psnr,ssim", help="comma-separated metric names")
    args = parser.parse_args(argv)
    metrics = args.metrics.split(",")
    unknown = [m for m in metrics if m not in SCORED]
    if unknown:
        print(f"error: --metrics {','.join(unknown)}: choose from {','.join(sorted(SCORED))}", file=sys.stderr)
        return 2
    try:
        a, b = per_image(args.a), per_image(args.b)
    except (OSError, KeyError, ValueError) as e:  # json.JSONDecodeError is a ValueError
        print(f"error: cannot read per-image metrics: {e}", file=sys.stderr)
        return 2
    common = len(set(a) & set(b))
    if common == 0:
        print(f"error: {args.a} and {args.b} share no image name", file=sys.stderr)
        return 2
    print(f"{common} images in both ({len(a)} in A, {len(b)} in B); A − B:")
    for metric in metrics:
        s = paired(a, b, metric)
        print(f"  {metric}: {_signed(s['mean'])}, 95 % CI [{_signed(s['ci95_low'])}, {_signed(s['ci95_high'])}]; "
              f"A better on {s['a_better']} of {s['n']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
