"""The ``fewcolor`` command line. Heavy imports happen inside commands so ``--help`` is instant.

Every command runs inside one error boundary (:class:`_Main`): a known mistake or failure (a bad file,
a damaged checkpoint, an impossible config, a device that is not there) is printed as ONE line
``Error: ...`` naming the file or option and the fix, with exit status 2 for usage mistakes and 1 for
failures; ``-v`` shows the traceback instead. Numeric options carry their ranges in their click types.
"""

from __future__ import annotations

import dataclasses
import errno
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


def parse_overrides(pairs: tuple[str, ...]) -> dict[str, Any]:
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


class UsageFailure(click.ClickException):
    """A usage mistake found after parsing (a config value, a device, an output folder): one line, exit 2."""

    exit_code = 2


def _one_line(exc: BaseException) -> str:
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    return " ".join(text.split()) or type(exc).__name__


def _known_error(exc: Exception) -> click.ClickException | None:
    """The one-line click error for a known mistake or failure; None for anything else (a bug)."""
    from fewcolor.hardware import DeviceError
    from fewcolor.io.checkpoint import CheckpointError
    from fewcolor.io.paths import OutputPathError
    from fewcolor.methods.options import ConfigError, InferenceOptionError

    # registry look-ups (unknown method, preset, protocol, backbone) raise KeyError with a sentence; a bare
    # KeyError('x') is a bug and keeps its traceback
    worded_key = isinstance(exc, KeyError) and bool(exc.args) and " " in str(exc.args[0])
    if worded_key or isinstance(exc, (ConfigError, DeviceError, OutputPathError, InferenceOptionError)):
        return UsageFailure(_one_line(exc))
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return click.ClickException(f"no space left on the device while writing {exc.filename or 'a file'}; "
                                    "free some space and run again (--resume continues a training run)")
    if isinstance(exc, (CheckpointError, OSError, ValueError)):
        return click.ClickException(_one_line(exc))
    if isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and "allocate" in str(exc)):
        return click.ClickException(f"out of memory ({_one_line(exc)[:120]}); use a smaller --size, "
                                    "--batch-size or pixel budget")
    return None


