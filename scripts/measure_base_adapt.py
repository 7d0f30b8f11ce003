"""How ``fewcolor adapt`` should fine-tune the bundled base model: steps, learning rate, batch-norm statistics.

    python scripts/measure_base_adapt.py [--species pansy,sunflower,tigerlily,daisy] \\
        keep:100x1 update:100x1 keep:100x0.1 keep:30x0.3

For each Flowers-12 test species (photos the model never trained on; ``fewcolor data prepare flowers12``
first): the bundled model is adapted to the species' first 4 photos by name (``fewcolor.train.adapt``, as
``fewcolor adapt`` does it) with each setting ``MODE:STEPSxLR_FACTOR`` (MODE ``keep``: batch norms keep
their running statistics; ``update``: the four photos' batch statistics replace them), and the next 8
photos are colorized and scored (LPIPS, ΔE00), next to the unadapted model. Prints one row per species
and the mean over all of them (docs/ADAPT.md).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

from fewcolor.bench.adapt_folder import held_out_scores, resolve_model
from fewcolor.data.folder import ImageFolderDataset
from fewcolor.data.recipes import dataset_dir
from fewcolor.data.transforms import few_shot_transform
from fewcolor.methods.registry import load_method
from fewcolor.metrics.lpips import LPIPS
from fewcolor.train.adapt import adapt

SUPPORTS, QUERIES = 4, 8


def _value(x: float | None) -> float:
    if x is None:
        raise RuntimeError("a score is missing (LPIPS weights not installed?)")
    return float(x)


def parse_setting(text: str) -> tuple[bool, int, float]:
    """``keep:100x1`` -> (keep the statistics, 100 steps, learning-rate factor 1.0)."""
    mode, _, rest = text.partition(":")
    steps, _, factor = rest.partition("x")
    if mode not in ("keep", "update") or not steps.isdigit() or not factor:
        raise SystemExit(f"error: setting {text!r}: write MODE:STEPSxLR_FACTOR with MODE keep or update, "
                         "e.g. keep:100x1")
    return mode == "keep", int(steps), float(factor)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("settings", nargs="+", help="MODE:STEPSxLR_FACTOR, e.g. keep:100x1 update:100x1")
    parser.add_argument("--species", default="pansy,sunflower,tigerlily,daisy")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    settings = {s: parse_setting(s) for s in args.settings}
    test = dataset_dir("flowers12") / "test"
    if not test.is_dir():
        raise SystemExit(f"error: {test} is missing; run `fewcolor data prepare flowers12` first")
    method = load_method(resolve_model(None), device="cpu")
    size = int(method.config.image_size)
    lpips = LPIPS("alex")
    totals: dict[str, list[tuple[float, float]]] = {}
    for species in args.species.split(","):
        photos = sorted(p.name for p in (test / species).iterdir())
        support = ImageFolderDataset(test, paths=[f"{species}/{p}" for p in photos[:SUPPORTS]],
                                     transform=few_shot_transform(size), seed=args.seed, skip_grey=False, cache=True)
        queries = [test / species / p for p in photos[SUPPORTS:SUPPORTS + QUERIES]]

        def score(model: Any, queries: list[Path] = queries) -> tuple[float, float]:
            rows = [held_out_scores(model, q, None, lpips) for q in queries]
            return (statistics.mean(_value(r["lpips"]) for r in rows),
                    statistics.mean(_value(r["delta_e2000"]) for r in rows))

        row = {"unadapted": score(method)}
        for name, (keep, steps, factor) in settings.items():
            adapted, _ = adapt(method, support, steps, batch_size=SUPPORTS, seed=args.seed, lr_factor=factor,
                               keep_norm_statistics=keep)
            row[name] = score(adapted)
        for name, value in row.items():
            totals.setdefault(name, []).append(value)
        print(f"{species}: " + " | ".join(f"{k} {v[0]:.3f} / {v[1]:.2f}" for k, v in row.items()), flush=True)
    print("mean (LPIPS / ΔE00): " + " | ".join(
        f"{k} {statistics.mean(v[0] for v in vs):.3f} / {statistics.mean(v[1] for v in vs):.2f}"
        for k, vs in totals.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
