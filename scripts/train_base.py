"""Train (or resume) fewcolor's base colorizer: one prepared, resumable command for CPU or GPU.

    python scripts/build_base_train.py                      # once: the training folder
    python scripts/train_base.py -o runs/base --minutes 100 # trains, saves, stops; run again to go on
    python scripts/train_base.py -o runs/more --init base   # the bundled weights, trained further

Every run resumes ``OUT`` when it holds a run, trains for at most ``--minutes`` of wall time (or up to
``--steps``), then writes ``OUT/model.safetensors`` and ``OUT/checkpoints/last.safetensors``. The
recipe is ``fewcolor.methods.base_colorizer`` (preset ``cpu``); the data and the exact commands used for
the bundled weights are in docs/MODEL_CARD.md. Precision: bf16 autocast where the hardware has it
natively (CUDA, or a CPU with AVX-512-BF16/AMX), else fp32.

Held-out curve (is it still improving?): every ``--val-every`` steps the model colours ``--val-images`` photos it
never trains on and ``OUT/validation.csv`` gets their mean LPIPS, ΔE00, PSNR and ΔCF
(``fewcolor.metrics.held_out``). By default they are a seeded choice from the Tiny-ImageNet meta-val classes
(``tinyimagenet-fs`` ``meta_val``: no benchmark scores them and the training folder holds none of them); ``--val
DIR`` takes another folder, ``--val-every 0`` turns it off. ``--write-val DIR`` links the default held-out images
into DIR, so ``fewcolor train --val DIR --val-images 128`` draws CIC's or Iizuka's curve on the same images.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import click
import torch

from fewcolor.cli import parse_overrides
from fewcolor.data.folder import ImageFolderDataset
from fewcolor.data.recipes import dataset_dir, is_prepared, recipe_splits
from fewcolor.data.transforms import train_transform
from fewcolor.home import fewcolor_home
from fewcolor.methods.registry import build_method
from fewcolor.metrics.held_out import HeldOutScores
from fewcolor.train.loop import TrainOptions, train


def default_held_out() -> list[Path]:
    """The default held-out candidates: every image of the Tiny-ImageNet meta-val classes."""
    root = dataset_dir("tinyimagenet-fs")
    if not is_prepared("tinyimagenet-fs"):
        raise SystemExit(f"error: no held-out images: {root} is not prepared; run `fewcolor data prepare "
                         "tinyimagenet-fs`, or pass --val DIR, or --val-every 0")
    return [root / p for p in recipe_splits("tinyimagenet-fs")["meta_val"]]


def write_held_out_folder(out: Path, limit: int, seed: int) -> int:
    """Link the default held-out images (the same seeded choice) into ``out``, so that `fewcolor train --val
    OUT --val-images LIMIT` scores another method (CIC, Iizuka) on exactly the images of this script's curve."""
    candidates = default_held_out()
    out.mkdir(parents=True, exist_ok=True)
    others = [p for p in out.iterdir() if not p.is_symlink()]
    if others:
        raise SystemExit(f"error: --write-val {out} holds files of its own (e.g. {others[0].name}); give a new folder")
    for stale in out.iterdir():  # links of an earlier --val-images/--seed: the folder must hold this choice only
        stale.unlink()
    chosen = HeldOutScores.choose(candidates, limit, seed)
    for path in map(Path, chosen):
        link = out / f"{path.parent.name}_{path.name}"  # file names repeat across class folders
        if not link.is_symlink():
            link.symlink_to(path.resolve())
    print(f"{len(chosen)} held-out images linked in {out}: `fewcolor train ... --val {out} --val-images {limit}`")
    return 0


