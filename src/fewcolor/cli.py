"""The ``fewcolor`` command line. Heavy imports happen inside commands so ``--help`` is instant."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from fewcolor.version import __version__


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
@click.argument("name", required=False)
def methods_cmd(name: str | None) -> None:
    """List the registered methods; with NAME, every config field (type, default, doc), preset and
    inference option of that method (the fields are what `train --set KEY=VALUE` changes)."""
    from fewcolor.methods.registry import available_methods, get_method_class

    if name is None:
        for method_name, cls in available_methods().items():
            click.echo(f"{method_name:14s} {cls.summary}")
            click.echo(
                f"{'':14s} presets: {', '.join(sorted(cls.presets))}; "
                f"inference options: {', '.join(o.name for o in cls.inference_options) or 'none'}"
            )
        click.echo("\n`fewcolor methods NAME` shows a method's config fields, presets and inference options.")
        return
    try:
        cls = get_method_class(name)
    except KeyError as exc:
        raise click.ClickException(str(exc.args[0])) from exc
    click.echo(_describe_method(cls))


def _describe_method(cls: Any) -> str:
    """The text of `fewcolor methods NAME`: summary, config fields, presets, inference options."""
    import textwrap

    from fewcolor.methods.options import config_fields

    lines = [f"{cls.name}: {cls.summary}", "", "config fields (train --set KEY=VALUE; defaults are the paper's):"]
    for f in config_fields(cls.Config):
        lines.append(f"  {f.name} ({f.type}, default {f.default!r})")
        if f.choices:
            lines.append(f"      one of: {', '.join(map(str, f.choices))}")
        if f.doc:
            lines.append(textwrap.fill(f.doc, width=100, initial_indent=" " * 6, subsequent_indent=" " * 6))
    lines += ["", "presets (train --preset NAME):"]
    for preset, values in sorted(cls.presets.items()):
        shown = ", ".join(f"{k}={v!r}" for k, v in values.items()) or "the defaults"
        lines.append(f"  {preset}: {shown}")
    lines += ["", "inference options (colorize --OPTION):"]
    for opt in cls.inference_options:
        default = "" if opt.default is None else f", default {opt.default}"
        lines.append(f"  {opt.flag} ({opt.kind}{default}): {opt.help}")
        if opt.sweep:
            lines.append(f"  --{opt.sweep} K: K outputs NAME_v1.png ... NAME_vK.png with {opt.name} = 1 ... K")
    if not cls.inference_options:
        lines.append("  none")
    return "\n".join(lines)


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
@click.option(
    "--preset",
    default=None,
    help="Config preset of the method, e.g. cpu or paper (default: cpu when training on a CPU, else paper, "
    "the paper's settings: hours per run on a CPU).",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config field (repeatable), e.g. --set lr=1e-4; `fewcolor methods NAME` lists the fields.",
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

    `fewcolor methods NAME` lists the method's config fields (for --set), presets and their values.
    Runs under torchrun for data-parallel training:
    `torchrun --nproc-per-node 2 -m fewcolor train ...`.
    """
    import torch

    from fewcolor.data.folder import ImageFolderDataset
    from fewcolor.data.transforms import train_transform
    from fewcolor.methods.registry import build_method, get_method_class
    from fewcolor.train.loop import TrainOptions, train

    values = _parse_overrides(overrides)
    torch.manual_seed(seed)  # weight init is part of the seeded run
    try:
        if preset is None:
            preset = _default_preset(get_method_class(method_name).presets, device)
        config_fields = {f.name for f in dataclasses.fields(get_method_class(method_name).Config)}
        if size is not None and "image_size" in config_fields:
            values.setdefault("image_size", size)
        method = build_method(method_name, preset, values)
    except KeyError as exc:
        raise click.ClickException(str(exc.args[0])) from exc
    crop = size if size else int(getattr(method.config, "image_size", 256))
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


def _default_preset(presets: dict[str, Any], device: str | None) -> str | None:
    """``cpu`` (said in one line) when training would run on a CPU and the method has that preset, else
    None (the config defaults: the paper's settings)."""
    import torch

    on_cpu = device.startswith("cpu") if device else not torch.cuda.is_available()
    if on_cpu and "cpu" in presets:
        click.echo("no --preset given and training on a CPU: using the `cpu` preset (small networks and images; "
                   "--preset paper for the paper's settings)", err=True)
        return "cpu"
    return None


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


