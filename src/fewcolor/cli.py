"""The ``fewcolor`` command line. Heavy imports happen inside commands so ``--help`` is instant."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from fewcolor import __version__


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _parse_overrides(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``--set key=value`` pairs; values are parsed as JSON when they can be (numbers, bools, lists)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise click.BadParameter(f"expected key=value, got {pair!r}", param_hint="--set")
        key, raw = pair.split("=", 1)
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="fewcolor")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """fewcolor: few-shot automatic image colorization (train, adapt, evaluate, colorize)."""
    _setup_logging(verbose)


# ----------------------------------------------------------------------------------------------
@main.command("methods")
def methods_cmd() -> None:
    """List the registered colorization methods and their presets."""
    from fewcolor.methods.registry import available_methods

    for name, cls in available_methods().items():
        click.echo(f"{name:14s} {cls.summary}")
        click.echo(
            f"{'':14s} presets: {', '.join(sorted(cls.presets))}; "
            f"inference options: {', '.join(cls.inference_options) or 'none'}"
        )


@main.command("info")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def info_cmd(checkpoint: Path) -> None:
    """Show a checkpoint's metadata (method, config, step, normalisation) and tensor count."""
    from fewcolor.io.checkpoint import CheckpointError, load_checkpoint

    try:
        tensors, meta = load_checkpoint(checkpoint)
    except CheckpointError as exc:
        raise click.ClickException(str(exc)) from exc
    meta = dict(meta)
    meta["tensors"] = len(tensors)
    meta["parameters"] = int(sum(t.numel() for t in tensors.values()))
    click.echo(json.dumps(meta, indent=2, sort_keys=True, default=str))


# ----------------------------------------------------------------------------------------------
@main.command("train")
@click.option("--method", "method_name", required=True, help="Method name (see `fewcolor methods`).")
@click.option(
    "--data",
    "data_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of colour images (recursive; first-level subfolders are classes).",
)
@click.option(
    "-o",
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Run folder: checkpoints, logs, samples and the final model.safetensors.",
)
@click.option(
    "--split",
    "split_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Split file listing the training images (relative paths); default: every image.",
)
@click.option("--preset", default=None, help="Config preset of the method, e.g. cpu or paper (default: paper).")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config field (repeatable), e.g. --set lr=1e-4.",
)
@click.option("--steps", type=int, default=None, help="Optimisation steps (default: 1000 unless --epochs).")
@click.option("--epochs", type=float, default=None, help="Epochs over the data instead of --steps.")
@click.option("--batch-size", type=int, default=8, show_default=True, help="Images per step (per process).")
@click.option(
    "--size",
    type=int,
    default=None,
    help="Training crop size and working resolution (default: the config's image_size).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for init, data order and augmentation.")