def held_out_scores(folder: Path | None, limit: int, seed: int) -> HeldOutScores:
    """The held-out set: ``folder``'s images, or the Tiny-ImageNet meta-val classes' (train and val images)."""
    if folder is not None:
        if not folder.is_dir():
            raise SystemExit(f"error: --val {folder} is not a folder of images")
        try:
            scores, unreadable = HeldOutScores.from_folder(folder, limit, seed)
        except ValueError as exc:
            raise SystemExit(f"error: --val {folder}: {exc}") from None
    else:
        scores, unreadable = HeldOutScores.from_paths(default_held_out(), limit, seed)
    for line in unreadable:
        print(f"warning: held-out image skipped: {line}", flush=True)
    print(f"held-out scores on {len(scores)} images of {folder or 'the tinyimagenet-fs meta-val classes'}",
          flush=True)
    return scores


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--out", type=Path, default=Path("runs/base"), help="run folder")
    parser.add_argument("--data", type=Path, default=fewcolor_home() / "datasets" / "base-train")
    parser.add_argument("--steps", type=int, default=40000, help="total steps of the whole run")
    parser.add_argument("--minutes", type=float, default=None, help="stop (and save) after this wall time")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--size", type=int, default=128, help="training crop")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-gib", type=float, default=0.0,
                        help="keep up to this many GiB of decoded, resized images in memory (0: decode on every "
                        "read); on a GPU the one-core decode otherwise starves it")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--init", default=None, metavar="MODEL",
                        help="a new run starts from these weights (a checkpoint, or `base` for the bundled model) "
                        "with a fresh optimiser, e.g. to train the bundled model further; ignored when OUT resumes")
    parser.add_argument("--val", type=Path, default=None, metavar="DIR",
                        help="held-out colour images (default: the Tiny-ImageNet meta-val classes, prepared by "
                        "`fewcolor data prepare tinyimagenet-fs`)")
    parser.add_argument("--val-every", type=int, default=500, help="steps between held-out scores (0: none)")
    parser.add_argument("--val-images", type=int, default=128, help="held-out images scored (a seeded choice)")
    parser.add_argument("--write-val", type=Path, default=None, metavar="DIR",
                        help="only link the default held-out images into DIR (for `fewcolor train --val DIR`) and exit")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override (JSON value), e.g. --set l1_weight=0")
    args = parser.parse_args()
    if args.val_images < 1 or args.val_every < 0:
        parser.error("--val-images must be at least 1 and --val-every 0 (none) or more")
    if args.write_val is not None:
        return write_held_out_folder(args.write_val, args.val_images, args.seed)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        overrides = parse_overrides(tuple(args.overrides))  # as `fewcolor train --set`
    except click.BadParameter as exc:
        parser.error(exc.format_message())
    overrides.setdefault("image_size", args.size)
    torch.manual_seed(args.seed)
    method = build_method("base", "cpu", overrides)
    jitter = round(args.size * 9 / 8)  # Iizuka-style crop jitter: 224 crops of 256 images, same ratio
    transform = train_transform(args.size, resize=jitter)
    dataset = ImageFolderDataset(args.data, transform=transform, seed=args.seed, cache=args.cache_gib > 0,
                                 cache_bytes=int(args.cache_gib * 2**30))
    print(f"{len(dataset)} training images; device {args.device}", flush=True)
    resume = (args.out / "checkpoints" / "last.safetensors").exists()
    if args.init is not None and resume:
        print(f"--init {args.init} ignored: {args.out} resumes its own run", flush=True)
    elif args.init is not None:
        from fewcolor.cli import resolve_model_arg
        from fewcolor.io.warm_start import warm_start

        try:
            init = resolve_model_arg(args.init, "--init")  # as `fewcolor train --init`
        except click.BadParameter as exc:
            parser.error(exc.format_message())
        print(warm_start(method, init).summary(), flush=True)
    validate = held_out_scores(args.val, args.val_images, args.seed) if args.val_every > 0 else None
    opts = TrainOptions(out_dir=args.out, steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                        checkpoint_every=250, sample_every=500, precision="auto", device=args.device, resume=resume,
                        max_seconds=None if args.minutes is None else args.minutes * 60,
                        validate_every=args.val_every if validate is not None else 0)
    result = train(method, dataset, opts, validate)
    print(f"step {result.step} after {result.wall_seconds / 60:.1f} min this run, {result.total_seconds / 60:.1f} min "
          f"over all runs: {result.checkpoint}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