class _Main(click.Group):
    """The ``fewcolor`` group: runs every command inside the error boundary described in the module doc."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:  # a sub-command's parse error: one line instead of click's usage block
            where = exc.ctx.command_path if exc.ctx is not None else "fewcolor"
            raise UsageFailure(f"{exc.format_message()} (`{where} -h` explains every option)") from exc
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except Exception as exc:
            # TrainingInterrupted is looked up, not imported: importing the training loop (and torch) here
            # made every `fewcolor COMMAND --help` take seconds; an instance exists only once it is loaded.
            loop = sys.modules.get("fewcolor.train.loop")
            if loop is not None and isinstance(exc, loop.TrainingInterrupted):
                click.echo(str(exc), err=True)
                ctx.exit(128 + exc.signum)
            known = _known_error(exc)
            if known is None or ctx.params.get("verbose"):
                raise
            raise known from exc


class _DeviceType(click.ParamType):
    """cpu, cuda, cuda:N or mps, checked against this machine when parsed."""

    name = "device"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from fewcolor.hardware import DeviceError, resolve_device

        try:
            return str(resolve_device(str(value)))
        except DeviceError as exc:
            self.fail(_one_line(exc).removeprefix("--device ").removeprefix(f"{value}: "), param, ctx)


DEVICE = _DeviceType()


class _SeedType(click.ParamType):
    """A seed: an integer from 0 to 2**63 - 1, shown as a plain INTEGER in the help (click's IntRange printed
    the whole range there); a value outside is refused with the range in words."""

    name = "integer"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        number = click.INT.convert(value, param, ctx)
        if not 0 <= number < 2**63:
            self.fail(f"{number} is not a seed: give an integer from 0 to 2^63 - 1", param, ctx)
        return int(number)


SEED = _SeedType()


class _RegistryHelpOption(click.Option):
    """An option whose help ends with a list made from the method registry (``extra``), made only when the
    help is shown: the registry (and torch) is not imported to parse a command line."""

    def __init__(self, *args: Any, extra: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.extra = extra

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        plain = self.help
        self.help = f"{plain} {self.extra()}" if plain else str(self.extra())
        try:
            return super().get_help_record(ctx)
        finally:
            self.help = plain


def _method_names_help() -> str:
    from fewcolor.methods.registry import available_methods

    return f"Registered: {', '.join(available_methods())}."


def _presets_help() -> str:
    from fewcolor.methods.registry import available_methods

    return "Presets by method: " + "; ".join(f"{name}: {', '.join(sorted(cls.presets))}"
                                           for name, cls in available_methods().items()) + "."


def _method_class(name: str, option: str) -> Any:
    """The registered method class ``name``; an unknown name is one usage error naming ``option``, the
    registered names and the nearest one ("did you mean exemplar?")."""
    from fewcolor.methods.registry import available_methods

    methods = available_methods()
    if name not in methods:
        raise click.BadParameter(f"unknown method {name!r} (registered: {', '.join(methods)})"
                                 f"{_did_you_mean(name, methods)}", param_hint=option)
    return methods[name]


def _did_you_mean(name: str, known: Any) -> str:
    """``; did you mean X?`` for the closest of ``known`` names to a misspelt ``name`` (difflib), else ''."""
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


class _ChoiceOrFile(click.ParamType):
    """A ``local_path`` inference option (e.g. Exemplar's ``--fallback``): one of its choices, or an existing
    file, checked when the command line is parsed (before a model loads or an output is made)."""

    name = "choice-or-file"

    def __init__(self, choices: tuple[str, ...]) -> None:
        self.choices = choices

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return f"[{'|'.join(self.choices)}|FILE]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if text in self.choices or Path(text).is_file():
            return text
        self.fail(f"{text!r} is neither one of {', '.join(self.choices)} nor an existing file"
                  f"{_did_you_mean(text, self.choices)}", param, ctx)


class _ModelType(click.ParamType):
    """A model argument: a checkpoint file, or ``base`` for the bundled base model (see resolve_model_arg)."""

    name = "MODEL|base"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path:
        try:
            return resolve_model_arg(value, param.human_readable_name if param else "MODEL")
        except click.BadParameter as exc:
            self.fail(exc.message, param, ctx)


MODEL = _ModelType()


class _CheckpointOf(click.ParamType):
    """A checkpoint of one method, for a command that cannot use the bundled model: ``base`` is answered
    plainly instead of with "File 'base' does not exist"."""

    name = "CHECKPOINT"

    def __init__(self, method: str, what: str) -> None:
        self.method, self.what = method, what

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path:
        if isinstance(value, Path):
            return value
        if str(value) == "base":
            self.fail(f"`base`, the bundled base model, is not a {self.method} model; {self.what} needs a "
                      f"{self.method} checkpoint (fewcolor train --method {self.method})", param, ctx)
        path = Path(value)
        if not path.is_file():
            self.fail(f"{path} is not a file; give a {self.method} checkpoint (.safetensors)", param, ctx)
        return path


def output_file(path: Path, suffix: str, what: str, inputs: tuple[Path | None, ...] = (),
                overwrite: bool = False) -> Path:
    """``-o`` naming a file the command writes: it must end in ``suffix`` (a model written as ``x.png`` would
    replace an image and could never be loaded), must not be one of ``inputs``, must not exist unless
    ``overwrite`` (--overwrite), and its folder must be creatable and writable, checked before any work
    without creating it (the writer does, so a failed run leaves no empty folder)."""
    from fewcolor.io.paths import check_new

    if path.suffix.lower() != suffix:
        fixed = path.with_suffix("") if Path(path.stem).suffix.lower() == suffix else path.with_suffix(suffix)
        raise click.BadParameter(f"{path}: {what} are {suffix} files; e.g. -o {fixed}", param_hint="-o")
    if path.is_dir():
        raise click.BadParameter(f"{path} is a folder; give a {suffix} file name", param_hint="-o")
    _not_an_input(path, inputs)
    if not overwrite:
        check_new([path])
    return output_dir(path, file=True)


def _not_an_input(path: Path, inputs: tuple[Path | None, ...], option: str = "-o") -> None:
    """Refuse an output path that is one of the command's input files."""
    for item in inputs:
        if item is not None and path.exists() and path.resolve() == Path(item).resolve():
            raise click.BadParameter(f"{path} is an input of this command and would be overwritten; choose another "
                                     "output path", param_hint=option)


def _unwritable(option: str, path: Path, exc: OSError) -> UsageFailure:
    return UsageFailure(f"{option} {path}: cannot write there ({exc.strerror or _one_line(exc)}); "
                        "choose another path")


def _probe_writable(folder: Path, option: str, shown: Path) -> None:
    """Create and remove a probe file in the existing ``folder``: an output that cannot be written fails now,
    naming ``option``, not after the work with a bare errno."""
    import os
    import tempfile

    try:
        fd, name = tempfile.mkstemp(prefix=".fewcolor-probe-", dir=folder)
    except OSError as exc:
        raise _unwritable(option, shown, exc) from None
    os.close(fd)
    os.unlink(name)


def output_dir(path: Path, option: str = "-o", file: bool = False) -> Path:
    """An output folder the command fills (``file``: an output file's folder): not a file, and writable where
    it is (or would be) created; the nearest existing folder is probed, so nothing is created before the
    work starts."""
    if not file and path.exists() and not path.is_dir():
        raise click.BadParameter(f"{path} is a file; give a folder", param_hint=option)
    existing = (path.parent if file else path).absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageFailure(f"{option} {path}: cannot write there ({existing} is a file); choose another path")
    _probe_writable(existing, option, path)
    return path


#: working / training resolutions: below 8 px there is nothing to colour, above 4096 no CPU has the memory
RESOLUTION = click.IntRange(8, 4096)


def _overwrite_option(what: str) -> Any:
    """``--overwrite`` of a command writing ``what``: without it an output that exists is refused before any
    work (one line naming the first and how many)."""
    return click.option("--overwrite", is_flag=True,
                        help=f"Replace {what} when it exists already; without it the command refuses, before any "
                        "work, to write over an existing file (naming it).")


def _device_option(default_help: str = "CUDA when present") -> Any:
    return click.option("--device", type=DEVICE, default=None,
                        help=f"cpu, cuda, cuda:N or mps, checked to exist here (default: {default_help}).")


def _parse_seeds(ctx: click.Context, param: click.Parameter, value: str) -> list[int]:
    try:
        seeds = [int(s) for s in value.split(",") if s.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers such as 0,1,2, got {value!r}") from None
    if not seeds or any(s < 0 for s in seeds):
        raise click.BadParameter(f"expected comma-separated integers >= 0 such as 0,1,2, got {value!r}")
    return seeds


def _megapixels(value: float | None) -> int | None:
    return None if value is None else max(1, int(value * 1_000_000))


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="fewcolor")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """fewcolor: few-shot automatic image colorization (train, adapt, evaluate, colorize)."""
    _setup_logging(verbose)


# ----------------------------------------------------------------------------------------------
@main.command("methods", short_help="List the methods, or one method's fields, presets and options.")
@click.argument("name", required=False)
def methods_cmd(name: str | None) -> None:
    """List the registered methods; with NAME, every config field (type, default, doc), preset and
    inference option of that method (the fields are what `train --set KEY=VALUE` changes)."""
    from fewcolor.methods.registry import available_methods

    if name is None:
        for method_name, cls in available_methods().items():
            click.echo(f"{method_name:14s} {cls.summary}")
            click.echo(
                f"{'':14s} presets: {', '.join(sorted(cls.presets))}; "
                f"inference options: {', '.join(o.flag for o in cls.inference_options) or 'none'}"
            )
        click.echo("\n`fewcolor methods NAME` shows a method's config fields, presets and inference options.")
        return
    click.echo(_describe_method(_method_class(name, "NAME")))


def _describe_method(cls: Any) -> str:
    """The text of `fewcolor methods NAME`: summary, config fields, presets, inference options."""
    import textwrap

    from fewcolor.methods.options import config_fields

    lines = [f"{cls.name}: {cls.summary}", "",
             "config fields (train --set KEY=VALUE; defaults are the paper's unless a field says otherwise):"]
    for f in config_fields(cls.Config):
        lines.append(f"  {f.name} ({f.type}, default {f.default!r})")
        if f.choices:
            lines.append(f"      one of: {', '.join(map(str, f.choices))}")
        if f.doc:
            lines.append(textwrap.fill(f.doc, width=100, initial_indent=" " * 6, subsequent_indent=" " * 6))
    lines += ["", "presets (train --preset NAME):"]
    for preset, values in sorted(cls.presets.items()):
        shown = ", ".join(f"{k}={v!r}" for k, v in values.items()) or "the defaults"
        batch = cls.preset_batch_sizes.get(preset)
        lines.append(f"  {preset}: {shown}" + (f" (batch size {batch})" if batch else ""))
    lines += ["", "inference options (colorize --OPTION; also `evaluate MODEL` and `bench`, e.g. `bench ... "
              "--temperature 1`, less image options and sweeps in bench):"]
    for opt in cls.inference_options:
        default = "" if opt.default is None else f", default {opt.default}"
        lines.append(f"  {opt.flag} ({opt.kind}{default}): {opt.help}")
        if opt.sweep:
            lines.append(f"  --{opt.sweep} K: K outputs NAME_v1.png ... NAME_vK.png with {opt.name} = 1 ... K")
    if not cls.inference_options:
        lines.append("  none")
    return "\n".join(lines)


@main.command("info", short_help="Show a checkpoint's metadata, config and tensor count.")
@click.argument("checkpoint", type=MODEL)
def info_cmd(checkpoint: Path) -> None:
    """Show a checkpoint's metadata (method, config, step, normalisation) and tensor count (`base`: the
    bundled model's)."""
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
@main.command("train", short_help="Train a method on a folder of colour images.")
@click.option("--method", "method_name", required=True, cls=_RegistryHelpOption, extra=_method_names_help,
              help="Method name (`fewcolor methods` describes them).")
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
    cls=_RegistryHelpOption,
    extra=_presets_help,
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
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=None,
    help="Optimisation steps (default: the method's own run length when its config sets one, e.g. MetalGAN's "
    "meta_epochs, else 1000; or give --epochs).",
)
@click.option("--epochs", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Epochs over the data instead of --steps.")
@click.option("--minutes", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop after this many minutes of training steps in this run (set-up passes and the final save "
              "not counted; sample grids and --val scores counted), saving as at a normal end; --resume goes on "
              "towards --steps (the checkpoint records the training time of all runs). Learning-rate schedules still "
              "follow --steps/--epochs.")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Images per step (per process); default: the preset's batch size where the paper gives one "
    "(iizuka paper 128, cic paper 40, cgan fabbri 32), else 8.",
)
@click.option(
    "--size",
    type=RESOLUTION,
    default=None,
    help="Training crop size and working resolution, a multiple of the method's size multiple "
    "(default: the config's image_size).",
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed for init, data order and augmentation.")
@click.option("--resume", is_flag=True, help="Continue the run in --out exactly where it stopped.")
@click.option("--init", "init", default=None, metavar="MODEL|base",
              help="Start from this checkpoint's weights wherever names and shapes match (`base`: the bundled base "
              "model, e.g. for --set encoder=efficientnet-lite0); the log says which tensors were loaded.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default=None,
              help="auto (default): bf16 autocast where the hardware computes bf16 natively (CUDA, CPUs with "
              "AVX-512-BF16/AMX), else fp32; bf16 on a CPU that would emulate it falls back to fp32 with a warning.")
@click.option("--bf16", is_flag=True, help="Deprecated: the same as --precision bf16.")
@_device_option()
@click.option("--checkpoint-every", type=click.IntRange(min=0), default=500, show_default=True,
              help="Steps between checkpoints (0: only at the end, on Ctrl-C and by --checkpoint-minutes).")
@click.option("--checkpoint-minutes", type=click.FloatRange(min=0), default=10.0, show_default=True,
              help="Also save the training state when this many minutes have passed since the last save, so slow "
              "steps lose at most that much to a crash (0: by --checkpoint-every only). Each save keeps the one "
              "before it, the fallback of a damaged checkpoint.")
@click.option("--sample-every", type=click.IntRange(min=0), default=250, show_default=True,
              help="Steps between sample grids (0: never).")
@click.option("--no-flip", is_flag=True, help="Disable random horizontal flips.")
@click.option("--val", "val_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder of held-out colour images (never trained on): every --val-every steps the model colours "
              "them and OUT/validation.csv gets their mean LPIPS, ΔE00, PSNR and ΔCF, scored as `fewcolor evaluate` "
              "does, to see whether training still improves (a resume on another set keeps the old curve aside "
              "and starts a new one); under torchrun the first process scores while the others wait.")
@click.option("--val-every", type=click.IntRange(min=1), default=500, show_default=True,
              help="Steps between held-out scores with --val (also at the run's last step).")
@click.option("--val-images", type=click.IntRange(min=1), default=256, show_default=True,
              help="With --val: score at most this many of its images (a seeded choice); each round costs about "
              "what colouring them with `fewcolor colorize` costs.")
def train_cmd(
    method_name: str,
    data_dir: Path,
    out_dir: Path,
    split_file: Path | None,
    preset: str | None,
    overrides: tuple[str, ...],
    steps: int | None,
    epochs: float | None,
    minutes: float | None,
    batch_size: int | None,
    size: int | None,
    seed: int,
    resume: bool,
    init: str | None,
    precision: str | None,
    bf16: bool,
    device: str | None,
    checkpoint_every: int,
    checkpoint_minutes: float,
    sample_every: int,
    no_flip: bool,
    val_dir: Path | None,
    val_every: int,
    val_images: int,
) -> None:
    """Train a colorization method on a folder of colour images.

    `fewcolor methods NAME` lists the method's config fields (for --set), presets and their values.
    Runs under torchrun for data-parallel training:
    `torchrun --nproc-per-node 2 -m fewcolor train ...`. Ctrl-C (or SIGTERM) saves the state after the
    current step; --resume continues it.
    """
    import torch

    from fewcolor.data.folder import ImageFolderDataset
    from fewcolor.io.paths import check_outside
    from fewcolor.methods.registry import build_method, get_method_class, with_run_seed
    from fewcolor.train.loop import TrainOptions, train

    if steps is not None and epochs is not None:
        raise click.UsageError("--epochs is instead of --steps: give one of them")
    if split_file is None:  # a run folder inside the data would be read as training images (a split lists its own)
        check_outside(out_dir, [data_dir])
        if val_dir is not None and (val_dir.resolve().is_relative_to(data_dir.resolve())
                                    or data_dir.resolve().is_relative_to(val_dir.resolve())):
            raise click.BadParameter(f"{val_dir} and --data {data_dir} share images (one holds the other), so "
                                     "held-out images would be trained on; give a separate folder (or a --split "
                                     "that leaves them out)", param_hint="--val")

    if val_dir is not None:  # its sample grids would be scored as held-out images next round
        check_outside(out_dir, [val_dir])
    output_dir(out_dir)
    if bf16 and precision not in (None, "bf16"):
        raise click.BadParameter(f"--bf16 contradicts --precision {precision}", param_hint="--bf16")
    values = parse_overrides(overrides)
    _method_class(method_name, "--method")  # a misspelt name: "did you mean ...?"
    torch.manual_seed(seed)  # weight init is part of the seeded run
    if preset is None:
        preset = _default_preset(get_method_class(method_name).presets, device)
    config_fields = {f.name for f in dataclasses.fields(get_method_class(method_name).Config)}
    if size is not None and "image_size" in config_fields:
        values.setdefault("image_size", size)
    method = build_method(method_name, preset, with_run_seed(method_name, values, seed))
    crop = size if size else int(getattr(method.config, "image_size", 256))
    multiple = method.size_multiple
    if crop % multiple:
        raise click.BadParameter(f"{crop} is not a multiple of {multiple}, which {method_name} needs "
                                 f"(e.g. {max(multiple, crop // multiple * multiple)})",
                                 param_hint="--size" if size else "--set image_size")
    if batch_size is None:
        batch_size = method.default_batch_size(preset, 8)
    if init is not None:
        if resume:
            raise click.BadParameter("--init starts a new run; --resume continues one from its own weights",
                                     param_hint="--init")
        from fewcolor.io.warm_start import warm_start

        click.echo(warm_start(method, resolve_model_arg(init, "--init")).summary(), err=True)
    dataset = ImageFolderDataset(  # cache: each image decoded and resized once (docs/PERFORMANCE.md)
        data_dir, split_file=split_file, transform=method.train_transform(crop, flip=not no_flip), seed=seed,
        cache=True,
    )
    if steps is None and epochs is None:
        suggested = method.suggested_steps(len(dataset), batch_size)
        steps = suggested or 1000
        why = f"{method_name}'s suggestion for {len(dataset):,} images at batch {batch_size}" if suggested else \
            "the default"
        click.echo(f"no --steps or --epochs given: {steps:,} steps ({why})", err=True)
    validate = None
    if val_dir is not None:
        from fewcolor.metrics.held_out import HeldOutScores

        if not method.learns_in_steps:
            raise click.BadParameter(f"{method_name} learns nothing in steps, so there is no curve to draw; score "
                                     "the model with `fewcolor evaluate MODEL --data DIR`", param_hint="--val")
        # the curve of the network being trained, not of MetalGAN's per-query test-time fine-tuning (which would
        # also fill the adapted-generator cache with a copy per round)
        no_adaptation = {"adapt_steps": 0} if method.inference_option("adapt_steps") is not None else {}
        try:
            validate, unreadable = HeldOutScores.from_folder(val_dir, val_images, seed, options=no_adaptation)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--val") from None
        for line in unreadable:
            click.echo(f"warning: --val: skipped {line}", err=True)
        click.echo(f"held-out scores every {val_every} steps on {len(validate)} images of {val_dir}: "
                   f"{out_dir / 'validation.csv'}", err=True)
    opts = TrainOptions(
        out_dir=out_dir,
        steps=steps,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        checkpoint_every=checkpoint_every,
        checkpoint_minutes=checkpoint_minutes,
        sample_every=sample_every,
        validate_every=val_every if validate is not None else 0,
        precision="bf16" if bf16 else precision or "auto",
        device=device,
        resume=resume,
        max_seconds=None if minutes is None else minutes * 60,
    )
    result = train(method, dataset, opts, validate)
    if result.checkpoint is not None:
        resumed = result.total_seconds - result.wall_seconds >= 0.5
        earlier = f" ({result.total_seconds:.0f} s over all runs)" if resumed else ""
        click.echo(f"trained {method_name} for {result.step} steps in {result.wall_seconds:.0f} s{earlier}: "
                   f"{result.checkpoint}")
        if result.out_of_time:
            click.echo(f"stopped by --minutes {minutes:g}: the same command with --resume goes on", err=True)


def resolve_model_arg(value: str | Path, option: str) -> Path:
    """A model argument: a checkpoint path, or ``base`` for the bundled base model."""
    from fewcolor.pretrained import require_bundled_model

    if str(value) == "base":
        try:
            return require_bundled_model("give a checkpoint path")
        except FileNotFoundError as exc:
            raise click.BadParameter(str(exc), param_hint=option) from None
    path = Path(value)
    if not path.is_file():
        raise click.BadParameter(f"{path} is not a checkpoint file (or `base` for the bundled model)",
                                 param_hint=option)
    return path


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


def _config_has(method: str, field: str) -> bool:
    import dataclasses

    from fewcolor.methods.registry import get_method_class

    return field in {f.name for f in dataclasses.fields(get_method_class(method).Config)}


def _option_param(opt: Any, methods: list[str], sweeps: bool = True) -> list[click.Option]:
    """The click option(s) for one inference option declaration (see fewcolor.methods.options); without
    ``sweeps`` a sweep option (--variants) is hidden: the command refuses it with a reason, never offers it."""
    who = ", ".join(methods)
    extra = f" (default {opt.default})" if opt.default is not None else ""
    if opt.default is not None and all(_config_has(m, opt.name) for m in methods):
        # a config field too: a model trained with another value keeps it unless the option is given
        extra = f" (default: the model's own {opt.name}, {opt.default} unless it was trained with another)"
    text = f"[{who}] {opt.help}{extra}."
    if opt.kind == "float":
        ptype: Any = click.FloatRange(opt.minimum, opt.maximum) if (opt.minimum, opt.maximum) != (None, None) else float
    elif opt.kind == "int":
        ptype = click.IntRange(opt.minimum, opt.maximum) if (opt.minimum, opt.maximum) != (None, None) else int
    elif opt.kind == "str":
        # local_path: a choice or an existing file, checked when parsed (not when the first image needs it)
        ptype = (_ChoiceOrFile(opt.choices) if opt.local_path else click.Choice(opt.choices)) if opt.choices else str
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
            hidden=not sweeps,
        ))
    return params


