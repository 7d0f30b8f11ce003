"""The natural-photo table: models on all Imagenette validation photos, next to the grey input.

    python scripts/imagenette_val.py NAME=MODEL [NAME=MODEL ...] [--data VAL] [-o results/imagenette-val]

For each model it runs ``fewcolor evaluate MODEL --data VAL`` (PSNR, SSIM, LPIPS, ΔE00, colourfulness and
ΔCF, FID/KID against the originals) and ``fewcolor paper-eval semantic`` (EfficientNet-Lite0 top-1 on
the colourized photos vs grey vs the originals), then prints one markdown table. Give the grey baseline
as one of the models (``fewcolor adapt grey --data ANY -o grey.safetensors``). A model scored earlier into
the same ``-o`` with the same settings (and not changed since) is not scored again (``NAME/done.json``), so
an interrupted table resumes.

``--keep DIR`` also writes each model's scores as ``DIR/NAME.json`` (aggregates, FID/KID, the classifier test,
the settings and the code's commit; no per-image rows), small enough to commit: the run folders do not outlive
their machine. ``--table DIR NAME ...`` prints the table of such kept files without scoring anything.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

from fewcolor.bench.provenance import git_commit, machine_description
from fewcolor.home import fewcolor_home
from fewcolor.pretrained import require_bundled_model


def run(args: list[str]) -> None:
    print("$ fewcolor " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "fewcolor", *args], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", metavar="NAME=MODEL",
                        help="models to score (with --table: the NAMEs of kept files)")
    parser.add_argument("--data", type=Path, default=fewcolor_home() / "raw" / "imagenette-224" / "val")
    parser.add_argument("-o", "--out", type=Path, default=Path("results/imagenette-val"))
    parser.add_argument("--work-size", type=int, default=None, help="working resolution of every model")
    parser.add_argument("--per-class", type=int, default=100, help="images per class for the classifier test")
    parser.add_argument("--no-fid", action="store_true")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR", help="also write DIR/NAME.json per model")
    parser.add_argument("--table", type=Path, default=None, metavar="DIR",
                        help="print the table of the kept files DIR/NAME.json; score nothing")
    args = parser.parse_args()
    if args.table is not None:
        return print_table([(name, _read_kept(args.table, name)) for name in args.models])
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
            scored = {"code": git_commit(), "machine": machine_description(),
                      "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
            done.write_text(json.dumps({**settings, "scored": scored}, indent=1))
        metrics = json.loads((out / "eval" / "metrics.json").read_text())
        semantic = json.loads((out / "semantic.json").read_text())
        scores = summarise(metrics, semantic, json.loads(done.read_text()))
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            (args.keep / f"{name}.json").write_text(json.dumps(scores, indent=1) + "\n")
        rows.append((name, scores))
    return print_table(rows)


def print_table(rows: list[tuple[str, dict]]) -> int:
    """Print the markdown table of ``(name, summary)`` rows."""
    print("\n| model | FID | LPIPS | PSNR (dB)* | SSIM | ΔE00 | colourfulness (truth) | ΔCF |"
          " top-1: colourized / grey / original |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, scores in rows:
        print(table_row(name, scores))
    print("\n*PSNR: mean over the images the prediction does not reproduce exactly (an exact copy, e.g. a grey "
          "photo given back grey, has infinite PSNR; their count is in brackets).")
    return 0


def summarise(metrics: dict, semantic: dict, settings: dict) -> dict:
    """One model's scores from its ``metrics.json`` and ``semantic.json``: aggregates, set metrics, the PSNR
    over the photos not given back exactly (and their count), the classifier test, and ``settings`` (the
    ``done.json`` of its scoring: the settings, and under ``scored`` the code's commit, machine and date)."""
    psnr = [float(r["psnr"]) for r in metrics["per_image"]]  # an exact copy's is stored as "inf"
    finite = [v for v in psnr if math.isfinite(v)]
    return {"aggregate": metrics["aggregate"], "set": metrics["set"], "images": len(psnr),
            "psnr_not_exact": {"mean": sum(finite) / len(finite) if finite else None, "exact": len(psnr) - len(finite)},
            "semantic": semantic, "settings": settings}


def table_row(name: str, scores: dict) -> str:
    """One model's markdown row from its :func:`summarise` scores."""
    agg, fid = scores["aggregate"], scores["set"].get("fid")
    psnr, exact = scores["psnr_not_exact"]["mean"], scores["psnr_not_exact"]["exact"]

    def mean(key: str) -> float:
        return float(agg[key]["mean"])

    return (f"| {name} | {'–' if fid is None else f'{fid:.1f}'} | {mean('lpips'):.3f} | "
            f"{'–' if psnr is None else f'{psnr:.2f}'}{f' ({exact} exact)' if exact else ''} | {mean('ssim'):.3f} | "
            f"{mean('delta_e2000'):.2f} | {mean('cf_hs_pred'):.1f} ({mean('cf_hs_truth'):.1f}) | "
            f"{mean('delta_cf_hs'):.1f} | {_acc(scores['semantic'])} |")


def _read_kept(folder: Path, name: str) -> dict:
    path = folder / f"{name}.json"
    if not path.is_file():
        kept = ", ".join(sorted(p.stem for p in folder.glob("*.json"))) or "none"
        raise SystemExit(f"error: {path} does not exist (kept there: {kept})")
    return json.loads(path.read_text())


def _finished(done: Path, settings: dict, model: Path) -> bool:
    """Whether a model's two scorings finished earlier with the same settings and the model unchanged since
    (a long table resumes: each scoring of all 3,925 photos takes a quarter of an hour on 2 cores). ``model``
    is the weights file (the bundled model's own file for ``base``, so that a re-bundled model is scored again)."""
    if not done.exists():
        return False
    stored = json.loads(done.read_text())
    stored.pop("scored", None)  # when, where and with which code it was scored
    if stored != settings:
        return False
    return model.exists() and model.stat().st_mtime < done.stat().st_mtime


def _acc(sem: dict) -> str:
    """Top-1 accuracy on the colourized, grey and original photos, in percent ("n/a" where the folders are
    not ImageNet classes, so that no accuracy exists)."""
    values = (sem.get(f"top1_{k}_efficientnet_lite0") for k in ("colourized", "grey", "original"))
    return " / ".join("n/a" if v is None else f"{100 * float(v):.1f} %" for v in values)


if __name__ == "__main__":
    sys.exit(main())