def _option_param(opt: Any, methods: list[str]) -> list[click.Option]:
    """The click option(s) for one inference option declaration (see fewcolor.methods.options)."""
    who = ", ".join(methods)
    extra = f" (default {opt.default})" if opt.default is not None else ""
    text = f"[{who}] {opt.help}{extra}."
    if opt.kind == "float":
        ptype: Any = click.FloatRange(opt.minimum, opt.maximum) if (opt.minimum, opt.maximum) != (None, None) else float
    elif opt.kind == "int":
        ptype = click.IntRange(opt.minimum, opt.maximum) if (opt.minimum, opt.maximum) != (None, None) else int
    elif opt.kind == "str":
        ptype = click.Choice(opt.choices) if opt.choices else str
    elif opt.kind == "bool":
        dash = opt.flag[2:]
        return [click.Option([f"--{dash}/--no-{dash}", opt.name], default=None, help=text)]
    else:  # image-l / image-rgb
        ptype = click.Path(exists=True, dir_okay=False, path_type=Path)
    params = [click.Option([opt.flag, opt.name], type=ptype, default=None, help=text)]
    if opt.sweep:
        params.append(click.Option(
            [f"--{opt.sweep.replace('_', '-')}", opt.sweep], type=click.IntRange(min=1), default=None,
            help=f"[{who}] write K outputs NAME_v1.png ... NAME_vK.png with {opt.name} = 1 ... K ({opt.help}).",
        ))
    return params


class _RegistryCommand(click.Command):
    """A command whose options include every registered method's inference options.

    They are generated on each use (parsing or --help) from the registry, so `fewcolor --help` imports
    no method and a method registered later still shows up.
    """

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        from fewcolor.methods.registry import inference_option_table

        params = list(self.params)
        taken = {p.name for p in params}
        for name, (opt, methods) in inference_option_table().items():
            for param in _option_param(opt, methods):
                if param.name in taken:
                    raise click.ClickException(
                        f"inference option {name!r} of {', '.join(methods)} clashes with colorize's own "
                        f"--{param.name}; rename the option in the method"
                    )
                taken.add(param.name)
                params.append(param)
        help_option = self.get_help_option(ctx)
        return params if help_option is None else [*params, help_option]


@main.command("colorize", cls=_RegistryCommand)
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
def colorize_cmd(
    model: Path, inputs: tuple[Path, ...], out_dir: Path, size: int | None, device: str | None, **options: Any
) -> None:
    """Colorize image files or folders with a trained MODEL (any size; the full-resolution L is kept).

    Bad files are reported and skipped; inputs are never overwritten. The method options below come
    from the registered methods; each says which methods take it.
    """
    from tqdm.auto import tqdm

    from fewcolor.io.checkpoint import CheckpointError
    from fewcolor.io.image import ImageReadError
    from fewcolor.methods.base import InferenceOptionError
    from fewcolor.methods.registry import inference_option_table
    from fewcolor.pipeline import Colorizer

    try:
        colorizer = Colorizer.from_checkpoint(model, device=device, size=size)
    except CheckpointError as exc:
        raise click.ClickException(str(exc)) from exc
    # a sweep (e.g. --variants K) writes K outputs with its option set to 1..K
    sweeps = {opt.sweep: opt.name for opt, _ in inference_option_table().values() if opt.sweep}
    given = [(sweeps[k], int(v)) for k, v in options.items() if k in sweeps and v is not None]
    if len(given) > 1:
        raise click.UsageError(f"give at most one of {', '.join('--' + k for k in sweeps)}")
    sweep = given[0] if given else None
    for key in sweeps:
        options.pop(key, None)
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
            if sweep is not None:
                name, count = sweep
                for i in range(1, count + 1):
                    colorizer.colorize_file(src, dst.with_name(f"{dst.stem}_v{i}.png"), **{**options, name: i})
            else:
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
@click.option(
    "--source",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="The archive or npm tarball (or the folder holding it) when not at its default place.",
)
@click.option("--force", is_flag=True, help="Rebuild even when the cached folder is complete.")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Cache root (default: $FEWCOLOR_HOME, else ~/.cache/fewcolor).",
)
@click.option(
    "--write-splits",
    is_flag=True,
    hidden=True,
    help="Maintainers: regenerate the committed split files from the whole archive.",
)
def data_prepare_cmd(
    name: str, smoke: bool, source: Path | None, force: bool, cache_dir: Path | None, write_splits: bool
) -> None:
    """Prepare dataset NAME (idempotent; checked against the committed split files)."""
    from fewcolor.data.recipes import PrepareError, prepare, read_done

    try:
        out = prepare(name, cache_dir=cache_dir, source=source, force=force, smoke=smoke, write_splits=write_splits)
    except PrepareError as exc:
        raise click.ClickException(str(exc)) from exc
    done = read_done(out) or {}
    click.echo(f"{name}: {out}")
    click.echo(f"  splits: {done.get('counts', {})}  stats: {done.get('stats', {})}")