class _RegistryCommand(click.Command):
    """A command whose options include every registered method's inference options.

    They are generated on each use (parsing or --help) from the registry, so `fewcolor --help` imports
    no method and a method registered later still shows up. ``sweeps=False``: a command that colours once
    per image (export, evaluate) does not offer the sweep options (--variants K); it refuses them by name.
    ``shadowed``: inference options not offered because the command has its own option of that name (bench's
    --adapt-steps is the per-episode adaptation budget, not MetalGAN's test-time steps).
    """

    def __init__(self, *args: Any, sweeps: bool = True, shadowed: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sweeps = sweeps
        self.shadowed = shadowed  # inference options the command has an own option of the same name for

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        from fewcolor.methods.registry import inference_option_table

        params = list(self.params)
        taken = {p.name for p in params}
        for name, (opt, methods) in inference_option_table().items():
            if name in self.shadowed:
                continue
            for param in _option_param(opt, methods, self.sweeps):
                if param.name in taken:
                    raise click.ClickException(
                        f"inference option {name!r} of {', '.join(methods)} clashes with {self.name}'s own "
                        f"--{param.name}; rename the option in the method"
                    )
                taken.add(param.name)
                params.append(param)
        help_option = self.get_help_option(ctx)
        return params if help_option is None else [*params, help_option]


class _OnDemandRegistryCommand(_RegistryCommand):
    """A :class:`_RegistryCommand` that loads the registry only when the command line holds a long option
    that is not the command's own (a method option such as ``--temperature``): its ``--help`` and its
    plain uses stay as fast as a command without method options (no torch import); its help text says
    where the method options are listed."""

    _KEY = "fewcolor.method_options"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        own = {o for p in self.params for o in (*getattr(p, "opts", ()), *getattr(p, "secondary_opts", ()))}
        ctx.meta[self._KEY] = any(a.startswith("--") and a.split("=", 1)[0] not in own | {"--help"} for a in args)
        return super().parse_args(ctx, args)

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        if ctx.meta.get(self._KEY):
            return super().get_params(ctx)
        return click.Command.get_params(self, ctx)


@main.command("colorize", cls=_RegistryCommand,
              short_help="Colorize images, folders or a clip (default: the bundled model).")
@click.argument("items", nargs=-1, required=True, metavar="[MODEL] INPUTS...")
@click.option(
    "-o",
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Output folder; relative paths of folder inputs are kept, outputs are PNG. One image may instead be "
         "written to a file named here (.png .jpg .jpeg .bmp .tif .tiff .webp .ppm). For a clip: the output clip "
         "(.mp4 .mov .mkv .avi, .gif, or a path without a suffix for a folder of PNG frames).",
)
@click.option("--size", type=RESOLUTION, default=None,
              help="Working resolution (longer side) of the network; default: the model's own (224 for the "
              "bundled model; `fewcolor methods NAME` shows a method's).")
@_device_option()
@click.option("--max-megapixels", type=click.FloatRange(min=0.01), default=24.0, show_default=True,
              help="Larger files are reduced on decode (by an integer factor) to bound memory; their outputs "
              "are smaller than the file.")
@click.option("--inside-input", is_flag=True,
              help="Allow -o inside an input folder, or the folder of an input file; outputs there never replace a "
              "file already there (they get new names, NAME_2.png ...).")
@click.option("--overwrite", is_flag=True,
              help="Replace output files that exist already (an earlier run's); without it the command refuses "
              "before any work, naming the first. Inputs are never replaced.")
@click.option("--clip", "as_clip", is_flag=True,
              help="Treat the one input folder as the frames of a clip (in name order). A video file or an "
                   "animated GIF given alone is always a clip (a still GIF is an image).")
@click.option("--keyframe", "keyframes", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Clips, exemplar models: a coloured keyframe to colour from instead of the model's supports "
                   "(repeatable).")
@click.option("--per-frame", is_flag=True,
              help="Clips, exemplar models: colour every frame on its own (default: each frame is also matched "
                   "to the previous coloured frame, for stable colours).")
def colorize_cmd(
    items: tuple[str, ...], out_dir: Path, size: int | None, device: str | None,
    max_megapixels: float, inside_input: bool, overwrite: bool, as_clip: bool, keyframes: tuple[Path, ...],
    per_frame: bool, **options: Any
) -> None:
    """Colorize image files or folders, or one clip, with MODEL (any size; the full-resolution L is kept).

    MODEL, a checkpoint (.safetensors) given first, is optional: without it the bundled base colorizer is
    used (docs/MODEL_CARD.md).

    Bad files are reported and skipped; inputs are never overwritten, and inputs that share a name up
    to the extension (a.png, a.jpg) get distinct outputs (a_png.png, a_jpg.png). Files already in -o are
    replaced only with --overwrite. The method options below come from the registered methods; each says
    which methods take it.
    """
    from tqdm.auto import tqdm

    from fewcolor.io.image import IMAGE_EXTENSIONS, WRITE_FORMATS, ImageReadError, image_size, reduction_factor
    from fewcolor.io.paths import (
        OutputPathError,
        PlannedOutput,
        check_new,
        check_outside,
        is_within,
        missing_folders,
        output_paths,
        removed_on_failure,
        variant_paths,
    )
    from fewcolor.io.video import VIDEO_EXTENSIONS, VideoError, check_clip_output, is_clip
    from fewcolor.methods.options import InferenceOptionError
    from fewcolor.methods.registry import inference_option_table
    from fewcolor.pipeline import Colorizer

    model, inputs = _split_model_and_inputs(items)
    if not inside_input:  # an input folder, or an input file's own folder: outputs would join a later folder run
        check_outside(out_dir, [i if i.is_dir() else i.parent for i in inputs
                                if i.is_dir() or out_dir.resolve() == i.parent.resolve()], allow="--inside-input")
    budget = _megapixels(max_megapixels)
    # a sweep (e.g. --variants K) writes K outputs with its option set to 1..K
    sweeps = {opt.sweep: opt.name for opt, _ in inference_option_table().values() if opt.sweep}
    given = [(sweeps[k], int(v)) for k, v in options.items() if k in sweeps and v is not None]
    if len(given) > 1:
        raise click.UsageError(f"give at most one of {', '.join('--' + k for k in sweeps)}")
    sweep = given[0] if given else None
    for key in sweeps:
        options.pop(key, None)
    typed = {k: v for k, v in options.items() if v is not None}  # as typed: image options are paths here
    options = _read_image_options(typed, budget)
    clip = as_clip or (len(inputs) == 1 and is_clip(inputs[0]))
    moving = [i for i in inputs if is_clip(i)] if len(inputs) > 1 else []
    if moving:  # not a bad image to skip: the user meant a clip
        raise click.UsageError(f"{moving[0]} is a clip; {_CLIP_ALONE}")
    # every check on -o and the options before any work: nothing coloured (or created) for nothing
    suffix = out_dir.suffix.lower()
    clip_suffixes = VIDEO_EXTENSIONS | {".gif"}  # given for images, they name a clip the command would not write
    plans: list[PlannedOutput] = []
    one_file = False  # one image written to the file -o names
    if clip:
        if len(inputs) != 1 or sweep is not None:
            raise click.UsageError(_CLIP_ALONE)
        if out_dir.exists() and out_dir.resolve() == inputs[0].resolve():
            raise click.BadParameter(f"{out_dir} would overwrite the input; choose another output", param_hint="-o")
        try:
            check_clip_output(out_dir)
        except VideoError as exc:
            raise click.BadParameter(_one_line(exc), param_hint="-o") from None
        output_dir(out_dir, file=suffix != "")
        if not overwrite:
            _check_clip_output_new(out_dir)
        # before the model loads and the bar starts: the method from the checkpoint's metadata, the images read
        keys = _read_keyframes(model, keyframes) if keyframes else []
    else:
        if keyframes or per_frame:
            raise click.UsageError("--keyframe and --per-frame apply to clips only")
        one_file = (len(inputs) == 1 and inputs[0].is_file() and suffix in IMAGE_EXTENSIONS
                    and suffix not in clip_suffixes and not out_dir.is_dir())
        if suffix in clip_suffixes and not out_dir.is_dir():
            folder = len(inputs) == 1 and inputs[0].is_dir()
            raise click.UsageError(
                f"-o {out_dir} names a clip, but {'the folder ' + str(inputs[0]) if folder else 'the input'} is "
                f"not one: to colour a folder of frames as one clip add --clip (fewcolor colorize --clip FRAMES "
                f"-o {out_dir}); for images give an output folder" + ("" if folder else " or an image file name"))
        if one_file:
            if suffix not in WRITE_FORMATS:  # the formats the image writer knows
                raise click.BadParameter(f"{out_dir}: cannot write {suffix} images; use one of "
                                         f"{' '.join(sorted(WRITE_FORMATS))}", param_hint="-o")
            _not_an_input(out_dir, inputs)
            output_dir(out_dir, file=True)
            plans = [PlannedOutput(inputs[0], variant_paths(out_dir, sweep[1] if sweep else 0))]
        else:
            if out_dir.is_file():
                raise click.UsageError(f"-o {out_dir} is a file; for images give an output folder")
            if suffix in IMAGE_EXTENSIONS and not out_dir.is_dir():
                raise click.UsageError(f"-o {out_dir} names an image, but -o is the output folder of several images "
                                       f"or a folder (outputs keep their input's name), e.g. -o "
                                       f"{out_dir.with_suffix('')}; a file name is for one input image")
            output_dir(out_dir)
            pairs = _collect_inputs(inputs)
            if not pairs:
                raise click.ClickException(f"no images found in {', '.join(map(str, inputs))}")
            # -o among the user's own files (--inside-input): a file there that this run did not write is never
            # replaced (it counts as taken, so there is nothing to refuse)
            folders = [i if i.is_dir() else i.parent for i in inputs]
            among_inputs = inside_input and any(is_within(out_dir, f) for f in folders)
            plans = output_paths(pairs, out_dir, variants=sweep[1] if sweep else 0, keep_existing=among_inputs)
        if not overwrite:
            check_new([p for plan in plans for p in plan.paths], where=None if one_file else out_dir)
    colorizer = Colorizer.from_checkpoint(model, device=device, size=size, pixel_budget=budget)
    try:  # a usage error, exit 2; an image option's file is named (the method sees it decoded)
        colorizer.method.check_options({**options, **dict([sweep] if sweep else [])})
    except InferenceOptionError as exc:
        files = [f"--{k.replace('_', '-')} {typed[k]}" for k in typed
                 if options[k] is not typed[k] and k in str(exc)]  # the image option the error is about
        raise InferenceOptionError(f"{exc}" + (f" (given: {', '.join(files)})" if files else "")) from None
    if clip:
        _colorize_clip(colorizer, inputs[0], out_dir, keys, not per_frame, options, overwrite)
        return
    for plan in plans:
        if plan.note:
            click.echo(f"renamed {plan.note}", err=True)
    folder_to_make = out_dir.parent if one_file else out_dir
    created = missing_folders(folder_to_make)
    try:  # now, not after the first image: an unwritable -o is the user's to fix, not a bad input
        folder_to_make.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unwritable("-o", out_dir, exc) from None
    failed: list[str] = []
    done = 0
    with removed_on_failure(created):  # a run that colours nothing leaves no empty folder behind
        for plan in tqdm(plans, desc="colorize", unit="img"):
            src = plan.source
            try:
                if budget is not None and reduction_factor(*image_size(src), budget) > 1:
                    w, h = image_size(src)
                    tqdm.write(f"note: {src} is {w}x{h}, over --max-megapixels {max_megapixels:g}; it is reduced "
                               "on decode and its output is smaller", file=sys.stderr)  # on its own line, above the bar
                if sweep is not None:
                    name, _ = sweep
                    for i, dst in enumerate(plan.paths, start=1):
                        colorizer.colorize_file(src, dst, overwrite=overwrite, **{**options, name: i})
                else:
                    colorizer.colorize_file(src, plan.paths[0], overwrite=overwrite, **options)
                done += 1
            except (ImageReadError, MemoryError) as exc:
                failed.append(_about(src, exc))
            except (ValueError, OSError) as exc:
                if isinstance(exc, (InferenceOptionError, OutputPathError)):
                    raise
                failed.append(_about(src, exc))
        for msg in failed:
            click.echo(f"skipped {msg}", err=True)
        skipped = f"; {len(failed)} skipped (above)" if failed else ""
        written = f"{plans[0].paths[0]} ... {plans[0].paths[-1]}" if one_file and len(plans[0].paths) > 1 else out_dir
        click.echo(f"colorized {done} of {len(plans)} {_plural(len(plans), 'image')} into {written}{skipped}")
        if done == 0:
            sys.exit(1)


def _plural(count: int, word: str) -> str:
    return word if count == 1 else f"{word}s"


#: a clip given with other inputs, or several with --clip
_CLIP_ALONE = ("a clip is colorized alone: give one video, animated GIF or (with --clip) frame folder, and no sweep "
               "option")


def _read_keyframes(model: Path, keyframes: tuple[Path, ...]) -> list[Any]:
    """The --keyframe images, decoded, for a model whose method colours from keyframes (from the checkpoint's
    metadata; a file that cannot be read is left to the loader, which names what is wrong). A keyframe that is
    no image, or looks grey (no colour to give: :func:`fewcolor.data.grey.is_grey`), is refused naming it."""
    from fewcolor.data.grey import is_grey
    from fewcolor.io.image import ImageReadError, read_rgb
    from fewcolor.methods.exemplar import Exemplar

    cls = _checkpoint_method(model)
    if cls is not None and not issubclass(cls, Exemplar):  # the test fewcolor.video.colorize_clip makes
        raise click.BadParameter(f"keyframes need an exemplar model, and {model} is a {cls.name} model (fewcolor "
                                 "adapt exemplar --data KEYFRAMES -o model.safetensors makes one)",
                                 param_hint="--keyframe")
    keys = []
    for path in keyframes:
        try:
            rgb = read_rgb(path)
        except (ImageReadError, OSError) as exc:
            raise click.BadParameter(_about(path, exc), param_hint="--keyframe") from None
        if is_grey(rgb):
            raise click.BadParameter(f"{path} looks grey (at most 1 % of its pixels have any colour): a keyframe "
                                     "gives the clip its colours; give a coloured one", param_hint="--keyframe")
        keys.append(rgb)
    return keys


def _frame_files(folder: Path) -> list[Path]:
    """The frame files (frame_00000.png ...) of a clip written as a folder, in order."""
    import re

    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if re.fullmatch(r"frame_\d{5,}\.png", p.name)),
                  key=lambda p: (len(p.name), p.name))  # frame_100000 after frame_99999


