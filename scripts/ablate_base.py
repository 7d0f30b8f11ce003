"""The base colorizer's ablation (issue #11): each ingredient of the recipe removed in turn, same data, same steps.

    python scripts/build_base_train.py                           # once: the training folder
    python scripts/ablate_base.py -o runs/ablation --steps 1000  # trains every variant, then one table

Every variant trains from scratch with ``scripts/train_base.py`` (the bundled model's recipe and data; one
run folder per variant, so running the command again resumes where it stopped), then
``scripts/imagenette_val.py`` scores all of them, and the grey input, on the first ``--per-class`` photos
of each Imagenette validation class: FID, LPIPS, PSNR, SSIM, ΔE00, colourfulness, and EfficientNet-Lite0's
top-1 on the colourized photos. ``--dry-run`` prints the commands and the time estimate only.

The variants (``--set`` overrides of ``fewcolor.methods.base_colorizer``):

- ``full``: the recipe as first bundled (frozen ImageNet EfficientNet-Lite0, global fusion, 313-bin rebalanced
  cross-entropy λ = 0.5 + 0.5 · L1 on the annealed mean); every variant starts from it, so λ = 0.5 is pinned
  (``ABLATED_RECIPE``) although the recipe's default is 0.75 since this ablation;
- ``no-global-fusion``: without Iizuka et al.'s global features at the bottleneck;
- ``no-rebalancing``: λ = 1 (Zhang et al. Eq. 4: uniform class weights);
- ``rebalancing-0.75`` / ``rebalancing-0.9``: milder rebalancing (largest-to-smallest bin weight 21 and 7.6
  on the training data's smoothed prior, against 60 at λ = 0.5), added after ``no-rebalancing`` won every
  metric but colourfulness;
- ``ce-only`` / ``l1-only``: one of the two loss terms;
- ``encoder-finetuned``: the ImageNet encoder trained too (at 0.1 × the decoder's learning rate);
- ``encoder-random``: the same encoder from a random init, trained at the decoder's learning rate (what the
  ImageNet weights are worth).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from fewcolor.hardware import native_bf16
from fewcolor.home import fewcolor_home
from fewcolor.io.image import list_images

SCRIPTS = Path(__file__).resolve().parent

#: the recipe the ablation removed ingredients from: the first bundle's, λ = 0.5 (the default is 0.75 since
#: this ablation chose it), pinned so the recorded table reproduces; a variant's own overrides replace these
ABLATED_RECIPE: dict[str, str] = {"lam": "0.5"}

VARIANTS: dict[str, dict[str, str]] = {
    "full": {},
    "no-global-fusion": {"global_features": "false"},
    "no-rebalancing": {"lam": "1"},
    "rebalancing-0.75": {"lam": "0.75"},
    "rebalancing-0.9": {"lam": "0.9"},
    "ce-only": {"l1_weight": "0"},
    "l1-only": {"ce_weight": "0"},
    "encoder-finetuned": {"freeze_encoder": "false"},
    "encoder-random": {"encoder_pretrained": "false", "freeze_encoder": "false", "encoder_lr_scale": "1"},
}

#: seconds per training step at the defaults (batch 32, 128 px), nothing else running, on the two 2-core AMD
#: EPYC kinds of docs/MODEL_CARD.md: with native bf16 (AVX-512, 2026-12-02: 40 steps in 35 s) and AVX2-only
#: in fp32 (2026-12-03: 2,355 steps in 60.2 min); the estimate printed up front scales it by the batch size
SECONDS_PER_STEP_BF16 = 0.9
SECONDS_PER_STEP_FP32 = 1.53


def seconds_per_step(native_bf16: bool) -> float:
    """The estimate's rate: the base recipe trains in bf16 autocast only where the CPU has native bf16."""
    return SECONDS_PER_STEP_BF16 if native_bf16 else SECONDS_PER_STEP_FP32


def overrides(variant: str) -> dict[str, str]:
    """The ``--set`` overrides of one variant: the ablated recipe with the variant's changes."""
    return {**ABLATED_RECIPE, **VARIANTS[variant]}


def train_command(out: Path, variant: str, steps: int, batch_size: int, data: Path | None) -> list[str]:
    """``scripts/train_base.py`` for one variant (resumes its run folder when it holds a run)."""
    cmd = [sys.executable, str(SCRIPTS / "train_base.py"), "-o", str(out / variant), "--steps", str(steps),
           "--batch-size", str(batch_size)]
    if data is not None:
        cmd += ["--data", str(data)]
    for key, value in overrides(variant).items():
        cmd += ["--set", f"{key}={value}"]
    return cmd


def val_subset(val: Path, per_class: int, out: Path) -> Path:
    """The first ``per_class`` photos by name of each class folder of ``val``, linked under ``out``."""
    if not val.is_dir():
        raise SystemExit(f"error: {val} is not a folder of Imagenette val classes; unpack imagenette-224 "
                         "(python scripts/build_base_train.py does) or pass --val")
    classes = sorted(p for p in val.iterdir() if p.is_dir())
    if not classes:
        raise SystemExit(f"error: {val} holds no class folders")
    for cls in classes:
        for photo in sorted(list_images(cls))[:per_class]:
            link = out / cls.name / photo.name
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.is_symlink():
                link.symlink_to(photo.resolve())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--out", type=Path, default=Path("runs/ablation"), help="one run folder per variant")
    parser.add_argument("--steps", type=int, default=1000, help="training steps of every variant")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--data", type=Path, default=None, help="training folder (default: train_base.py's)")
    parser.add_argument("--val", type=Path, default=fewcolor_home() / "raw" / "imagenette-224" / "val")
    parser.add_argument("--per-class", type=int, default=50, help="Imagenette val photos per class scored")
    parser.add_argument("--only", default=",".join(VARIANTS), help="comma-separated variants, in table order")
    parser.add_argument("--dry-run", action="store_true", help="print the commands and the estimate only")
    args = parser.parse_args(argv)
    variants = [v for v in args.only.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    bf16 = native_bf16("cpu")
    hours = len(variants) * args.steps * seconds_per_step(bf16) * args.batch_size / 32 / 3600
    print(f"{len(variants)} variants × {args.steps} steps: about {hours:.1f} h of training on a 2-core CPU "
          f"{'with native bf16' if bf16 else 'in fp32 (no native bf16)'} (runs already trained are resumed, not "
          "repeated), then the evaluation", flush=True)
    commands = [train_command(args.out, v, args.steps, args.batch_size, args.data) for v in variants]
    if args.dry_run:
        for cmd in commands:
            print(" ".join(cmd))
        return 0
    for cmd in commands:
        print("$ " + " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    subset = val_subset(args.val, args.per_class, args.out / f"val-{args.per_class}-per-class")
    grey = args.out / "grey.safetensors"
    if not grey.exists():
        subprocess.run([sys.executable, "-m", "fewcolor", "adapt", "grey", "--data", str(subset), "-o", str(grey)],
                       check=True)
    models = [f"grey={grey}", *(f"{v}={args.out / v / 'model.safetensors'}" for v in variants)]
    subprocess.run([sys.executable, str(SCRIPTS / "imagenette_val.py"), *models, "--data", str(subset),
                    "-o", str(args.out / "eval"), "--per-class", str(args.per_class)], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