# ----------------------------------------------------------------------------------------------
@main.command("bench")
@click.argument("protocol", required=False)
@click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Your own folder instead of PROTOCOL: each first-level subfolder is a class; per class the "
              "first K images by name are the support, the rest the queries.")
@click.option("--shots", default="1,5", show_default=True, help="With --data: comma-separated support sizes K.")
@click.option("--train-data", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="With --data: train the methods on this folder (default: on the support images of every class).")
@click.option("--image-size", type=click.IntRange(min=16), default=64, show_default=True,
              help="With --data: the side images are scored (and trained) at.")
@click.option(
    "--methods",
    required=True,
    help="Comma-separated method names, e.g. cgan,metalgan,cic; NAME@PRESET gives one method its own preset "
    "(cgan@metalgan-cpu: the same cGAN as MetalGAN's, without meta-learning).",
)
@click.option(
    "--preset",
    default="cpu",
    show_default=True,
    help="Config preset given to every method that has it (others use their defaults).",
)
@click.option(
    "--size",
    "size",
    type=click.Choice(["smoke", "cpu", "paper"]),
    default="cpu",
    show_default=True,
    help="Budget and data size: smoke (about a minute, tiny data), cpu (recorded runs), paper.",
)
@click.option("--smoke", is_flag=True, help="Shorthand for --size smoke.")
@click.option("--seeds", default="0", show_default=True, help="Comma-separated seeds (3 for headline pairs).")
@click.option(
    "--train-images",
    type=int,
    default=None,
    help="Override the training budget (generator image-gradient evaluations per method).",
)
@click.option("--adapt-steps", type=int, default=None, help="Override the per-episode adaptation budget.")
@click.option(
    "--batch-size",
    type=int,
    default=None,
    help="Override the batch size (training and adaptation; MetalGAN: queries per loop step). The training "
    "budget stays in images, so a smaller batch means more, smaller updates.",
)
@click.option("--episodes", "max_episodes", type=int, default=None, help="Override the number of episodes.")
@click.option("--queries", "max_queries", type=int, default=None, help="Override the queries per episode.")
@click.option("--no-fid", is_flag=True, help="Skip FID/KID (the Inception pass is the slowest part on CPU).")
@click.option(
    "-o",
    "--out",
    "out_root",
    default=Path("results"),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Results folder (one subfolder per protocol).",
)
@click.option(
    "--results-md",
    default=Path("docs/RESULTS.md"),
    show_default=True,
    type=click.Path(path_type=Path),
    help="Markdown file the dated table is appended to.",
)
@click.option("--set", "overrides", multiple=True, metavar="METHOD.KEY=VALUE",
              help="Config override for one method (repeatable), e.g. --set metalgan.feature_size=64.")