@click.option("--resume", is_flag=True, help="Continue the run in --out exactly where it stopped.")
@click.option("--bf16", is_flag=True, help="bfloat16 autocast (a real speed-up on modern CPUs and GPUs).")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 ... (default: CUDA when present).")
@click.option("--checkpoint-every", type=int, default=500, show_default=True, help="Steps between checkpoints.")
@click.option("--sample-every", type=int, default=250, show_default=True, help="Steps between sample grids (0: never).")
@click.option("--no-flip", is_flag=True, help="Disable random horizontal flips.")
def train_cmd(
    method_name: str,
    data_dir: Path,
    out_dir: Path,
    split_file: Path | None,
    preset: str | None,
    overrides: tuple[str, ...],
    steps: int | None,
    epochs: float | None,
    batch_size: int,
    size: int | None,
    seed: int,
    resume: bool,
    bf16: bool,
    device: str | None,
    checkpoint_every: int,
    sample_every: int,
    no_flip: bool,
) -> None:
    """Train a colorization method on a folder of colour images.

    Runs under torchrun for data-parallel training:
    `torchrun --nproc-per-node 2 -m fewcolor train ...`.
    """
    import torch

    from fewcolor.data.folder import ImageFolderDataset
    from fewcolor.data.transforms import train_transform
    from fewcolor.methods.registry import build_method
    from fewcolor.train.loop import TrainOptions, train

    values = _parse_overrides(overrides)
    torch.manual_seed(seed)  # weight init is part of the seeded run
    try:
        method = build_method(method_name, preset, values)
    except KeyError as exc:
        raise click.ClickException(str(exc.args[0])) from exc
    if size is not None and hasattr(method.config, "image_size") and "image_size" not in values:
        torch.manual_seed(seed)
        method = build_method(method_name, preset, {**values, "image_size": size})
    crop = size or getattr(method.config, "image_size", 256)
    dataset = ImageFolderDataset(
        data_dir, split_file=split_file, transform=train_transform(crop, flip=not no_flip), seed=seed
    )
    if steps is None and epochs is None:
        steps = 1000
    opts = TrainOptions(
        out_dir=out_dir,
        steps=steps,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        checkpoint_every=checkpoint_every,
        sample_every=sample_every,
        bf16=bf16,
        device=device,
        resume=resume,
    )
    try:
        result = train(method, dataset, opts)
    except (FileExistsError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    if result.checkpoint is not None:
        click.echo(f"trained {method_name} for {result.step} steps in {result.wall_seconds:.0f} s: {result.checkpoint}")


# ----------------------------------------------------------------------------------------------
def _collect_inputs(inputs: tuple[Path, ...]) -> list[tuple[Path, Path]]:
    """(file, path relative to what the user named) for files and folders (recursive)."""
    from fewcolor.io.image import list_images

    pairs: list[tuple[Path, Path]] = []
    for item in inputs:
        if item.is_dir():
            pairs += [(p, p.relative_to(item)) for p in list_images(item)]
        else:
            pairs.append((item, Path(item.name)))
    return pairs


@main.command("colorize")
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "-o",
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder; relative paths of folder inputs are kept, outputs are PNG.",
)
@click.option("--size", type=int, default=None, help="Working resolution (longer side) of the network.")
@click.option("--device", default=None, help="cpu, cuda ... (default: CUDA when present).")
@click.option(
    "--temperature", type=float, default=None, help="CIC annealed-mean temperature (default 0.38; →0 mode, 1 mean)."
)
@click.option(
    "--global-from",
    "global_from",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Iizuka: take the global (scene) features from this image instead (style transfer).",
)
def colorize_cmd(
    model: Path, inputs: tuple[Path, ...], out_dir: Path, size: int | None, device: str | None, **options: Any
) -> None:
    """Colorize image files or folders with a trained MODEL (any size; the full-resolution L is kept).

    Bad files are reported and skipped; inputs are never overwritten.
    """
    from tqdm.auto import tqdm

    from fewcolor.io.checkpoint import CheckpointError
    from fewcolor.io.image import ImageReadError
    from fewcolor.methods.base import InferenceOptionError
    from fewcolor.pipeline import Colorizer

    try:
        colorizer = Colorizer.from_checkpoint(model, device=device, size=size)
    except CheckpointError as exc:
        raise click.ClickException(str(exc)) from exc
    options = {k: v for k, v in options.items() if v is not None}
    pairs = _collect_inputs(inputs)
    if not pairs:
        raise click.ClickException(f"no images found in {', '.join(map(str, inputs))}")
    failed: list[str] = []
    done = 0
    for src, rel in tqdm(pairs, desc="colorize", unit="img"):
        dst = out_dir / rel.with_suffix(".png")
        if dst.resolve() == src.resolve():
            failed.append(f"{src}: output would overwrite the input; choose another -o")
            continue
        try:
            colorizer.colorize_file(src, dst, **options)
            done += 1
        except InferenceOptionError as exc:
            raise click.ClickException(str(exc)) from exc
        except (ImageReadError, ValueError, OSError) as exc:
            failed.append(f"{src}: {exc}")
    click.echo(f"colorized {done} of {len(pairs)} images into {out_dir}")
    for msg in failed:
        click.echo(f"skipped {msg}", err=True)
    if done == 0:
        sys.exit(1)


# ----------------------------------------------------------------------------------------------
@main.command("demo")
@click.option(
    "-o",
    "--out",
    "out_dir",
    default=Path("runs/demo"),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the demo writes its run and page.",
)
@click.option(
    "--data",
    "data_dir",
    default=None,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of colour images (default: the committed emoji fixture).",
)
@click.option("--seconds", type=float, default=120.0, show_default=True, help="Rough training time budget.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for init, data order and augmentation.")
def demo_cmd(out_dir: Path, data_dir: Path | None, seconds: float, seed: int) -> None:
    """Train on a few images for a couple of minutes on CPU, colorize held-out grey images, write a page."""
    from fewcolor.demo import run_demo

    page = run_demo(out_dir, data_dir=data_dir, seconds=seconds, seed=seed)
    click.echo(f"demo page: {page.resolve()}")



# ----------------------------------------------------------------------------------------------
@main.group("data")
def data_group() -> None:
    """Benchmark datasets (docs/DATASETS.md): prepared into $FEWCOLOR_HOME/datasets, never the repo."""


@data_group.command("prepare")
@click.argument("name", type=click.Choice(["emoji-xstyle", "flowers12", "pokemon-frames", "tinyimagenet-fs"]))
@click.option("--smoke", is_flag=True, help="A tiny prefix of the splits (into NAME-smoke), for CI runs.")
@click.option("--source", type=click.Path(exists=True, path_type=Path), default=None,
              help="The archive or npm tarball (or the folder holding it) when not at its default place.")
@click.option("--force", is_flag=True, help="Rebuild even when the cached folder is complete.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Cache root (default: $FEWCOLOR_HOME, else ~/.cache/fewcolor).")
@click.option("--write-splits", is_flag=True, hidden=True,
              help="Maintainers: regenerate the committed split files from the whole archive.")
def data_prepare_cmd(name: str, smoke: bool, source: Path | None, force: bool, cache_dir: Path | None,
                     write_splits: bool) -> None:
    """Prepare dataset NAME (idempotent; checked against the committed split files)."""
    from fewcolor.data.recipes import PrepareError, prepare, read_done

    try:
        out = prepare(name, cache_dir=cache_dir, source=source, force=force, smoke=smoke,
                      write_splits=write_splits)
    except PrepareError as exc:
        raise click.ClickException(str(exc)) from exc
    done = read_done(out) or {}
    click.echo(f"{name}: {out}")
    click.echo(f"  splits: {done.get('counts', {})}  stats: {done.get('stats', {})}")

if __name__ == "__main__":
    main()
