"""The natural-photo table: models on all Imagenette validation photos, next to the grey input.

    python scripts/imagenette_val.py NAME=MODEL [NAME=MODEL ...] [--data VAL] [-o results/imagenette-val]

For each model it runs ``fewcolor evaluate MODEL --data VAL`` (PSNR, SSIM, LPIPS, ΔE00, colourfulness and
ΔCF, FID/KID against the originals) and ``fewcolor paper-eval semantic`` (EfficientNet-Lite0 top-1 on
the colourized photos vs grey vs the originals), then prints one markdown table. Give the grey baseline
as one of the models (``fewcolor adapt grey --data ANY -o grey.safetensors``). A model scored earlier into
the same ``-o`` with the same settings (and not changed since) is not scored again (``NAME/done.json``), so
an interrupted table resumes.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

from fewcolor.home import fewcolor_home
from fewcolor.pretrained import require_bundled_model


def run(args: list[str]) -> None:
    print("$ fewcolor " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "fewcolor", *args], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", metavar="NAME=MODEL")
    parser.add_argument("--data", type=Path, default=fewcolor_home() / "raw" / "imagenette-224" / "val")
    parser.add_argument("-o", "--out", type=Path, default=Path("results/imagenette-val"))
    parser.add_argument("--work-size", type=int, default=None, help="working resolution of every model")
    parser.add_argument("--per-class", type=int, default=100, help="images per class for the classifier test")
    parser.add_argument("--no-fid", action="store_true")
    args = parser.parse_args()
    rows = []
    for item in args.models:
        name, _, model = item.partition("=")
        out = args.out / name
        cmd = ["evaluate", model, "--data", str(args.data), "-o", str(out / "eval")]
        if args.work_size:
            cmd += ["--work-size", str(args.work_size)]
        if args.no_fid:
            cmd.append("--no-fid")
        weights = require_bundled_model("give a checkpoint path") if model == "base" else Path(model).resolve()
        settings = {"model": str(weights), "data": str(args.data.resolve()), "work_size": args.work_size,
                    "fid": not args.no_fid, "per_class": args.per_class}
        done = out / "done.json"
        if _finished(done, settings, weights):
            print(f"{name}: scored already with these settings ({done}); delete it to score again", flush=True)
        else:
            done.unlink(missing_ok=True)
            run(cmd)
            run(["paper-eval", "semantic", model, "--data", str(args.data), "-o", str(out / "semantic.json"),
                 "--per-class", str(args.per_class)])
            done.write_text(json.dumps(settings, indent=1))
        metrics = json.loads((out / "eval" / "metrics.json").read_text())
        semantic = json.loads((out / "semantic.json").read_text())
        rows.append((name, metrics, semantic))
    print("\n| model | FID | LPIPS | PSNR (dB)* | SSIM | ΔE00 | colourfulness (truth) | ΔCF |"
          " top-1: colourized / grey / original |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, m, sem in rows:
        print(table_row(name, m, sem))
    print("\n*PSNR: mean over the images the prediction does not reproduce exactly (an exact copy, e.g. a grey "
          "photo given back grey, has infinite PSNR; their count is in brackets).")
    return 0


def table_row(name: str, metrics: dict, semantic: dict) -> str:
    """One model's markdown row from its ``metrics.json`` and ``semantic.json``."""
    agg, fid = metrics["aggregate"], metrics["set"].get("fid")
    psnr = [float(r["psnr"]) for r in metrics["per_image"]]  # an exact copy's is stored as "inf"
    finite = [v for v in psnr if math.isfinite(v)]
    exact = len(psnr) - len(finite)

    def mean(key: str) -> float:
        return float(agg[key]["mean"])

    return (f"| {name} | {'–' if fid is None else f'{fid:.1f}'} | {mean('lpips'):.3f} | "
            f"{sum(finite) / len(finite):.2f}{f' ({exact} exact)' if exact else ''} | {mean('ssim'):.3f} | "
            f"{mean('delta_e2000'):.2f} | {mean('cf_hs_pred'):.1f} ({mean('cf_hs_truth'):.1f}) | "
            f"{mean('delta_cf_hs'):.1f} | {_acc(semantic)} |")


def _finished(done: Path, settings: dict, model: Path) -> bool:
    """Whether a model's two scorings finished earlier with the same settings and the model unchanged since
    (a long table resumes: each scoring of all 3,925 photos takes a quarter of an hour on 2 cores). ``model``
    is the weights file (the bundled model's own file for ``base``, so that a re-bundled model is scored again)."""
    if not done.exists() or json.loads(done.read_text()) != settings:
        return False
    return model.exists() and model.stat().st_mtime < done.stat().st_mtime


def _acc(sem: dict) -> str:
    """Top-1 accuracy on the colourized, grey and original photos, in percent ("n/a" where the folders are
    not ImageNet classes, so that no accuracy exists)."""
    values = (sem.get(f"top1_{k}_efficientnet_lite0") for k in ("colourized", "grey", "original"))
    return " / ".join("n/a" if v is None else f"{100 * float(v):.1f} %" for v in values)


if __name__ == "__main__":
    sys.exit(main())