def _check_clip_output_new(out: Path) -> None:
    """A clip's -o that exists (a video or GIF file, or a folder holding frames) is refused (--overwrite)."""
    from fewcolor.io.paths import check_new, existing_error

    if out.suffix:
        check_new([out])
    elif frames := _frame_files(out):
        raise existing_error(frames, where=out)


#: model files of other tools: given first to `colorize`, they are a mistaken MODEL, not an image to skip
FOREIGN_MODEL_SUFFIXES = (".pt", ".pth", ".ckpt", ".onnx", ".bin", ".pkl")


def _about(path: Path, exc: BaseException) -> str:
    """``PATH: reason`` in one line, without the path twice where the error already starts with it."""
    text = _one_line(exc)
    return text if text.startswith(str(path)) else f"{path}: {text}"


def _read_image_options(options: dict[str, Any], pixel_budget: int | None, decode: bool = True) -> dict[str, Any]:
    """Image options (--reference, --global-from ...) read once, before any work: a file that is no image is
    one error naming the option, not one skipped input per image. ``decode``: give the decoded images back
    (else the paths, checked)."""
    from fewcolor.io.image import DEFAULT_PIXEL_BUDGET, ImageReadError, read_rgb
    from fewcolor.methods.registry import inference_option_table

    if pixel_budget is None:
        pixel_budget = DEFAULT_PIXEL_BUDGET
    table = inference_option_table()
    out = dict(options)
    for key, value in options.items():
        opt = table[key][0] if key in table else None
        if opt is None or not opt.is_image or not isinstance(value, (str, Path)):
            continue
        try:
            image = read_rgb(value, pixel_budget=pixel_budget)
        except (ImageReadError, OSError) as exc:
            raise click.BadParameter(_about(Path(value), exc), param_hint=opt.flag) from None
        if decode:
            out[key] = image
    return out


def _split_model_and_inputs(items: tuple[str, ...]) -> tuple[Path, tuple[Path, ...]]:
    """``colorize [MODEL] INPUTS...``: the first item is the model when it is a .safetensors file (or
    ``base``); otherwise every item is an input and the bundled base model colours them."""
    first = Path(items[0])
    if items[0] == "base" or (first.suffix == ".safetensors" and first.is_file()):
        model, rest = resolve_model_arg(items[0], "MODEL"), items[1:]
    elif first.suffix.lower() in FOREIGN_MODEL_SUFFIXES:
        raise click.BadParameter(f"{first} is not a fewcolor model: models are .safetensors checkpoints (from "
                                 "`fewcolor train` or `adapt`); omit MODEL for the bundled base model",
                                 param_hint="MODEL")
    elif first.suffix == ".safetensors":
        raise click.BadParameter(f"{first} does not exist (or is not a file)", param_hint="MODEL")
    else:
        model, rest = resolve_model_arg("base", "MODEL"), items
    if not rest:
        raise click.UsageError("give the images, folders or clip to colorize after MODEL")
    missing = [r for r in rest if not Path(r).exists()]
    if missing:
        raise click.BadParameter(f"{missing[0]} does not exist", param_hint="INPUTS")
    if rest is items:
        click.echo("no MODEL given: colouring with the bundled base model", err=True)
    return model, tuple(Path(r) for r in rest)


def _colorize_clip(colorizer: Any, src: Path, dst: Path, keys: list[Any], propagate: bool,
                   options: dict[str, Any], overwrite: bool = False) -> None:
    """``colorize`` of one clip: read it, colour it (fewcolor.video), write it. A folder of frames replaced
    (``overwrite``) loses the frames of the earlier clip beyond this one's last, which would otherwise play on."""
    from fewcolor.io.image import ImageReadError
    from fewcolor.io.video import VideoError, read_clip, write_clip
    from fewcolor.video import colorize_clip

    try:
        clip = read_clip(src)
        frames = colorize_clip(colorizer, clip.frames, keys, propagate=propagate, **options)
        write_clip(dst, frames, clip.fps)
    except (VideoError, ImageReadError) as exc:
        raise click.ClickException(str(exc)) from exc
    if overwrite and not dst.suffix:
        for stale in _frame_files(dst)[len(frames):]:
            stale.unlink()
    for msg in clip.skipped:
        click.echo(f"skipped {msg}", err=True)
    skipped = f"; {len(clip.skipped)} skipped (above)" if clip.skipped else ""
    click.echo(f"colorized {len(frames)} {_plural(len(frames), 'frame')} of {src} into {dst}{skipped}")


# ----------------------------------------------------------------------------------------------
@main.command("export", cls=_RegistryCommand, sweeps=False, short_help="Export a model's network to ONNX.")
@click.argument("model", type=MODEL)
@click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The .onnx file to write (input l: normalised L, output ab: normalised ab; docs/EXPORT.md).")
@click.option("--size", type=RESOLUTION, default=None,
              help="Working resolution recorded in the model (default: the config's).")
@click.option("--check", is_flag=True,
              help="Run onnxruntime against PyTorch on real photos (scikit-image's astronaut, coffee, chelsea) "
                   "and report max |Δab| in Lab units and both inference times; exit 1 when an image's max |Δab| "
                   "exceeds 1e-2 Lab (float32 rounding gives about 1e-4; docs/EXPORT.md).")