@click.option("--device", default=None, help="cpu, cuda ... (default: CUDA when present).")
def bench_cmd(
    protocol: str | None,
    data_dir: Path | None,
    shots: str,
    train_data: Path | None,
    image_size: int,
    methods: str,
    preset: str,
    size: str,
    smoke: bool,
    seeds: str,
    train_images: int | None,
    adapt_steps: int | None,
    batch_size: int | None,
    max_episodes: int | None,
    max_queries: int | None,
    no_fid: bool,
    out_root: Path,
    results_md: Path,
    overrides: tuple[str, ...],
    device: str | None,
) -> None:
    """Benchmark METHODS on PROTOCOL (or on your folder, --data) with equal training and adaptation budgets.

    Protocols: tinyimagenet-fs-k{1,5,10}, pokemon-frames, pokemon-frames-shiny, flowers12-k{1,5},
    emoji-xstyle, or `all` (every protocol; meant for --smoke). Include the baselines `grey` and `lut`
    in METHODS: a method that does not beat them has not helped.
    """
    import shlex

    from fewcolor.bench.protocols import PROTOCOLS, folder_protocols, get_budget, get_protocol
    from fewcolor.bench.runner import run_benchmark

    size = "smoke" if smoke else size
    if (protocol is None) == (data_dir is None):
        raise click.UsageError("give a PROTOCOL or --data FOLDER (not both)")
    try:
        if data_dir is not None:
            try:
                ks = [int(k) for k in shots.split(",") if k.strip()]
            except ValueError:
                raise click.BadParameter(f"expected comma-separated integers, got {shots!r}",
                                         param_hint="--shots") from None
            protocols = folder_protocols(data_dir, ks, image_size, train_data)
        else:
            assert protocol is not None
            names = list(PROTOCOLS) if protocol == "all" else [protocol]
            protocols = [get_protocol(n) for n in names]
        budget = get_budget(
            size,
            train_images=train_images,
            adapt_steps=adapt_steps,
            batch_size=batch_size,
            max_episodes=max_episodes,
            max_queries=max_queries,
        )
    except (KeyError, FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc.args[0])) from exc
    per_method: dict[str, dict[str, Any]] = {}
    for key, value in _parse_overrides(overrides).items():
        if "." not in key:
            raise click.BadParameter(f"expected METHOD.KEY=VALUE, got {key!r}", param_hint="--set")
        method_name, field_name = key.split(".", 1)
        per_method.setdefault(method_name, {})[field_name] = value
    command = "fewcolor " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    for proto in protocols:
        result = run_benchmark(
            proto,
            [m.strip() for m in methods.split(",") if m.strip()],
            budget,
            size,
            preset=preset,
            seeds=[int(s) for s in seeds.split(",")],
            out_root=out_root,
            results_md=results_md,
            command=command,
            device=device,
            fid=not no_fid,
            overrides=per_method,
        )
        click.echo(result["table"])
        click.echo(f"gallery: {result['gallery']}")


# ----------------------------------------------------------------------------------------------
@main.command("cluster")
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--k", "k", type=int, default=64, show_default=True, help="Number of clusters (tasks).")
@click.option(
    "-o",
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for assignments.csv, clusters.json and the contact sheet index.html.",
)
@click.option(
    "--backbone",
    default="auto",
    show_default=True,
    help="auto (ResNet50 layer4.0 if its weights resolve, else VGG16 features.29) or name:layer.",
)
@click.option("--pca-dim", type=int, default=512, show_default=True, help="PCA dimensions before K-means.")
@click.option("--feature-size", type=int, default=224, show_default=True, help="Image side for the descriptors.")
@click.option("--per-row", type=int, default=8, show_default=True, help="Sample images per cluster on the sheet.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of K-means and of the sampled images.")
def cluster_cmd(
    data_dir: Path, k: int, out_dir: Path, backbone: str, pca_dim: int, feature_size: int, per_row: int, seed: int
) -> None:
    """Cluster DATA_DIR into MetalGAN tasks (MAC descriptors → PCA → K-means); write a contact sheet."""
    from fewcolor.backbones.clustering import cluster_dataset
    from fewcolor.data.folder import ImageFolderDataset
    from fewcolor.data.tasks import write_cluster_report

    dataset = ImageFolderDataset(data_dir)
    if k > len(dataset):
        raise click.ClickException(f"{data_dir} holds {len(dataset)} usable images; choose --k <= {len(dataset)}")
    try:
        tasks = cluster_dataset(dataset, k, pca_dim, backbone, feature_size, seed)
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    page = write_cluster_report(tasks, dataset, out_dir, per_row=per_row, seed=seed)
    click.echo(f"{tasks.k} clusters of {len(dataset)} images ({tasks.info['backbone']}/{tasks.info['layer']}): {page}")