@click.option("--check-image", "check_images", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Check on this image instead of the sample photos (repeatable).")
@_overwrite_option("the .onnx file")
def export_cmd(model: Path, out_path: Path, size: int | None, check: bool, check_images: tuple[Path, ...],
               overwrite: bool, **options: Any) -> None:
    """Export MODEL's network (`base`: the bundled model) to ONNX with dynamic batch, height and width
    (needs the [export] extra).

    The method options below are fixed into the graph (e.g. --temperature, --variant, --palette). MetalGAN
    exports only without test-time adaptation (--adapt-steps 0, or a model made by `fewcolor adapt`).
    """
    from fewcolor.io.checkpoint import CheckpointError
    from fewcolor.io.image import ImageReadError, read_rgb
    from fewcolor.pipeline import Colorizer

    _refuse_sweeps(options, "one graph has one colouring")
    options = _read_image_options({k: v for k, v in options.items() if v is not None}, None, decode=False)
    output_file(out_path, ".onnx", "ONNX exports", inputs=(model, *check_images), overwrite=overwrite)
    images: list[tuple[str, Any]] | None = None
    try:  # the check images are read before the export: a bad one is refused before anything is written
        images = [(p.name, read_rgb(p)) for p in check_images] if check_images else None
    except ImageReadError as exc:
        raise click.BadParameter(_one_line(exc), param_hint="--check-image") from None
    try:
        from fewcolor.export import CHECK_TOLERANCE, ExportError, check_onnx, export_onnx, sample_photos
    except ImportError as exc:
        raise click.ClickException(
            f"export needs onnx and onnxruntime: pip install 'fewcolor[export]' ({exc})"
        ) from exc
    try:
        colorizer = Colorizer.from_checkpoint(model, device="cpu", size=size)
        colorizer.method.check_options(options)  # a usage error (exit 2), before the export
        path = export_onnx(colorizer, out_path, **options)
        click.echo(f"wrote {path} ({colorizer.name}, working size {colorizer.size})")
        if check or check_images:
            results = check_onnx(colorizer, path, images or sample_photos(), **options)
            for r in results:
                click.echo(f"  {r.name:12s} {r.size[1]}×{r.size[0]} -> {r.working[1]}×{r.working[0]}: max |Δab| "
                           f"{r.max_abs_ab:.2e} Lab; PyTorch {r.torch_ms:.1f} ms, onnxruntime {r.onnx_ms:.1f} ms")
            failed = [r for r in results if not r.max_abs_ab <= CHECK_TOLERANCE]  # NaN fails too
            if failed:
                worst = max(failed, key=lambda r: r.max_abs_ab if r.max_abs_ab == r.max_abs_ab else float("inf"))
                raise click.ClickException(
                    f"--check failed on {', '.join(r.name for r in failed)}: max |Δab| {worst.max_abs_ab:.2e} Lab "
                    f"({worst.name}) exceeds the tolerance {CHECK_TOLERANCE:g} Lab; {path} does not reproduce the "
                    "model: do not use it (kept for inspection; docs/EXPORT.md)")
    except (ExportError, CheckpointError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc


def _refuse_sweeps(options: dict[str, Any], why: str) -> None:
    """Refuse a sweep option (--variants K) in a command that colours once per image; drop the unset ones."""
    from fewcolor.methods.registry import inference_option_table

    sweeps = [(opt.sweep, opt.flag) for opt, _ in inference_option_table().values() if opt.sweep]
    for sweep, flag in sweeps:
        if options.pop(sweep, None) is not None:
            raise click.UsageError(f"{why}: give the single option (e.g. {flag} 2), not --{sweep.replace('_', '-')}")


@main.command("serve", short_help="Serve a web page for colorizing in the browser.")
@click.argument("models", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; the default lets only this computer in.")
@click.option("--port", type=click.IntRange(0, 65535), default=7860, show_default=True,
              help="Port to listen on (0: any free port).")
@click.option("--max-upload-mb", type=click.FloatRange(min=0.1), default=20.0, show_default=True,
              help="Largest request (all its files together), MiB.")
@click.option("--max-megapixels", type=click.FloatRange(min=0.01), default=24.0, show_default=True,
              help="Largest image (width × height as its header states), checked before decoding.")
@click.option("--queue", "queue_size", type=click.IntRange(min=1), default=8, show_default=True,
              help="Requests admitted at once (one computes, the rest wait); more get HTTP 429.")
@click.option("--size", type=RESOLUTION, default=None,
              help="Working resolution of the networks (default: each config's).")
@_device_option()
def serve_cmd(models: tuple[Path, ...], host: str, port: int, max_upload_mb: float, max_megapixels: float,
              queue_size: int, size: int | None, device: str | None) -> None:
    """A web page for colorizing in the browser, with MODELS (checkpoints) and the bundled base model.

    Upload grey or colour images, set the method's options, compare input and output, pick among variants,
    download PNGs (single or zip), or adapt a model to a few images of your own. Works offline; uploads
    live only in a temporary folder that is removed when the server stops (docs/SERVE.md).
    """
    try:
        from fewcolor.serve import AddressError, check_address, serve
        from fewcolor.serve.limits import Limits
    except ImportError as exc:
        raise click.ClickException(f"serve needs starlette, uvicorn and python-multipart: pip install "
                                   f"'fewcolor[serve]' ({exc})") from exc
    limits = Limits(max_upload_bytes=int(max_upload_mb * 2**20), max_pixels=int(max_megapixels * 1e6),
                    queue_size=queue_size)
    try:
        check_address(host, port)  # before the models load; serve() checks again
        serve(list(models), host=host, port=port, limits=limits, device=device, size=size)
    except AddressError as exc:
        raise UsageFailure(str(exc)) from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


# ----------------------------------------------------------------------------------------------
@main.command("demo", short_help="Train on a few images for minutes and write a demo page.")
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
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True), default=120.0, show_default=True,
              help="Rough training time budget.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed for init, data order and augmentation.")
def demo_cmd(out_dir: Path, data_dir: Path | None, seconds: float, seed: int) -> None:
    """Train on a few images for a couple of minutes on CPU, colorize held-out grey images, write a page."""
    from fewcolor.demo import run_demo

    output_dir(out_dir)
    page = run_demo(out_dir, data_dir=data_dir, seconds=seconds, seed=seed)
    click.echo(f"demo page: {page.resolve()}")


# ----------------------------------------------------------------------------------------------
@main.group("data", short_help="Prepare the benchmark datasets.")
def data_group() -> None:
    """Benchmark datasets (docs/DATASETS.md): prepared into $FEWCOLOR_HOME/datasets, never the repo."""


@data_group.command("prepare", short_help="Prepare one benchmark dataset (idempotent).")
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

    if cache_dir is not None:
        output_dir(cache_dir, "--cache-dir")
    try:
        out = prepare(name, cache_dir=cache_dir, source=source, force=force, smoke=smoke, write_splits=write_splits)
    except PrepareError as exc:
        raise click.ClickException(str(exc)) from exc
    done = read_done(out) or {}
    click.echo(f"{name}: {out}")
    click.echo(f"  splits: {done.get('counts', {})}  stats: {done.get('stats', {})}")


# ----------------------------------------------------------------------------------------------
@main.command("bench", cls=_OnDemandRegistryCommand, sweeps=False, shadowed=("adapt_steps",),
              short_help="Benchmark methods on a protocol or on your own folder.")
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
    cls=_RegistryHelpOption,
    extra=_method_names_help,
    help="Comma-separated method names, e.g. cgan,metalgan,cic; NAME@PRESET gives one method its own preset "
    "(cgan@metalgan-cpu: the same cGAN as MetalGAN's, without meta-learning).",
)
@click.option(
    "--preset",
    default="cpu",
    show_default=True,
    cls=_RegistryHelpOption,
    extra=_presets_help,
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
@click.option("--seeds", default="0", show_default=True, callback=_parse_seeds,
              help="Comma-separated seeds (3 for headline pairs).")
@click.option(
    "--train-images",
    type=click.IntRange(min=1),
    default=None,
    help="Override the training budget (generator image-gradient evaluations per method).",
)
@click.option("--adapt-steps", type=click.IntRange(min=0), default=None,
              help="Override the per-episode adaptation budget.")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Override the batch size (training and adaptation; MetalGAN: queries per loop step). The training "
    "budget stays in images, so a smaller batch means more, smaller updates.",
)
@click.option("--episodes", "max_episodes", type=click.IntRange(min=1), default=None,
              help="Override the number of episodes.")
@click.option("--queries", "max_queries", type=click.IntRange(min=1), default=None,
              help="Override the queries per episode.")
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
    default=None,
    type=click.Path(path_type=Path),
    help="Markdown file the dated table is appended to, a PNG copy of the gallery beside it in results/ "
    "(default: RESULTS.md in the -o folder; this project's own tables go to docs/RESULTS.md).",
)
@click.option("--set", "overrides", multiple=True, metavar="METHOD.KEY=VALUE",
              help="Config override for one method (repeatable), e.g. --set metalgan.feature_size=64.")
@click.option("--init", "init", default=None, metavar="MODEL|base",
              help="Every training run starts from this checkpoint where tensor names and shapes match (`base`: "
              "the bundled base model; e.g. with --set unet.encoder=efficientnet-lite0); labels get +init.")
@click.option("--overwrite", is_flag=True,
              help="Replace results in -o that came from other runs (another budget, --set, preset, --image-size, "
              "--batch-size or --init); without it such a rerun is refused before any training.")
@_device_option()
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
    seeds: list[int],
    train_images: int | None,
    adapt_steps: int | None,
    batch_size: int | None,
    max_episodes: int | None,
    max_queries: int | None,
    no_fid: bool,
    out_root: Path,
    results_md: Path | None,
    overrides: tuple[str, ...],
    init: str | None,
    overwrite: bool,
    device: str | None,
    **options: Any,
) -> None:
    """Benchmark METHODS on PROTOCOL (or on your folder, --data) with equal training and adaptation budgets.

    Protocols: tinyimagenet-fs-k{1,5,10}, pokemon-frames, pokemon-frames-shiny, flowers12-k{1,5},
    emoji-xstyle, or `all` (every protocol; meant for --smoke). Include the baselines `grey` and `lut`
    in METHODS: a method that does not beat them has not helped. Training runs in fp32 on every machine,
    so tables from different CPUs compare (`fewcolor train` defaults to --precision auto).

    A method's inference options (e.g. --temperature 1; `fewcolor methods NAME` lists them) colour the queries
    of every method of METHODS that takes them; they change no training, so the runs of a benchmark without
    them are reused, and the results are named with them (e.g. base+init[temperature=1.0]) beside the plain
    ones. Image options and sweeps are refused (each episode's supports are its references).
    """
    import shlex

    from fewcolor.bench.protocols import PROTOCOLS, folder_protocols, get_budget, get_protocol
    from fewcolor.bench.runner import check_results_free, run_benchmark
    from fewcolor.methods.registry import get_method_class

    ctx = click.get_current_context()
    if smoke and size != "smoke" and ctx.get_parameter_source("size") is not click.core.ParameterSource.DEFAULT:
        raise click.UsageError(f"--smoke is short for --size smoke; it contradicts --size {size}: give one of them")
    size = "smoke" if smoke else size
    if (protocol is None) == (data_dir is None):
        raise click.UsageError("give a PROTOCOL or --data FOLDER (not both)")
    if data_dir is not None:
        from fewcolor.io.paths import check_outside

        check_outside(out_root, [d for d in (data_dir, train_data) if d is not None])
        try:
            ks = [int(k) for k in shots.split(",") if k.strip()]
        except ValueError:
            raise click.BadParameter(f"expected comma-separated integers, got {shots!r}",
                                     param_hint="--shots") from None
        if not ks or min(ks) < 1:
            raise click.BadParameter(f"each K must be at least 1, got {shots!r}", param_hint="--shots")
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
    labels = [m.strip() for m in methods.split(",") if m.strip()]
    if not labels:
        raise click.BadParameter("give at least one method name", param_hint="--methods")
    for label in labels:
        name, _, own_preset = label.partition("@")
        cls = _method_class(name, "--methods")
        if own_preset and own_preset not in cls.presets:
            raise click.BadParameter(f"{name} has no preset {own_preset!r}; choose one of {sorted(cls.presets)}",
                                     param_hint="--methods")
    # --preset goes to every method without its own that has it (others use their defaults); one that none of
    # them has is a typo, not hours of paper-size training
    plain = [get_method_class(label) for label in labels if "@" not in label]
    given_preset = ctx.get_parameter_source("preset") is not click.core.ParameterSource.DEFAULT
    if given_preset and plain and not any(preset in cls.presets for cls in plain):
        known = sorted({p for cls in plain for p in cls.presets})
        raise click.BadParameter(f"no method of --methods has a preset {preset!r}; choose one of {known} (or "
                                 "NAME@PRESET per method)", param_hint="--preset")
    per_method: dict[str, dict[str, Any]] = {}
    for key, value in parse_overrides(overrides).items():
        if "." not in key:
            raise click.BadParameter(f"expected METHOD.KEY=VALUE, got {key!r}", param_hint="--set")
        method_name, field_name = key.split(".", 1)
        per_method.setdefault(method_name, {})[field_name] = value
    for method_name, values in per_method.items():
        # bad names, keys and value types fail here, not hours in
        _method_class(method_name, "--set").make_config(None, values)
    _refuse_sweeps(options, "bench scores one colouring per query")
    per_method_options = _options_per_method({k: v for k, v in options.items() if v is not None},
                                             [label.partition("@")[0] for label in labels])
    init_path = resolve_model_arg(init, "--init") if init else None
    output_dir(out_root)
    command = "fewcolor " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if not overwrite:  # every protocol's results files, before the first protocol trains
        for proto in protocols:
            check_results_free(proto, labels, budget, size, preset, out_root, per_method, init_path,
                               per_method_options)
    for proto in protocols:
        result = run_benchmark(
            proto,
            labels,
            budget,
            size,
            preset=preset,
            seeds=seeds,
            out_root=out_root,
            results_md=results_md if results_md is not None else out_root / "RESULTS.md",
            command=command,
            device=device,
            fid=not no_fid,
            overrides=per_method,
            init=init_path,
            overwrite=True,  # every protocol's results were checked above (or --overwrite was given)
            options=per_method_options,
        )
        click.echo(result["table"])
        click.echo(f"gallery: {result['gallery']}")


def _options_per_method(options: dict[str, Any], names: list[str]) -> dict[str, dict[str, Any]]:
    """bench: the given inference options of each method of ``names`` that declares them. One that none of
    them declares is refused (a typo or a wrong method, not hours of training scored without it), and so is an
    image option: a benchmark colours each episode's queries from its own supports."""
    from fewcolor.methods.options import InferenceOptionError
    from fewcolor.methods.registry import inference_option_table

    table = inference_option_table()
    per_method: dict[str, dict[str, Any]] = {}
    for key, value in options.items():
        opt, declared = table[key]
        try:  # ranges, finiteness, a palette's text: refused now, not after hours of training
            opt.check(value, key)
        except InferenceOptionError as exc:
            raise click.BadParameter(str(exc).removeprefix(f"{key}: "), param_hint=opt.flag) from None
        if opt.is_image:
            raise click.BadParameter("bench colours each episode's queries from that episode's supports; an image "
                                     "option is for colorize and evaluate", param_hint=opt.flag)
        takers = [name for name in dict.fromkeys(names) if name in declared]
        if not takers:
            raise click.BadParameter(f"no method of --methods ({', '.join(names)}) takes it; "
                                     f"{', '.join(declared)} do", param_hint=opt.flag)
        for name in takers:
            per_method.setdefault(name, {})[key] = value
    return per_method


# ----------------------------------------------------------------------------------------------
def _check_backbone(spec: str) -> str:
    """``auto`` or ``name:layer`` with a registered backbone name (the layer is checked when it is built)."""
    from fewcolor.backbones.registry import BACKBONES

    if spec == "auto":
        return spec
    name, _, layer = spec.partition(":")
    if not layer or name not in BACKBONES:
        raise click.BadParameter(f"expected auto or NAME:LAYER with NAME one of {', '.join(BACKBONES)} "
                                 f"(e.g. vgg16:features.29), got {spec!r}", param_hint="--backbone")
    return spec


@main.command("cluster", short_help="Cluster a folder into MetalGAN tasks; write a contact sheet.")
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--k", "k", type=click.IntRange(min=1), default=64, show_default=True, help="Number of clusters (tasks).")
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
    callback=lambda ctx, param, value: _check_backbone(value),
    help="auto (ResNet50 layer4.0 if its weights resolve, else the MAC of VGG16 features.15,22,29 concatenated) "
    "or name:layer[,layer...].",
)
@click.option("--pca-dim", type=click.IntRange(min=1), default=512, show_default=True,
              help="PCA dimensions before K-means.")
@click.option("--feature-size", type=click.IntRange(32, 1024), default=None,
              help="Image side for the descriptors [default: 160, the smallest whose fp32 clusters keep those "
              "found at 224, about 2x faster; docs/PERFORMANCE.md].")
@click.option("--per-row", type=click.IntRange(min=1), default=8, show_default=True,
              help="Sample images per cluster on the sheet.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "int8"]), default="auto", show_default=True,
              help="How the descriptor network computes. auto: int8 (a quantized copy calibrated on 16 of your "
              "images; 2x bf16's rate with the same clusters on the CPU measured, docs/PERFORMANCE.md) where "
              "PyTorch has a quantized engine and the backbone's taps allow it (VGG16's do, ResNet50's block does "
              "not), else bf16 where the CPU computes it natively, else fp32. bf16 or int8 where they cannot run "
              "falls back to fp32.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of K-means and of the sampled images.")
@_overwrite_option("assignments.csv, clusters.json and index.html (with its index_files/ images) in -o")
def cluster_cmd(
    data_dir: Path, k: int, out_dir: Path, backbone: str, pca_dim: int, feature_size: int | None, per_row: int,
    precision: str, seed: int, overwrite: bool,
) -> None:
    """Cluster DATA_DIR into MetalGAN tasks (MAC descriptors → PCA → K-means); write a contact sheet."""
    from fewcolor.backbones.clustering import DEFAULT_FEATURE_SIZE, cluster_dataset
    from fewcolor.data.folder import ImageFolderDataset
    from fewcolor.data.tasks import write_cluster_report
    from fewcolor.hardware import descriptor_precision
    from fewcolor.io.html import companion_folder
    from fewcolor.io.paths import check_new, check_outside

    check_outside(out_dir, [data_dir])  # the contact sheet's images would be clustered next time
    output_dir(out_dir)
    if not overwrite:
        page = out_dir / "index.html"
        check_new([out_dir / "assignments.csv", out_dir / "clusters.json", page, companion_folder(page)],
                  where=out_dir)
    dataset = ImageFolderDataset(data_dir)
    if k > len(dataset):
        raise click.ClickException(f"{data_dir} holds {len(dataset)} usable images; choose --k <= {len(dataset)}")
    tasks = cluster_dataset(dataset, k, pca_dim, backbone, feature_size or DEFAULT_FEATURE_SIZE, seed,
                            precision=descriptor_precision(precision))
    page = write_cluster_report(tasks, dataset, out_dir, per_row=per_row, seed=seed)
    click.echo(f"{tasks.k} clusters of {len(dataset)} images ({tasks.info['backbone']}/{tasks.info['layer']}): {page}")


@main.command("adapt", short_help="Adapt a model to a few of your own colour images.")
@click.argument("model", required=False)
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
@_overwrite_option("the checkpoint -o names")
@click.option("--steps", type=click.IntRange(min=0), default=None,
              help="Adaptation steps (default: the method's own, see docs/ADAPT.md; not for a training-free method "
              "such as exemplar, which learns nothing in steps).")