@main.command("adapt")
@click.argument("model", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--data",
    "data_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder with your own 1-10 colour images (subfolders included).",
)
@click.option(
    "-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path), help="New checkpoint."
)
@click.option("--steps", type=click.IntRange(min=0), default=None,
              help="Adaptation steps (default: the method's own, see docs/ADAPT.md).")
@click.option("--lr-factor", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Multiply the fine-tuning learning rates (default: the method's own).")
@click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True,
              help="Images per fine-tuning step (at most the number of images).")
@click.option("--no-holdout", is_flag=True,
              help="Skip the check that holds the last image out and scores it before and after (>= 3 images).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the crops, flips, batches and dropout.")
@click.option("--device", default=None, help="cpu, cuda ... (default: cpu).")
def adapt_cmd(model: Path | None, data_dir: Path, out_path: Path, steps: int | None, lr_factor: float | None,
              batch_size: int, no_holdout: bool, seed: int, device: str | None) -> None:
    """Adapt MODEL (any method; default: the bundled base model) to a few of your own colour images.

    The method's own mechanism where it has one (MetalGAN's inner loop; LUT rebuilds its table;
    MemoPainter writes the images into its memory, then fine-tunes), else fine-tuning with fresh
    optimisers on seeded crops and flips. With 3 or more images the last one is first held out and
    scored (LPIPS, ΔE00) before and after; the saved model is adapted to all of them.
    """
    from fewcolor.bench.adapt_folder import adapt_folder
    from fewcolor.io.checkpoint import CheckpointError

    try:
        r = adapt_folder(model, data_dir, out_path, steps=steps, lr_factor=lr_factor, seed=seed,
                         batch_size=batch_size, holdout=not no_holdout, device=device)
    except (CheckpointError, FileNotFoundError, FileExistsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    if r.held_out is not None and r.after is not None:
        def fmt(scores: dict[str, float | None] | None) -> str:
            if scores is None:
                return "n/a"
            lp = scores.get("lpips")
            return (f"LPIPS {lp:.3f}, " if lp is not None else "") + f"ΔE00 {scores['delta_e2000']:.2f}"

        click.echo(f"held-out {r.held_out}: before {fmt(r.before)} -> after {fmt(r.after)} "
                   f"(adapted to the other {r.images - 1} images)")
    click.echo(f"{r.method}: adapted ({r.how}) to {r.images} images in {r.steps} steps, lr x{r.lr_factor:g}, "
               f"{r.seconds:.0f} s: {r.path}")


@main.group("memory")
def memory_group() -> None:
    """Look inside a MemoPainter model's colour memory."""


@memory_group.command("inspect")
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("query", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--out", "page", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="HTML page to write (images go to PAGE_files/ beside it).")
@click.option("--top-k", type=click.IntRange(min=1), default=8, show_default=True, help="Memory slots to show.")
def memory_inspect_cmd(model: Path, query: Path, page: Path, top_k: int) -> None:
    """Write an HTML page with QUERY and the top-k memory slots it retrieves (colour swatches, similarities)."""
    from fewcolor.io.checkpoint import CheckpointError
    from fewcolor.io.image import ImageReadError, read_rgb
    from fewcolor.methods.base import InferenceOptionError
    from fewcolor.methods.memopainter import MemoPainter
    from fewcolor.methods.registry import load_method
    from fewcolor.viz.memory import memory_page

    try:
        method = load_method(model)
        if not isinstance(method, MemoPainter):
            raise click.ClickException(f"{model} is a {method.name!r} model; memory inspect needs a memopainter one")
        out = memory_page(method, read_rgb(query), page, top_k=top_k)
    except (CheckpointError, ImageReadError, InferenceOptionError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"wrote {out}")


# ----------------------------------------------------------------------------------------------
@main.command("weights")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def weights_cmd(as_json: bool) -> None:
    """Every pretrained network: where its weights would come from, and whether they are present."""
    from fewcolor.backbones.weights import format_weights_table, weights_table

    rows = weights_table()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(format_weights_table(rows), nl=False)


@main.command("evaluate")
@click.argument("model", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--pred", "pred_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of colorized outputs (matched to --truth by relative path without suffix).")
@click.option("--truth", "truth_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of ground-truth colour images.")
@click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="With MODEL: colour images to colorize (from their L) and score.")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder for metrics.json and report.html.")
@click.option("--size", type=int, default=None,
              help="Score at SIZE×SIZE (prediction and truth resized alike); default: the truth's resolution.")
@click.option("--work-size", type=int, default=None, help="With MODEL: working resolution of the network.")
@click.option("--lpips", "lpips_net", type=click.Choice(["alex", "vgg"]), default="alex", show_default=True,
              help="LPIPS v0.1 backbone.")
@click.option("--no-fid", is_flag=True, help="Skip FID/KID/IS (the Inception pass is the slow part on CPU).")
@click.option("--allow-missing", is_flag=True,
              help="With --pred/--truth: score the truths that have a prediction and report how many had none "
              "(default: refuse a partial folder).")
@click.option("--inception-weights", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth: the same features plus the 1008-way "
                   "logits that the Inception Score needs.")
@click.option("--allow-download", is_flag=True,
              help="Allow downloading missing weights from their official URLs (sha256-checked).")
@click.option("--batch-size", type=int, default=16, show_default=True, help="Images per Inception batch.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the KID subsets.")
@click.option("--device", default=None, help="cpu, cuda ... (default: cpu).")
def evaluate_cmd(model: Path | None, pred_dir: Path | None, truth_dir: Path | None, data_dir: Path | None,
                 out_dir: Path, size: int | None, work_size: int | None, lpips_net: str, no_fid: bool,
                 allow_missing: bool, inception_weights: Path | None, allow_download: bool, batch_size: int, seed: int,
                 device: str | None) -> None:
    """Score colorizations: `evaluate --pred DIR --truth DIR` or `evaluate MODEL --data DIR`.

    Writes metrics.json (per image and aggregate with 95 % CI, plus the protocol) and report.html.
    """
    import os

    from fewcolor.backbones.weights import ENV_ALLOW_DOWNLOAD, WeightsNotFoundError
    from fewcolor.metrics.evaluate import EvalConfig, evaluate_folders, evaluate_model

    if allow_download:
        os.environ[ENV_ALLOW_DOWNLOAD] = "1"
    cfg = EvalConfig(size=size, lpips_net=lpips_net, fid=not no_fid, batch_size=batch_size, device=device,
                     seed=seed, inception_weights=str(inception_weights) if inception_weights else None)
    try:
        if model is not None:
            if data_dir is None or pred_dir or truth_dir:
                raise click.UsageError("with MODEL give --data DIR (and not --pred/--truth)")
            result = evaluate_model(model, data_dir, out_dir, cfg, work_size=work_size)
        else:
            if not (pred_dir and truth_dir) or data_dir:
                raise click.UsageError("give --pred DIR and --truth DIR, or MODEL --data DIR")
            result = evaluate_folders(pred_dir, truth_dir, out_dir, cfg, allow_missing=allow_missing)
    except (WeightsNotFoundError, FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    agg = result["aggregate"]
    parts = [f"{m} {agg[m]['mean']:.4g}" for m in ("psnr", "ssim", "lpips", "delta_e2000", "auc")]
    fid = result["set"].get("fid")
    if fid is not None:
        parts.append(f"FID {fid:.4g}")
    click.echo(f"{len(result['per_image'])} images: " + ", ".join(parts))
    missing = result.get("missing") or []
    if missing:
        click.echo(f"{len(missing)} of {len(missing) + len(result['per_image'])} truth images had no prediction "
                   f"and were not scored, e.g. {', '.join(missing[:3])} (all listed in metrics.json)")
    click.echo(f"wrote {out_dir / 'metrics.json'} and {out_dir / 'report.html'}")


if __name__ == "__main__":
    main()