@click.option("--lr-factor", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Multiply the fine-tuning learning rates (default: the method's own).")
@click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True,
              help="Images per fine-tuning step (at most the number of images).")
@click.option("--no-holdout", is_flag=True,
              help="Skip the check that holds the last image out and scores it before and after (>= 3 images).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the crops, flips, batches and dropout.")
@_device_option("cpu")
@click.option("--preset", default=None, cls=_RegistryHelpOption, extra=_presets_help,
              help="With a method NAME instead of a checkpoint: its config preset (default: paper).")
def adapt_cmd(model: str | None, data_dir: Path, out_path: Path, overwrite: bool, steps: int | None,
              lr_factor: float | None, batch_size: int, no_holdout: bool, seed: int, device: str | None,
              preset: str | None) -> None:
    """Adapt MODEL (any method; default, or `base`: the bundled base model) to a few of your own colour images.

    The method's own mechanism where it has one (MetalGAN's inner loop; LUT rebuilds its table;
    MemoPainter writes the images into its memory, then fine-tunes), else fine-tuning with fresh
    optimisers on seeded crops and flips. With 3 or more images the last one is first held out and
    scored (LPIPS, ΔE00) before and after; the saved model is adapted to all of them.

    MODEL may also be the name of a training-free method (exemplar): a new model of it stores the images
    (and their features) in the new checkpoint.
    """
    from fewcolor.bench.adapt_folder import AdaptInterrupted, adapt_folder
    from fewcolor.io.checkpoint import CheckpointError
    from fewcolor.io.paths import check_outside
    from fewcolor.methods.registry import available_methods

    ctx = click.get_current_context()
    check_outside(out_path, [data_dir])  # the checkpoint would replace (or join) the user's images
    if model == "base":  # the bundled base model, as everywhere else (the `base` method has nothing to adapt)
        model = str(resolve_model_arg("base", "MODEL"))
    by_name = model is not None and not Path(model).is_file()
    methods = available_methods()
    if by_name and model not in methods:
        raise click.BadParameter(f"{model}: neither a checkpoint file nor a method name "
                                 f"({', '.join(methods)}){_did_you_mean(str(model), methods)}", param_hint="MODEL")
    cls = methods[str(model)] if by_name else _checkpoint_method(model)
    # training-free, or one pass over the images (a look-up table): --steps would be ignored
    free = cls is not None and not cls.adapt_takes_steps()
    # options that do not apply are refused, not silently dropped
    given = [flag for name, flag in (("steps", "--steps"), ("lr_factor", "--lr-factor"),
                                     ("batch_size", "--batch-size"), ("no_holdout", "--no-holdout"),
                                     ("device", "--device"), ("preset", "--preset"))
             if ctx.get_parameter_source(name) not in (None, click.core.ParameterSource.DEFAULT)
             and (name != "steps" or free)]
    if by_name and set(given) - {"--preset"}:
        ignored = [f for f in given if f != "--preset"]
        for_checkpoints = any(f != "--steps" for f in ignored)  # the others apply to a checkpoint of it
        raise click.UsageError(f"{', '.join(ignored)}: " + ("for adapting a checkpoint; " if for_checkpoints else "")
                               + f"`adapt {model}` makes a new {model} model by its own mechanism (on the CPU, "
                               + ("no steps, " if free else "") + "no fine-tuning, no held-out check): drop "
                               + ("it" if len(ignored) == 1 else "them"))
    tuning = [f for f in given if f in ("--steps", "--lr-factor", "--batch-size")]
    if not by_name and free and tuning:
        assert cls is not None
        how = ("a training-free method (it learns nothing in steps: adapting stores the images, no fine-tuning)"
               if not cls.learns_in_steps else "whose adapting rebuilds it in one pass over the images (no steps, "
               "no fine-tuning)")
        raise click.UsageError(f"{', '.join(tuning)}: {model} holds {cls.name}, {how}: drop "
                               + ("it" if len(tuning) == 1 else "them"))
    if not by_name and "--preset" in given:
        raise click.UsageError("--preset: for a method NAME (a new model); a checkpoint keeps the config it was "
                               "trained with: drop --preset")
    if not by_name and model is not None and out_path.exists() and out_path.resolve() == Path(model).resolve():
        raise click.BadParameter(f"{out_path} is the model being adapted; choose another output path",
                                 param_hint="-o")
    output_file(out_path, ".safetensors", "fewcolor models", overwrite=overwrite)
    if by_name:
        assert model is not None
        _adapt_method(model, preset, data_dir, out_path, steps, seed)
        return

    try:
        r = adapt_folder(model, data_dir, out_path, steps=steps, lr_factor=lr_factor, seed=seed,
                         batch_size=batch_size, holdout=not no_holdout, device=device)
    except AdaptInterrupted as exc:  # Ctrl-C / SIGTERM: the fine-tuning state lived in a temporary folder
        click.echo(str(exc), err=True)
        ctx.exit(128 + exc.signum)
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
    grey = f" ({len(r.grey_skipped)} grey {_plural(len(r.grey_skipped), 'image')} skipped, above)" \
        if r.grey_skipped else ""
    kind = methods.get(r.method)
    if kind is not None and not kind.adapt_takes_steps():  # no steps, no learning rate
        what = f"adapted by its own mechanism to {r.images} images" if r.how == "own" else "nothing to adapt"
        why = "training-free" if not kind.learns_in_steps else "one pass"
        click.echo(f"{r.method}: {what}{grey} ({why}: no steps, no learning rate), {r.seconds:.0f} s: {r.path}")
        return
    click.echo(f"{r.method}: adapted ({r.how}) to {r.images} images{grey} in {r.steps} steps, lr "
               f"x{r.lr_factor:g}, {r.seconds:.0f} s: {r.path}")


def _checkpoint_method(path: str | Path | None) -> Any:
    """The registered class of the method a checkpoint holds, from its metadata alone (None when the file
    cannot tell: the loader then names what is wrong)."""
    from fewcolor.io.checkpoint import CheckpointError, read_metadata
    from fewcolor.methods.registry import available_methods

    if path is None:
        return None
    try:
        name = read_metadata(path).get("method")
    except (CheckpointError, OSError, ValueError):
        return None
    return available_methods().get(str(name))


def _adapt_method(name: str, preset: str | None, data_dir: Path, out_path: Path, steps: int | None,
                  seed: int) -> None:
    """``adapt NAME``: a new model of a training-free method, adapted by its own mechanism to ``data_dir``."""
    from fewcolor.data.folder import ImageFolderDataset
    from fewcolor.methods.registry import build_method, save_method

    try:
        method = build_method(name, preset)
    except KeyError as exc:
        raise click.ClickException(str(exc.args[0])) from exc
    data = ImageFolderDataset(data_dir, seed=seed)  # reports each bad file once ("skipping image ...") and skips it
    if len(data) == 0:
        raise click.ClickException(f"{data_dir}: no usable colour images")
    if not method.adapt(data, steps or 0, seed):
        raise click.ClickException(f"{name} learns from data: train it (fewcolor train --method {name}) and "
                                   f"adapt or fine-tune that checkpoint")
    path = save_method(method, out_path)
    if hasattr(method, "num_supports"):
        click.echo(f"{name}: stored {method.num_supports} of {len(data)} images: {path}")
    else:
        click.echo(f"{name}: adapted by its own mechanism to {len(data)} images: {path}")


@main.group("memory", short_help="Look inside a MemoPainter model's colour memory.")
def memory_group() -> None:
    """Look inside a MemoPainter model's colour memory."""


@memory_group.command("inspect", short_help="Write a page with a query and the memory slots it retrieves.")
@click.argument("model", type=_CheckpointOf("memopainter", "memory inspect"))
@click.argument("query", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--out", "page", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="HTML page to write (.html; images go to PAGE_files/ beside it).")
@click.option("--top-k", type=click.IntRange(min=1), default=8, show_default=True, help="Memory slots to show.")
@_overwrite_option("the page and its PAGE_files/ images")
def memory_inspect_cmd(model: Path, query: Path, page: Path, top_k: int, overwrite: bool) -> None:
    """Write an HTML page with QUERY and the top-k memory slots it retrieves (colour swatches, similarities)."""
    from fewcolor.io.checkpoint import CheckpointError
    from fewcolor.io.html import companion_folder
    from fewcolor.io.image import DEFAULT_PIXEL_BUDGET, ImageReadError, read_rgb
    from fewcolor.io.paths import check_new, is_within
    from fewcolor.methods.memopainter import MemoPainter
    from fewcolor.methods.registry import load_method
    from fewcolor.viz.memory import memory_page

    output_file(page, ".html", "memory pages", inputs=(model, query), overwrite=overwrite)
    files = companion_folder(page)  # the page's images: img00001.png ...
    if not overwrite:
        check_new([files], where=page.parent)
    for item in (model, query):
        if is_within(item, files):
            raise click.BadParameter(f"{page}: its images go to {files}, which holds the input {item}; choose "
                                     "another page name", param_hint="-o")
    try:
        method = load_method(model)
        if not isinstance(method, MemoPainter):
            raise click.ClickException(f"{model} is a {method.name!r} model; memory inspect needs a memopainter one")
        out = memory_page(method, read_rgb(query, pixel_budget=DEFAULT_PIXEL_BUDGET), page, top_k=top_k)
    except (CheckpointError, ImageReadError, RuntimeError) as exc:  # an InferenceOptionError: a usage error (2)
        raise click.ClickException(str(exc)) from exc
    click.echo(f"wrote {out}")


# ----------------------------------------------------------------------------------------------
@main.command("weights", short_help="List the pretrained networks and whether their weights are here.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def weights_cmd(as_json: bool) -> None:
    """Every pretrained network: where its weights would come from, and whether they are present."""
    from fewcolor.backbones.weights import format_weights_table, weights_table

    rows = weights_table()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(format_weights_table(rows), nl=False)


@main.command("evaluate", cls=_OnDemandRegistryCommand, sweeps=False,
              short_help="Score colorizations against the originals.")
@click.argument("model", required=False, type=MODEL)
@click.option("--pred", "pred_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of colorized outputs (matched to --truth by relative path without suffix).")
@click.option("--truth", "truth_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of ground-truth colour images.")
@click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="With MODEL: colour images to colorize (from their L) and score.")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder for metrics.json and report.html.")
@click.option("--size", type=click.IntRange(32, 4096), default=None,
              help="Score at SIZE×SIZE (prediction and truth resized alike); default: the truth's resolution.")
@click.option("--work-size", type=RESOLUTION, default=None,
              help="With MODEL: working resolution of the network; default: the model's own (224 for the bundled "
              "model).")
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
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True,
              help="Image pairs per batch of the metrics (LPIPS, SSIM, ...) and of the Inception pass.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the KID subsets.")
@_device_option("cpu")
@_overwrite_option("metrics.json and report.html (with its report_files/ images) in -o (with MODEL also its pred/ "
                   "folder of colorizations, from which an earlier run's other images are removed)")
def evaluate_cmd(model: Path | None, pred_dir: Path | None, truth_dir: Path | None, data_dir: Path | None,
                 out_dir: Path, size: int | None, work_size: int | None, lpips_net: str, no_fid: bool,
                 allow_missing: bool, inception_weights: Path | None, allow_download: bool, batch_size: int, seed: int,
                 device: str | None, overwrite: bool, **options: Any) -> None:
    """Score colorizations: `evaluate --pred DIR --truth DIR` or `evaluate MODEL --data DIR` (MODEL `base`:
    the bundled model).

    Writes metrics.json (per image and aggregate with 95 % CI, plus the protocol) and report.html.
    A pair that cannot be scored (unreadable, under 32 px, prediction of another size) is reported and
    skipped; -o may not lie inside a folder being read. With MODEL, any inference option of its method
    (the same --OPTIONs as `fewcolor colorize`, e.g. --temperature 0.5; `fewcolor methods NAME` lists them)
    colours every image, and they are recorded in metrics.json.
    """
    import os

    from fewcolor.backbones.weights import ENV_ALLOW_DOWNLOAD, WeightsNotFoundError
    from fewcolor.io.html import companion_folder
    from fewcolor.io.paths import check_new, check_outside, is_within
    from fewcolor.metrics.evaluate import EvalConfig, evaluate_folders, evaluate_model

    if allow_download:
        os.environ[ENV_ALLOW_DOWNLOAD] = "1"
    _refuse_sweeps(options, "evaluate scores one colouring per image")
    options = {k: v for k, v in options.items() if v is not None}
    if model is not None and options:  # a bad --reference: one error now, not one skipped image per file
        options = _read_image_options(options, None, decode=False)
    output_dir(out_dir)
    report = [out_dir / "metrics.json", out_dir / "report.html", companion_folder(out_dir / "report.html")]
    cfg = EvalConfig(size=size, lpips_net=lpips_net, fid=not no_fid, batch_size=batch_size, device=device,
                     seed=seed, inception_weights=str(inception_weights) if inception_weights else None)
    try:
        if model is not None:
            if data_dir is None or pred_dir or truth_dir:
                raise click.UsageError("with MODEL give --data DIR (and not --pred/--truth)")
            if not overwrite:  # after evaluate_model's own checks that -o and --data keep apart, named first
                check_outside(out_dir, [data_dir])
                check_outside(out_dir / "pred", [data_dir], option="-o (its pred/ folder)", both_ways=True)
                check_new([*report, out_dir / "pred"], where=out_dir)
            result = evaluate_model(model, data_dir, out_dir, cfg, work_size=work_size, options=options)
        else:
            if not (pred_dir and truth_dir) or data_dir:
                raise click.UsageError("give --pred DIR and --truth DIR, or MODEL --data DIR")
            if options:
                raise click.UsageError(f"method options ({', '.join('--' + k.replace('_', '-') for k in options)}) "
                                       "colour images: give them with MODEL --data DIR, not with --pred/--truth")
            if is_within(pred_dir, truth_dir) and is_within(truth_dir, pred_dir):
                raise click.UsageError(f"--pred {pred_dir} and --truth {truth_dir} are the same folder; give the "
                                       "colorized images and the originals in separate folders")
            if not overwrite:
                check_outside(out_dir, [truth_dir, pred_dir])  # evaluate_folders' own check, named first
                check_new(report, where=out_dir)
            result = evaluate_folders(pred_dir, truth_dir, out_dir, cfg, allow_missing=allow_missing)
    except WeightsNotFoundError as exc:
        raise click.ClickException(_one_line(exc)) from exc
    for item in result["skipped"]:
        click.echo(f"skipped {item['name']}: {item['reason']}", err=True)
    agg = result["aggregate"]
    parts = [f"{m} {agg[m]['mean']:.4g}" for m in ("psnr", "ssim", "lpips", "delta_e2000", "auc")]
    fid = result["set"].get("fid")
    if fid is not None:
        caveat = f" (unreliable: {result['set']['set_images']} images)" if result["set"].get("set_warning") else ""
        parts.append(f"FID {fid:.4g}{caveat}")
    click.echo(f"{len(result['per_image'])} images scored, {len(result['skipped'])} skipped: " + ", ".join(parts))
    missing = result.get("missing") or []
    if missing:
        click.echo(f"{len(missing)} of {len(missing) + len(result['per_image'])} truth images had no prediction "
                   f"and were not scored, e.g. {', '.join(missing[:3])} (all listed in metrics.json)")
    click.echo(f"wrote {out_dir / 'metrics.json'} and {out_dir / 'report.html'}")


# ----------------------------------------------------------------------------------------------
@main.group("paper-eval", short_help="Run the evaluations the papers report (offline stand-ins named).")
def paper_eval_group() -> None:
    """The evaluations the papers report, with offline stand-ins named as such (docs/RESULTS.md)."""


_DATA_OPT = click.option("--data", "data_dir", required=True,
                         type=click.Path(exists=True, file_okay=False, path_type=Path),
                         help="Labelled folder root/<class>/<image> (class folders named by wnid for ImageNet sets).")
_OUT_OPT = click.option("-o", "--out", "out_path", required=True, type=click.Path(path_type=Path),
                        help="Result JSON file (or a folder that gets result.json).")
_SEED_OPT = click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the image draw and probes.")
_OVERWRITE_OPT = _overwrite_option("the result JSON")


def _paper_eval_out(out_path: Path, inputs: tuple[Path | None, ...] = (), overwrite: bool = False) -> Path:
    """``-o`` of a paper evaluation, checked before the evaluation runs: a .json file, or a folder (that gets
    result.json), writable, not one of the inputs, and new unless ``overwrite``."""
    from fewcolor.io.paths import check_new

    if out_path.suffix.lower() == ".json":  # as output_file compares it
        return output_file(out_path, ".json", "results", inputs=inputs, overwrite=overwrite)
    if out_path.exists() and not out_path.is_dir():
        raise click.BadParameter(f"{out_path} is a file; give a .json file to write (e.g. -o "
                                 f"{out_path.with_suffix('.json')}) or a folder for result.json", param_hint="-o")
    output_dir(out_path)
    if not overwrite:
        check_new([out_path / "result.json"])
    return out_path / "result.json"


def _run_paper_eval(fn: Any, out_path: Path, inputs: tuple[Path | None, ...] = (), overwrite: bool = False,
                    **kwargs: Any) -> dict[str, Any]:
    from fewcolor.backbones.weights import WeightsNotFoundError
    from fewcolor.bench.paper_evals import write_json
    from fewcolor.io.checkpoint import CheckpointError
    from fewcolor.methods.options import InferenceOptionError

    out_path = _paper_eval_out(out_path, inputs, overwrite)
    try:
        result = fn(**kwargs)
    except InferenceOptionError:
        raise  # a usage mistake: one line, exit 2 (the error boundary)
    except (WeightsNotFoundError, FileNotFoundError, ValueError, KeyError, CheckpointError) as exc:
        raise click.ClickException(str(exc).splitlines()[0]) from exc
    click.echo(f"wrote {write_json(result, out_path)}")
    return result


def _label_map(path: Path | None) -> dict[str, int] | None:
    """--label-map: JSON {class folder name: ImageNet-1k index}, read before any work."""
    if path is None:
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        return {str(k): int(v) for k, v in raw.items()}
    except (OSError, UnicodeDecodeError, ValueError, TypeError) as exc:
        raise click.BadParameter(f"{path}: not a JSON object {{class folder name: ImageNet-1k index}} "
                                 f"({_one_line(exc)})", param_hint="--label-map") from None


@paper_eval_group.command(
    "semantic", short_help='Zhang §3.1: classifier accuracy on colourized vs grey vs original images.',
    cls=_OnDemandRegistryCommand, sweeps=False,
)
@click.argument("model", type=MODEL)
@_DATA_OPT
@_OUT_OPT
@_OVERWRITE_OPT
@click.option("--per-class", type=click.IntRange(min=1), default=10, show_default=True, help="Images per class.")
@click.option("--size", type=RESOLUTION, default=224, show_default=True,
              help="Images are resized/centre-cropped to this.")
@click.option("--label-map", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="JSON {class folder name: ImageNet-1k index}; default: Imagenette's wnids (others: agreement only).")
@_SEED_OPT
@_device_option()
def paper_eval_semantic_cmd(model: Path, data_dir: Path, out_path: Path, per_class: int, size: int,
                            label_map: Path | None, seed: int, device: str | None, overwrite: bool,
                            **options: Any) -> None:
    """Zhang et al. §3.1 semantic interpretability: EfficientNet-Lite0 top-1 accuracy (and agreement with the
    originals' top-1) on colourized vs grey vs original images. MODEL `base`: the bundled model; its method's
    inference options (e.g. --temperature 0.6, as `fewcolor colorize` takes them) colour every image."""
    from fewcolor.bench.paper_evals import semantic_eval

    mapping = _label_map(label_map)
    _refuse_sweeps(options, "the semantic test scores one colouring per image")
    options = _read_image_options({k: v for k, v in options.items() if v is not None}, None, decode=False)
    r = _run_paper_eval(semantic_eval, out_path, inputs=(model, label_map), overwrite=overwrite, model=model,
                        data_dir=data_dir, per_class=per_class, size=size, label_map=mapping, seed=seed,
                        device=device, options=options)  # an option error: one line
    for kind in ("colourized", "grey", "original"):
        acc = r[f"top1_{kind}_efficientnet_lite0"]
        click.echo(f"{kind:11s} top-1 {'n/a' if acc is None else f'{acc:.3f}'}, "
                   f"agreement {r[f'agreement_{kind}_efficientnet_lite0']:.3f} ({r['n']} images)")


@paper_eval_group.command(
    "inception-score", short_help='MetalGAN Table 1: "IS (EfficientNet-Lite0)", and the real IS given weights.'
)
@click.argument("model", type=MODEL)
@_DATA_OPT
@_OUT_OPT
@_OVERWRITE_OPT
@click.option("--per-class", type=click.IntRange(min=1), default=10, show_default=True, help="Images per class.")
@click.option("--size", type=RESOLUTION, default=64, show_default=True,
              help="Image side (MetalGAN: 64 px Tiny-ImageNet).")
@click.option("--inception-weights", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Inception weights with the 1008-way head (pytorch-fid's file) for the real IS.")
@click.option("--splits", type=click.IntRange(min=1), default=10, show_default=True, help="IS splits.")
@_SEED_OPT
@_device_option()
def paper_eval_is_cmd(model: Path, data_dir: Path, out_path: Path, per_class: int, size: int,
                      inception_weights: Path | None, splits: int, seed: int, device: str | None,
                      overwrite: bool) -> None:
    """MetalGAN Table 1: "IS (EfficientNet-Lite0)" (a stand-in) of colourized, grey and original images, and the
    real Inception Score when --inception-weights carry the 1008-way head. MODEL `base`: the bundled model."""
    from fewcolor.bench.paper_evals import inception_score_eval

    r = _run_paper_eval(inception_score_eval, out_path, inputs=(model, inception_weights), overwrite=overwrite,
                        model=model, data_dir=data_dir, per_class=per_class, size=size,
                        inception_weights=inception_weights, splits=splits, seed=seed, device=device)
    for kind in ("colourized", "grey", "original"):
        click.echo(f"{kind:11s} IS (EfficientNet-Lite0) {r[kind]['is_efficientnet_lite0']:.3f}")
    real = r["inception_score"]
    click.echo("Inception Score: " + (f"colourized {real['colourized']['is']:.3f}" if real["available"]
                                      else f"not available ({real['why']})"))


@paper_eval_group.command(
    "representation", short_help='Zhang §3.2: linear probes on frozen CIC features vs random vs VGG16.'
)
@click.argument("model", type=_CheckpointOf("cic", "paper-eval representation"))
@_DATA_OPT
@_OUT_OPT
@_OVERWRITE_OPT
@click.option("--classes", type=click.IntRange(min=2), default=20, show_default=True, help="First N classes.")
@click.option("--train-per-class", type=click.IntRange(min=1), default=30, show_default=True,
              help="Images per class the linear classifiers are trained on.")
@click.option("--test-per-class", type=click.IntRange(min=1), default=20, show_default=True,
              help="Held-out images per class the accuracy is measured on.")
@click.option("--size", type=RESOLUTION, default=64, show_default=True, help="Image side (a multiple of 8).")
@click.option("--vgg", type=click.Choice(["imagenet", "random", "none"]), default="imagenet", show_default=True,
              help="The VGG16 baseline's weights.")
@_SEED_OPT
def paper_eval_representation_cmd(model: Path, data_dir: Path, out_path: Path, classes: int, train_per_class: int,
                                  test_per_class: int, size: int, vgg: str, seed: int, overwrite: bool) -> None:
    """Zhang et al. §3.2: linear classifiers on frozen grey-image features of each block of a trained CIC net vs
    the same net randomly initialised vs VGG16 (ImageNet)."""
    from fewcolor.bench.paper_evals import representation_eval

    r = _run_paper_eval(representation_eval, out_path, inputs=(model,), overwrite=overwrite, model=model,
                        data_dir=data_dir, classes=classes, train_per_class=train_per_class,
                        test_per_class=test_per_class, size=size, vgg=vgg, seed=seed)
    for name, acc in r["accuracy"].items():
        click.echo(f"{name:34s} {acc:.3f}")
    click.echo(f"chance {r['chance']:.3f}, {r['test_images']} test images")


def _retrieval_options(f: Any) -> Any:
    for option in reversed([
        click.option("--n-way", type=click.IntRange(min=2), default=5, show_default=True,
                     help="Classes per episode."),
        click.option("--k-shot", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Support images per class (what the memory stores)."),
        click.option("--n-query", type=click.IntRange(min=1), default=5, show_default=True, help="Queries per class."),
        click.option("--episodes", type=click.IntRange(min=1), default=10, show_default=True,
                     help="Episodes (a fresh query head and memory each)."),
        click.option("--steps", type=click.IntRange(min=1), default=30, show_default=True,
                     help="Passes over the support set (triplet step + memory update each)."),
        click.option("--color-feature", type=click.Choice(["dist", "rgb"]), default="dist", show_default=True,
                     help="Colour feature: dist (313-bin ab distribution) or rgb (10 dominant colours)."),
        click.option("--size", type=RESOLUTION, default=64, show_default=True, help="Image side."),
        _SEED_OPT,
    ]):
        f = option(f)
    return f


@paper_eval_group.command("retrieval", short_help='MemoPainter Table 2: top-1 memory retrieval accuracy.')
@_DATA_OPT
@_OUT_OPT
@_OVERWRITE_OPT
@_retrieval_options
@click.option("--threshold", type=click.FloatRange(min=0, min_open=True), default=None,
              help="δ (default: 5 for dist, 20 ΔE00 for rgb).")
def paper_eval_retrieval_cmd(data_dir: Path, out_path: Path, n_way: int, k_shot: int, n_query: int, episodes: int,
                             steps: int, color_feature: str, size: int, seed: int, threshold: float | None,
                             overwrite: bool) -> None:
    """MemoPainter Table 2: top-1 memory retrieval accuracy, unsupervised (threshold triplet loss) and
    supervised (class labels), on N-way K-shot episodes."""
    from fewcolor.bench.paper_evals import retrieval_eval

    r = _run_paper_eval(retrieval_eval, out_path, overwrite=overwrite, data_dir=data_dir, size=size, seed=seed,
                        n_way=n_way, k_shot=k_shot, n_query=n_query, episodes=episodes, steps=steps,
                        color_feature=color_feature, threshold=threshold)
    click.echo(f"top-1 retrieval: unsupervised {r['unsupervised']['accuracy']:.3f}, supervised "
               f"{r['supervised']['accuracy']:.3f}, chance {r['chance']:.3f}")


def _positive_floats(ctx: click.Context, param: click.Parameter, text: str) -> list[float]:
    """A comma-separated list of positive numbers (click callback: errors name the option)."""
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers such as 0.5,1,2, got {text!r}") from None
    if not values or any(not v > 0 or v == float("inf") for v in values):
        raise click.BadParameter(f"expected comma-separated positive numbers such as 0.5,1,2, got {text!r}")
    return values


@paper_eval_group.command(
    "memory-sweep", short_help='MemoPainter Fig. 9: retrieval accuracy over memory sizes × thresholds.'
)
@_DATA_OPT
@_OUT_OPT
@_OVERWRITE_OPT
@_retrieval_options
@click.option("--memory-scales", default="0.25,0.5,1.2,2", show_default=True, callback=_positive_floats,
              help="Memory sizes as multiples of the support-set size, comma-separated (each > 0).")
@click.option("--thresholds", default="1,2.5,5,10", show_default=True, callback=_positive_floats,
              help="Thresholds δ, comma-separated (each > 0).")
def paper_eval_memory_sweep_cmd(data_dir: Path, out_path: Path, n_way: int, k_shot: int, n_query: int,
                                episodes: int, steps: int, color_feature: str, size: int, seed: int,
                                memory_scales: list[float], thresholds: list[float], overwrite: bool) -> None:
    """MemoPainter Fig. 9's study: unsupervised top-1 retrieval accuracy over memory sizes × thresholds δ."""
    from fewcolor.bench.paper_evals import memory_sweep

    r = _run_paper_eval(memory_sweep, out_path, overwrite=overwrite, data_dir=data_dir, memory_scales=memory_scales,
                        thresholds=thresholds, size=size, seed=seed, n_way=n_way, k_shot=k_shot,
                        n_query=n_query, episodes=episodes, steps=steps, color_feature=color_feature)
    for row in r["rows"]:
        click.echo(f"memory ×{row['memory_scale']:g}  δ {row['threshold']:g}: {row['accuracy']:.3f}")


if __name__ == "__main__":
    main()
