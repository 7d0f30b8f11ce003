"""The one training loop every method uses.

Per step it draws a batch (a deterministic function of seed and step, so ``resume`` continues
exactly), sets the method's scheduled learning rates (``Method.learning_rates(step, total)``), iterates
the method's :class:`~fewcolor.methods.base.Phase` objects, and for each: checks
the loss is finite, back-propagates (bf16 autocast where the hardware has it, see
:mod:`fewcolor.hardware`), averages gradients across ranks, checks the gradients are finite,
steps the optimiser and runs ``after_step``. It writes atomic checkpoints, CSV + TensorBoard logs and
sample grids, shows a progress bar with ETA, and rolls back to the last good checkpoint after repeated
non-finite steps.

Resuming is refused when the run was started with another method, config (preset, ``--set``, size),
batch size, seed, world size or data transform, since it would not continue that run; a new planned
length is allowed, with a warning when it moves the learning-rate schedule. SIGINT and SIGTERM (Ctrl-C,
a scheduler's stop) finish the current step, save the training state and raise
:class:`TrainingInterrupted`; a second signal aborts at once. Before the first step (the set-up pass:
priors, clusters, minutes) there is nothing to save, so a signal stops at once. One process trains
into a folder at a time (:mod:`fewcolor.train.run_lock`). The state is saved every ``checkpoint_every``
steps and every ``checkpoint_minutes``, durably, with the state before it kept as a fallback
(:mod:`fewcolor.train.last_state`).

Run directory layout::

    RUN/model.safetensors            final model (``fewcolor colorize RUN/model.safetensors``)
    RUN/checkpoints/last.safetensors training state for --resume (model, optimisers, RNG, step)
    RUN/checkpoints/last.prev.safetensors  the state saved before it (the fallback of a damaged last)
    RUN/log.csv, RUN/events/         losses (CSV and TensorBoard)
    RUN/samples/step_XXXXXX.png      grey | truth | output rows
    RUN/run.json                     options, method, config, dataset
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import json
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from tqdm.auto import tqdm

from fewcolor.data.protocol import Dataset, collate
from fewcolor.hardware import resolve_device, resolve_precision
from fewcolor.io.atomic import atomic_path, write_text_atomic
from fewcolor.io.checkpoint import CheckpointError, read_metadata
from fewcolor.meta import distributed as dist_utils
from fewcolor.methods.base import Method, Phase
from fewcolor.methods.options import config_fields
from fewcolor.methods.registry import save_method
from fewcolor.nets.norm import keep_norm_statistics
from fewcolor.train.allocator import retain_freed_memory
from fewcolor.train.last_state import has_training_state, resumable_state, save_keeping_previous
from fewcolor.train.run_lock import RunFolderBusy, run_folder_lock
from fewcolor.train.state import load_training_state

log = logging.getLogger(__name__)

#: held-out scores of a model in training (name -> value), e.g. fewcolor.metrics.held_out.HeldOutScores
Validation = Callable[[Method], Mapping[str, float]]


@dataclass
class TrainOptions:
    out_dir: str | Path
    steps: int | None = None  #: optimisation steps; or give ``epochs``
    epochs: float | None = None
    batch_size: int = 8
    seed: int = 0
    checkpoint_every: int = 500  #: 0 = only at the end (and by ``checkpoint_minutes``)
    #: also save when this many minutes have passed since the last save (slow steps); 0 = by steps only
    checkpoint_minutes: float = 10.0
    sample_every: int = 250  #: 0 = never
    #: steps between held-out scores (``train(..., validate=...)``; also at the run's last step); 0 = never
    validate_every: int = 0
    log_every: int = 10
    #: auto | fp32 | bf16 (bf16 only where native: fewcolor.hardware), as the user asked (``fewcolor train
    #: --precision``); None: fp32, the caller's choice (fine-tuning, benchmarks, the demo), logged as such
    precision: str | None = None
    device: str | None = None  #: default: CUDA when present, else CPU
    resume: bool = False
    max_bad_steps: int = 3  #: consecutive non-finite steps before rolling back
    run_setup: bool = True  #: call ``method.setup(dataset)`` (off when fine-tuning)
    progress: bool = True
    tensorboard: bool = True
    num_samples: int = 8
    max_seconds: float | None = None  #: stop early (and save) after this wall time
    handle_signals: bool = True  #: SIGINT/SIGTERM save the state, then raise TrainingInterrupted
    lr_factor: float = 1.0  #: multiplies every optimiser's learning rate (fine-tuning on a few images)
    #: batch-norm layers normalise by their running statistics and keep them (fine-tuning on a few images)
    keep_norm_statistics: bool = False


class TrainingInterrupted(Exception):
    """Training stopped on SIGINT/SIGTERM after saving its state; for ``fewcolor train``, ``--resume`` continues
    it. Commands that train in a temporary folder (``fewcolor adapt``) or resume by themselves (``fewcolor
    bench``) turn it into their own message."""

    #: how to continue, for ``fewcolor train``; a command that resumes by itself passes its own (``with_hint``)
    default_hint: ClassVar[str] = "continue with the same command plus --resume"

    def __init__(self, step: int, checkpoint: Path | None, signum: int, hint: str | None = None) -> None:
        """``checkpoint`` None: stopped before the first step of a new run, with nothing to save."""
        self.step, self.checkpoint, self.signum = step, checkpoint, signum
        self.hint = hint or (self.default_hint if checkpoint is not None else "run the same command again")
        name = signal.Signals(signum).name
        if checkpoint is None:
            super().__init__(f"interrupted by {name} before the first step (in the set-up pass), with nothing to "
                             f"save yet: {self.hint}")
        else:
            super().__init__(f"interrupted by {name} at step {step}; the state is saved in {checkpoint}: {self.hint}")

    def with_hint(self, hint: str) -> TrainingInterrupted:
        """The same interruption, telling the user ``hint`` instead of ``--resume``."""
        return TrainingInterrupted(self.step, self.checkpoint, self.signum, hint)


class _SetupInterrupted(BaseException):
    """A signal during the set-up pass: the loop turns it into :class:`TrainingInterrupted`. A BaseException,
    as KeyboardInterrupt is: raised wherever the set-up is, it must not be taken for that code's own failure
    (an image decoder's ``except Exception`` would report the image as corrupt and go on)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signum)


@dataclass
class TrainResult:
    step: int
    checkpoint: Path | None
    history: list[dict[str, float]] = field(default_factory=list)
    wall_seconds: float = 0.0  #: seconds of this run's training steps (not its set-up pass or its final saves)
    rollbacks: int = 0
    skipped_steps: int = 0
    out_of_time: bool = False  #: ``max_seconds`` ended the run before its planned length (``--resume`` goes on)
    validation: list[dict[str, float]] = field(default_factory=list)  #: this run's held-out rows (step + scores)
    #: seconds of training steps over every run of this folder (this run's ``wall_seconds`` plus what the
    #: resumed checkpoint had recorded), so a run stopped and resumed still reports its whole cost
    total_seconds: float = 0.0


@functools.lru_cache(maxsize=4)
def _epoch_permutation(n: int, seed: int, epoch: int) -> tuple[int, ...]:
    """The seeded permutation of ``range(n)`` for ``epoch`` (immutable, memoised). Four entries hold the
    epochs a batch can span (the current one and the next) for two runs at once, about 4 MB each at
    100,000 images."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return tuple(torch.randperm(n, generator=g).tolist())


def batch_indices(n: int, step: int, batch_size: int, seed: int, rank: int = 0, world: int = 1) -> list[int]:
    """Indices of ``step``'s batch on ``rank``: a stream of seeded permutations, one per epoch.

    A pure function of its arguments, which is what makes resuming exact and ranks disjoint. Each
    epoch's permutation comes from :func:`_epoch_permutation`, which keeps the last few, so it is drawn
    once per epoch, not per step (5 ms per step at 100,000 images).
    """
    if n <= 0:
        raise ValueError("empty dataset")
    start = (step * world + rank) * batch_size
    return [_epoch_permutation(n, seed, epoch)[offset]
            for epoch, offset in (divmod(pos, n) for pos in range(start, start + batch_size))]


def epoch_of(n: int, step: int, batch_size: int, world: int = 1) -> int:
    return (step * world * batch_size) // n


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def collate_samples(dataset: Dataset, indices: Sequence[int], epoch: int) -> dict[str, Any]:
    """The batch of ``indices`` in ``epoch`` (:func:`fewcolor.data.protocol.collate`)."""
    set_epoch = getattr(dataset, "set_epoch", None)
    if set_epoch is not None:
        set_epoch(epoch)
    return collate(dataset, indices)


def _grads_finite(params: Sequence[torch.nn.Parameter]) -> bool:
    """Whether every gradient element is finite.

    A sum is finite only when all its terms are, so one reduction per tensor settles the usual case
    (~15× faster than ``isfinite`` per element); only when a sum is not finite (a NaN/inf, or finite
    values whose sum overflows) does the exact per-element test decide.
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return True
    if bool(torch.stack([g.sum(dtype=torch.float32) for g in grads]).sum().isfinite()):
        return True
    return bool(torch.stack([g.isfinite().all() for g in grads]).all())


class _CsvLog:
    """Wide CSV (one row per logged step); rewritten atomically when a new column appears or on resume.

    On resume, rows after the checkpoint's step (logged before a kill) and a torn last line are dropped
    from the file itself, so the steps run again are not logged twice.
    """

    def __init__(self, path: Path, resume: bool) -> None:
        self.path = path
        self.rows: list[dict[str, float]] = []
        if resume and path.exists():
            with path.open(newline="", encoding="utf-8", errors="replace") as f:
                self.rows = [row for r in csv.DictReader(f) if (row := _parse_row(r)) is not None]
        self.columns: list[str] = sorted({k for r in self.rows for k in r} - {"step"})

    def append(self, row: dict[str, float]) -> None:
        self.rows.append(row)
        new = sorted(set(row) - {"step"} - set(self.columns))
        if new or not self.path.exists():
            self.columns = sorted(set(self.columns) | set(new))
            self._rewrite()
        else:
            with self.path.open("a", newline="") as f:
                csv.DictWriter(f, ["step", *self.columns]).writerow(row)

    def truncate(self, step: int) -> None:
        self.rows = [r for r in self.rows if r["step"] <= step]
        if self.path.exists():
            self._rewrite()

    def _rewrite(self) -> None:
        with atomic_path(self.path) as tmp, tmp.open("w", newline="") as f:
            w = csv.DictWriter(f, ["step", *self.columns])
            w.writeheader()
            w.writerows(self.rows)


def _parse_row(raw: dict[str | None, str | None]) -> dict[str, float] | None:
    """A CSV row as numbers, or None for a torn line (cut by a kill mid-write)."""
    if None in raw or raw.get("step") in (None, ""):
        return None
    try:
        return {k: int(v) if k == "step" else float(v) for k, v in raw.items() if k is not None and v not in ("", None)}
    except ValueError:
        return None


def _check_options(opts: TrainOptions, validate: Validation | None = None) -> None:
    """Refuse option values that would silently do nothing or nonsense."""
    if opts.steps is not None and opts.steps < 1:
        raise ValueError(f"steps must be at least 1 (got {opts.steps}); give --steps N or --epochs E")
    if opts.epochs is not None and not opts.epochs > 0:
        raise ValueError(f"epochs must be positive (got {opts.epochs})")
    for name in ("batch_size", "log_every", "max_bad_steps"):
        if getattr(opts, name) < 1:
            raise ValueError(f"{name} must be at least 1 (got {getattr(opts, name)})")
    for name in ("checkpoint_every", "sample_every", "validate_every"):
        if getattr(opts, name) < 0:
            raise ValueError(f"{name} must be 0 (off) or positive (got {getattr(opts, name)})")
    if not opts.checkpoint_minutes >= 0:
        raise ValueError(f"checkpoint_minutes must be 0 (off) or positive (got {opts.checkpoint_minutes})")
    if opts.validate_every and validate is None:
        raise ValueError("validate_every needs the held-out scores to compute: train(..., validate=...)")


def run_identity(method: Method, dataset: Dataset, opts: TrainOptions, world: int) -> dict[str, Any]:
    """What a resumed run must share with the run it continues (JSON-normalised)."""
    identity = {
        "method": method.name,
        "config": dataclasses.asdict(method.config),
        "batch_size": opts.batch_size,
        "seed": opts.seed,
        "world_size": world,
        "transform": repr(getattr(dataset, "transform", None)),
    }
    return json.loads(json.dumps(identity, default=str))


_IDENTITY_HINTS = {"method": "--method", "batch_size": "--batch-size", "seed": "--seed",
                   "world_size": "the torchrun process count", "transform": "--size / --no-flip"}


def config_defaults(method: Method) -> dict[str, Any]:
    """The method's config fields at their defaults (JSON-normalised like :func:`run_identity`)."""
    defaults = {f.name: f.default for f in config_fields(type(method.config))}
    return json.loads(json.dumps(defaults, default=str))


def identity_differences(stored: Mapping[str, Any], current: Mapping[str, Any],
                         defaults: Mapping[str, Any] | None = None) -> list[str]:
    """``"config image_size 32 -> 64"`` per setting of :func:`run_identity` that differs (named by its
    option where it has one); a key the stored identity lacks is not compared.

    A config field the stored run does not have (added to the method since) counts as unchanged when the
    current run keeps it at its default (``defaults``: :func:`config_defaults`), the behaviour before it.
    """
    defaults = defaults or {}
    diffs = []
    for key, now in current.items():
        if key not in stored or stored[key] == now:
            continue
        if key == "config" and isinstance(stored[key], dict) and isinstance(now, dict):
            old = stored[key]
            fields = sorted(k for k in set(now) | set(old) if now.get(k) != old.get(k)
                            and not (k not in old and k in defaults and now.get(k) == defaults[k]))
            diffs += [f"config {k} {old.get(k)!r} -> {now.get(k)!r}" for k in fields]
        else:
            diffs.append(f"{_IDENTITY_HINTS.get(key, key)} {stored[key]!r} -> {now!r}")
    return diffs


def check_resume_identity(path: Path, stored: Any, current: dict[str, Any],
                          defaults: dict[str, Any] | None = None) -> None:
    """Raise ``ValueError`` naming every difference (:func:`identity_differences`) between the stored and the
    current identity."""
    if not isinstance(stored, dict):
        return  # a checkpoint written before identities were stored: nothing to compare
    diffs = identity_differences(stored, current, defaults)
    if diffs:
        raise ValueError(
            f"--resume: {path} belongs to a run with other settings ({'; '.join(diffs[:6])}); resume with the "
            "run's own method, preset, --set, --size, --batch-size and --seed (see run.json), or train into a new -o"
        )


class _StopRequests(list[int]):
    """The SIGINT/SIGTERM numbers received; while ``at_once`` (before the first step: set-up passes, nothing to
    save) a signal raises at once instead of waiting for the end of a step."""

    at_once = True


@contextlib.contextmanager
def _stop_on_signals(enabled: bool) -> Iterator[_StopRequests]:
    """Yield the list that receives the number of the first SIGINT/SIGTERM; a second one aborts at once."""
    received = _StopRequests()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum: int, frame: object) -> None:
        if received:
            raise KeyboardInterrupt
        received.append(signum)  # first, so that a second signal aborts even while this one unwinds
        if received.at_once:
            raise _SetupInterrupted(signum)
        log.warning("%s: saving the training state after this step (send it again to abort now)",
                    signal.Signals(signum).name)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _steps_for(opts: TrainOptions, n: int, world: int) -> int:
    if opts.steps is not None:
        return int(opts.steps)
    if opts.epochs is not None:
        return max(1, math.ceil(opts.epochs * n / (opts.batch_size * world)))
    raise ValueError("give TrainOptions.steps or TrainOptions.epochs")


def place_method(method: Method, device: torch.device) -> None:
    """Move ``method`` to ``device``, in channels-last memory format on the CPU where the method asks for it
    (``Method.channels_last``: its convolutions measured faster so; results differ only by rounding)."""
    method.to(device)
    if method.channels_last and device.type == "cpu":
        method.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # accepted, untyped


def _match_layout(param: torch.Tensor, state: dict[str, Any]) -> None:
    """Give the optimiser state tensors of ``param``'s shape ``param``'s strides (values unchanged)."""
    for key, value in state.items():
        if torch.is_tensor(value) and value.shape == param.shape and value.stride() != param.stride():
            state[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


#: optimisers with a fused kernel on every device PyTorch has one for (CPU, CUDA, MPS)
_FUSABLE = (torch.optim.Adam, torch.optim.AdamW)


class TrainStep:
    """One optimisation step of the loop, for a batch already on the device.

    Sets the scheduled learning rates (times ``lr_factor``, the fine-tuning scale of
    :class:`TrainOptions`), runs the method's phases (each under bf16 autocast when
    ``bf16``), and per phase checks the loss is finite, back-propagates, averages gradients across
    ranks, checks the gradients are finite, steps the optimiser and runs ``after_step``. Returns the
    phases' logs, or None when a loss or gradient was not finite (every gradient is then cleared).
    The loop calls it once per step; ``fewcolor.bench.speed.training`` times the same object.

    Adam and AdamW run PyTorch's fused kernel (one pass over each tensor instead of about ten: 4–8×
    faster on the CPU, measured in docs/PERFORMANCE.md); it computes the same update, but rounds
    differently in the last bit, so weights differ from the per-tensor default by ~1e-7 per step.
    Other optimisers run their multi-tensor (``foreach``) kernels, which give identical numbers.
    :meth:`use_fast_kernels` re-applies this after a state load.
    """

    def __init__(self, method: Method, optimizers: dict[str, torch.optim.Optimizer], bf16: bool,
                 device: torch.device, lr_factor: float = 1.0) -> None:
        self.method, self.optimizers, self.bf16, self.lr_factor = method, optimizers, bf16, lr_factor
        self.autocast_device = "cuda" if device.type == "cuda" else "cpu"
        self.params = {name: [p for g in o.param_groups for p in g["params"]] for name, o in optimizers.items()}
        self.use_fast_kernels()

    def use_fast_kernels(self) -> None:
        """Fused Adam/AdamW, ``foreach`` for the other optimisers that have it (see the class docstring).

        A loaded optimiser state brings back the settings it was saved with, and its tensors in the
        contiguous layout they were saved in, hence a method of its own: it also gives each state tensor
        its parameter's memory layout (channels-last parameters), as a fresh state has, so that the
        kernels, and with them the rounding, are those of an uninterrupted run.
        """
        for o in self.optimizers.values():
            fusable = type(o) in _FUSABLE
            for group in o.param_groups:
                for p in group["params"]:
                    _match_layout(p, o.state.get(p, {}))
                if group.get("differentiable") or group.get("capturable"):
                    continue
                if fusable:
                    group["foreach"], group["fused"] = False, True
                    for p in group["params"]:  # the fused kernel keeps each step count on its tensor's device
                        state = o.state.get(p, {})
                        if torch.is_tensor(state.get("step")):
                            state["step"] = state["step"].to(p.device, torch.float32)
                elif "foreach" in group and not group.get("fused"):
                    group["foreach"] = True

    def __call__(self, batch: dict[str, Any], step: int, total: int) -> dict[str, float] | None:
        for name, lr in self.method.learning_rates(step, total).items():
            for group in self.optimizers[name].param_groups:
                group["lr"] = lr * self.lr_factor  # a schedule would otherwise undo the loop's scaling
        logs: dict[str, float] = {}
        phases = self.method.training_step(batch, step)
        try:
            while True:
                with torch.autocast(self.autocast_device, dtype=torch.bfloat16, enabled=self.bf16):
                    phase = next(phases, None)
                if phase is None:
                    return logs
                if not self._apply(phase):
                    for o in self.optimizers.values():
                        o.zero_grad(set_to_none=True)
                    return None
                logs.update(phase.logs)
        finally:
            if isinstance(phases, Generator):
                phases.close()

    def _apply(self, phase: Phase) -> bool:
        """Back-propagate and step one phase; False when its loss or gradients are not finite."""
        opt = self.optimizers[phase.optimizer]
        params = self.params[phase.optimizer]
        if phase.loss is not None:
            if not dist_utils.all_true(bool(torch.isfinite(phase.loss.detach()).all())):
                return False
            opt.zero_grad(set_to_none=True)
            phase.loss.backward()
        dist_utils.average_gradients(params)
        if not dist_utils.all_true(_grads_finite(params)):
            return False
        opt.step()
        if phase.after_step is not None:
            phase.after_step()
        return True


@contextlib.contextmanager
def evaluating(method: Method) -> Iterator[None]:
    """``method`` in eval mode without gradients for the block, then each module's own mode back (batch
    norms kept in eval by :func:`keep_norm_statistics` stay so)."""
    modes = [(m, m.training) for m in method.modules()]
    method.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for module, mode in modes:
            module.training = mode


def _precision_fixed_by(opts: TrainOptions) -> str | None:
    """Why the run trains in fp32 when no one asked for a precision (``opts.precision`` None), for the log."""
    if opts.precision is not None:
        return None
    if not opts.run_setup:  # fewcolor.train.adapt: a few images, a few steps
        return "fine-tuning runs in fp32"
    return "the default when no precision is given; `fewcolor train --precision auto` uses bf16 where it is native"


#: steps timed (after the first) for the expected time of a run, said once near its start
ESTIMATE_STEPS = 5


def _say_expected_time(step: int, total: int, seconds_per_step: float, max_seconds: float | None,
                       t0: float) -> None:
    """Log once how long the rest of the run should take at the rate of its first steps."""
    left = (total - step) * seconds_per_step
    budget = None if max_seconds is None else max(0.0, max_seconds - (time.time() - t0))
    until = "" if budget is None or budget >= left else f"; --minutes stops it in about {duration_text(budget)}"
    log.info("expected: about %s for the %d steps left (%.3g s/step over steps %d-%d; held-out rounds, samples and "
             "checkpoints add to it)%s", duration_text(left), total - step, seconds_per_step, step - ESTIMATE_STEPS + 1,
             step, until)


def duration_text(seconds: float) -> str:
    """``0.25 s``, ``42 s``, ``17 min``, ``3 h 05 min``: reads right after "takes" and after "about"."""
    if seconds < 1:
        return f"{seconds:.2g} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 90 else f"{minutes // 60} h {minutes % 60:02d} min"


def _planned_steps(run_json: Path) -> int | None:
    """The length the run being resumed was planned for (None when its run.json does not say)."""
    try:
        steps = json.loads(run_json.read_text(encoding="utf-8")).get("steps")
    except (OSError, ValueError, AttributeError):
        return None
    return steps if isinstance(steps, int) and not isinstance(steps, bool) else None


def _say_new_length(method: Method, planned: int | None, total: int, step: int) -> None:
    """When a resumed run gets another length: warn if that moves the method's learning-rate schedule (a
    schedule over the run's length, e.g. CIC's or MetalGAN's annealing) for the steps still to come."""
    if planned is None or planned == total:
        return
    # every step to come: a schedule's drops are single steps that a sample would miss
    moved = next((s for s in range(step, total)
                  if method.learning_rates(s, planned) != method.learning_rates(s, total)), None)
    if moved is None:
        log.info("the run was planned for %d steps and now goes to %d; its learning rates do not depend on the "
                 "length, so the steps to come are as they would have been", planned, total)
    else:
        log.warning("the run was planned for %d steps and now goes to %d: its learning-rate schedule follows the "
                    "length, so the rates differ from the planned run's from step %d on", planned, total, moved)


def _rounds_left(step: int, total: int, every: int) -> int:
    """Held-out rounds after ``step``: one every ``every`` steps, and one at the run's last step."""
    if step >= total:
        return 0
    return total // every - step // every + (1 if total % every else 0)


def _say_held_out_cost(seconds: float, rounds_left: int) -> None:
    log.info("a held-out round takes %s; the %d round(s) still to come add about %s to the expected time",
             duration_text(seconds), rounds_left, duration_text(seconds * rounds_left))


def _earlier_held_out_set(run_json: Path) -> Any:
    """The held-out set's identity recorded by the run being resumed (None when it recorded none)."""
    try:
        return json.loads(run_json.read_text(encoding="utf-8")).get("held_out")
    except (OSError, ValueError, AttributeError):
        return None


def _held_out_row(method: Method, validate: Validation, step: int) -> dict[str, float] | None:
    """``{"step": step, **scores}``, logged; None, with a warning, when scoring fails: a curve is a report on
    the run, so its failure (an image too small for LPIPS, memory) must not end the training."""
    try:
        with evaluating(method):
            scores = {k: float(v) for k, v in validate(method).items()}
    except Exception as exc:  # any failure of the report, never of the training
        log.warning("step %d: held-out scores failed (%s: %s); training goes on", step, type(exc).__name__, exc)
        return None
    log.info("step %d held-out: %s", step, ", ".join(f"{k} {v:.4g}" for k, v in scores.items()))
    return {"step": step, **scores}


def write_sample_grid(method: Method, batch: dict[str, Any], path: Path) -> None:
    """Rows of grey | truth | output for a fixed batch."""
    from fewcolor.color.lab import grey_rgb_from_l, merge_l_ab
    from fewcolor.color.normalize import denormalize_ab, denormalize_l
    from fewcolor.io.grid import image_grid
    from fewcolor.io.image import write_rgb

    with evaluating(method):
        ab = method.predict_ab(batch["l"])
    l = denormalize_l(batch["l"].float().cpu())
    out = merge_l_ab(l, denormalize_ab(ab.float().cpu()))
    tiles = []
    for i in range(l.shape[0]):
        tiles += [grey_rgb_from_l(l[i]), batch["rgb"][i].float().cpu(), out[i]]
    write_rgb(path, image_grid(tiles, ncols=3))


def train(method: Method, dataset: Dataset, opts: TrainOptions, validate: Validation | None = None) -> TrainResult:
    """Train ``method`` on ``dataset`` (a map-style dataset of sample dicts) with ``opts``.

    ``validate``: held-out scores of the model (e.g. :class:`fewcolor.metrics.held_out.HeldOutScores`),
    computed every ``opts.validate_every`` steps and at the run's last step in eval mode, written to
    ``OUT/validation.csv`` (``val/`` scalars in TensorBoard) and logged: whether training still improves.
    Under torchrun only rank 0 scores (the others wait in the next step's all-reduce, so a round must stay
    well inside the process group's timeout); a round that fails is a warning, not the end of the run.

    On the CPU the process keeps the memory its steps free, for the rest of its life
    (:func:`fewcolor.train.allocator.retain_freed_memory`; ``FEWCOLOR_RETAIN_MEMORY=0`` turns it off).
    """
    from tqdm.contrib.logging import logging_redirect_tqdm

    _check_options(opts, validate)
    # log lines (held-out scores, the expected time, warnings) on their own lines above the progress bar
    with _stop_on_signals(opts.handle_signals) as stop, logging_redirect_tqdm(), contextlib.ExitStack() as held:
        resumed_from: list[tuple[Path, int]] = []  # the state a resumed run started from, and its step
        try:
            return _train(method, dataset, opts, stop, held, resumed_from, validate)
        except _SetupInterrupted as exc:
            path, step = resumed_from[0] if resumed_from else (None, 0)
            raise TrainingInterrupted(step, path, exc.signum) from None


def _train(method: Method, dataset: Dataset, opts: TrainOptions, stop: _StopRequests, held: contextlib.ExitStack,
           resumed_from: list[tuple[Path, int]], validate: Validation | None = None) -> TrainResult:
    out = Path(opts.out_dir)
    ckpt_dir = out / "checkpoints"
    last_ckpt = ckpt_dir / "last.safetensors"
    device = resolve_device(opts.device)
    if device.type == "cpu":  # the steps' buffers stay in the process instead of page-faulting back each step
        retain_freed_memory()
    dist_utils.init_from_env(device)
    rank, world = dist_utils.rank(), dist_utils.world_size()
    is_main = rank == 0
    if opts.resume and not has_training_state(last_ckpt):
        raise FileNotFoundError(f"--resume: no checkpoint at {last_ckpt}; start without --resume")
    busy = None
    if is_main:  # before looking at what the folder holds: no second process may resume what the first writes
        try:
            held.enter_context(run_folder_lock(out))
        except RunFolderBusy as exc:
            busy = exc
    if not dist_utils.all_true(busy is None):  # every rank stops, not only the first (the others would hang)
        raise busy or RunFolderBusy(f"{out} is in use by another training run (seen by the first process)")
    if not opts.resume and has_training_state(last_ckpt):
        raise FileExistsError(
            f"{out} already holds a run ({ckpt_dir}); pass --resume to continue it or choose a new -o"
        )
    if not opts.resume and (out / "model.safetensors").exists():  # checkpoints deleted: the model is still kept
        raise FileExistsError(f"{out} already holds the model.safetensors of an earlier run; choose a new -o (or "
                              "move it away)")
    n = len(dataset)
    if n == 0:
        raise ValueError("the training dataset is empty")
    total = _steps_for(opts, n, world)
    identity = run_identity(method, dataset, opts, world)
    resume_from = last_ckpt
    if opts.resume:  # before the set-up pass, which can take minutes
        try:
            resume_from = resumable_state(last_ckpt)
            stored = read_metadata(resume_from)
        except CheckpointError as exc:
            raise CheckpointError(f"--resume: {exc}; delete {ckpt_dir} to start over, or train into a new -o") from exc
        check_resume_identity(resume_from, stored.get("run", {"method": stored.get("method")}), identity,
                              config_defaults(method))
        resumed_from.append((resume_from, int(stored.get("step", 0))))
    precision = resolve_precision(opts.precision or "fp32", device, fixed_by=_precision_fixed_by(opts))
    if is_main:
        (log.warning if precision.fell_back else log.info)("precision: %s", precision.reason)
        threads = torch.get_num_threads()
        log.info("training %s on %s%s, %s, batch %d%s, %d steps%s", method.name, device,
                 f" ({threads} thread{'s' if threads > 1 else ''})" if device.type == "cpu" else "",
                 "bf16" if precision.bf16 else "fp32", opts.batch_size,
                 f" per process × {world}" if world > 1 else "", total,
                 f" (from {int(stored.get('step', 0))})" if opts.resume else "")
    extra = {"method": method.name, "run": identity}

    torch.manual_seed(opts.seed + rank)
    if opts.run_setup:
        method.setup(dataset)
    place_method(method, device)
    dist_utils.broadcast_module(method)  # identical start on every rank
    optimizers = method.configure_optimizers()
    if opts.lr_factor != 1.0:
        for o in optimizers.values():
            for group in o.param_groups:
                group["lr"] *= opts.lr_factor

    start_step = 0
    earlier_seconds = 0.0  # training time recorded by the runs this one resumes
    if opts.resume:
        try:
            meta = load_training_state(resume_from, method, optimizers)
        except CheckpointError as exc:
            raise CheckpointError(f"--resume: {exc}; delete {ckpt_dir} to start over, or train into a new -o") from exc
        start_step = int(meta["step"])
        earlier_seconds = float(meta.get("trained_seconds", 0.0))
        log.info("resumed %s at step %d (%.0f s of training steps so far)", resume_from, start_step, earlier_seconds)
        if is_main:
            _say_new_length(method, _planned_steps(out / "run.json"), total, start_step)
    t0: float | None = None  # when this run's steps began
    steps_ended: float | None = None  # and when they ended: the final saves are not training time

    def state_meta() -> dict[str, Any]:
        """The checkpoint's metadata: the run's identity and its training time over all runs so far."""
        spent = 0.0 if t0 is None else (steps_ended or time.time()) - t0
        return {**extra, "trained_seconds": round(earlier_seconds + spent, 1)}

    writer = None
    csv_log: _CsvLog | None = None
    val_log: _CsvLog | None = None
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        ckpt_dir.mkdir(exist_ok=True)
        run_info = {
            "method": method.name,
            "config": dataclasses.asdict(method.config),
            "options": {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(opts).items()},
            "dataset": {"type": type(dataset).__name__, "size": n, "root": str(getattr(dataset, "root", ""))},
            "steps": total,
            "world_size": world,
            "device": str(device),
            "precision": precision.name,  # what it trained in (options.precision: what was asked, None: nothing)
        }
        held_out_set = getattr(validate, "identity", None) if validate is not None and opts.validate_every else None
        if held_out_set is not None:
            run_info["held_out"] = held_out_set
        earlier_set = _earlier_held_out_set(out / "run.json") if opts.resume else None
        write_text_atomic(out / "run.json", json.dumps(run_info, indent=2, default=str))
        csv_log = _CsvLog(out / "log.csv", opts.resume)
        csv_log.truncate(start_step)
        if validate is not None and opts.validate_every:
            val_csv = out / "validation.csv"
            if val_csv.exists() and earlier_set is not None and earlier_set != held_out_set:
                # another held-out set: its scores are not comparable, so the curve starts again
                kept = val_csv.rename(out / f"validation-until-step{start_step}.csv")
                log.warning("the held-out set differs from the one this run was scored on; the earlier curve is "
                            "kept as %s and %s starts again", kept.name, val_csv.name)
            val_log = _CsvLog(val_csv, opts.resume)
            val_log.truncate(start_step)
        if opts.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(log_dir=str(out / "events"), purge_step=start_step if opts.resume else None)
        if resume_from != last_ckpt:
            last_ckpt.unlink(missing_ok=True)  # damaged (said when resuming): it must not become the fallback
        if not last_ckpt.exists():
            # The rollback target before the first periodic checkpoint (after resuming from the state before a
            # damaged last, a whole last again).
            save_keeping_previous(last_ckpt, method, optimizers, start_step, state_meta())
    dist_utils.barrier()
    stop.at_once = False  # a state is on the disk now: from here a signal waits for the end of the step, then saves

    sample_batch = None
    if is_main and opts.sample_every:
        sample_batch = to_device(collate_samples(dataset, list(range(min(opts.num_samples, n))), 0), device)

    train_step = TrainStep(method, optimizers, precision.bf16, device, opts.lr_factor)
    history: list[dict[str, float]] = []
    validation: list[dict[str, float]] = []
    bad_streak = rollbacks = skipped = 0
    t0 = timed_from = saved_at = time.time()
    first_round = True  # of held-out scores in this run: its cost is said once
    out_of_time = False

    def budget_spent() -> bool:
        """``max_seconds`` of training steps have passed on some rank (every rank asks, so all stop together)."""
        assert t0 is not None
        return opts.max_seconds is not None and not dist_utils.all_true(time.time() - t0 <= opts.max_seconds)
    method.train()
    if opts.keep_norm_statistics:
        keep_norm_statistics(method)
    bar = tqdm(
        total=total,
        initial=start_step,
        disable=not (opts.progress and is_main),
        desc=method.name,
        unit="step",
        dynamic_ncols=True,
    )
    step = start_step
    if not method.learns_in_steps:
        # a training-free method's steps would be empty: the run ends at once, saved as at a normal end
        log.info("%s learns nothing per step: the run ends at step %d", method.name, total)
        bar.update(total - step)
        step = total
    while step < total:
        idx = batch_indices(n, step, opts.batch_size, opts.seed, rank, world)
        try:
            batch = to_device(collate_samples(dataset, idx, epoch_of(n, step, opts.batch_size, world)), device)
        except Exception:
            # the data failed (a folder gone, a read error that is not the file's: the dataset replaces those):
            # keep the steps done since the last save before the error ends the run
            if is_main and step > start_step:
                save_keeping_previous(last_ckpt, method, optimizers, step, state_meta())
                log.warning("the training data failed at step %d; the state is saved in %s", step, last_ckpt)
            raise
        logs = train_step(batch, step, total)
        if logs is None:
            bad_streak += 1
            skipped += 1
            log.warning("step %d: non-finite loss or gradient; step skipped (%d in a row)", step, bad_streak)
            if bad_streak >= opts.max_bad_steps:
                dist_utils.barrier()
                meta = load_training_state(last_ckpt, method, optimizers, restore_rng=False)
                train_step.use_fast_kernels()
                rollbacks += 1
                bad_streak = 0
                log.warning(
                    "%d non-finite steps in a row: rolled back weights and optimisers to %s (step %d)",
                    opts.max_bad_steps,
                    last_ckpt,
                    meta["step"],
                )
            step += 1
            bar.update(1)
            if step < total and budget_spent():
                total, out_of_time = step, True
            continue
        bad_streak = 0
        dist_utils.broadcast_buffers(method)
        step += 1
        bar.update(1)
        if step == start_step + 1:
            timed_from = time.time()  # the first step warms caches and kernels: the estimate starts after it
        elif is_main and step == start_step + 1 + ESTIMATE_STEPS and step < total:
            _say_expected_time(step, total, (time.time() - timed_from) / ESTIMATE_STEPS, opts.max_seconds, t0)
        if step < total and budget_spent():
            total, out_of_time = step, True  # finish now, saving as at a normal end
        if logs:
            bar.set_postfix({k: f"{v:.3g}" for k, v in list(logs.items())[:4]}, refresh=False)
        if is_main:
            if step % opts.log_every == 0 or step == total:
                row = {"step": step, **logs}
                history.append(row)
                assert csv_log is not None
                csv_log.append(row)
                if writer is not None:
                    for k, v in logs.items():
                        writer.add_scalar(k, v, step)
            if opts.sample_every and sample_batch is not None and step % opts.sample_every == 0:
                write_sample_grid(method, sample_batch, out / "samples" / f"step_{step:06d}.png")
            by_steps = opts.checkpoint_every and step % opts.checkpoint_every == 0
            by_time = opts.checkpoint_minutes and time.time() - saved_at >= 60 * opts.checkpoint_minutes
            if (by_steps or by_time) and step != total:
                save_keeping_previous(last_ckpt, method, optimizers, step, state_meta())
                saved_at = time.time()
            if val_log is not None and validate is not None and (step % opts.validate_every == 0 or step == total):
                round_started = time.time()
                held_out = _held_out_row(method, validate, step)
                round_seconds = time.time() - round_started
                bar.unpause()  # the round's pause is not a slow step: the bar's rate and ETA leave it out
                if step <= start_step + 1 + ESTIMATE_STEPS:
                    timed_from += round_seconds  # nor does the expected time's rate
                if first_round:
                    first_round = False
                    _say_held_out_cost(round_seconds, _rounds_left(step, total, opts.validate_every))
                if held_out is not None:
                    validation.append(held_out)
                    val_log.append(held_out)
                    if writer is not None:
                        for k, v in held_out.items():
                            if k != "step":
                                writer.add_scalar(f"val/{k}", v, step)
        if step < total and not dist_utils.all_true(not stop):
            bar.close()
            if is_main:
                save_keeping_previous(last_ckpt, method, optimizers, step, state_meta())
                if writer is not None:
                    writer.close()
            dist_utils.barrier()
            raise TrainingInterrupted(step, last_ckpt, stop[0] if stop else signal.SIGTERM)
    steps_ended = time.time()
    bar.close()

    final = None
    if is_main:
        save_keeping_previous(last_ckpt, method, optimizers, step, state_meta())
        final = save_method(method, out / "model.safetensors", step=step)
        if opts.sample_every and sample_batch is not None:
            write_sample_grid(method, sample_batch, out / "samples" / "final.png")
        if writer is not None:
            writer.close()
    dist_utils.barrier()
    method.eval()
    wall = steps_ended - t0
    return TrainResult(step, final, history, wall, rollbacks, skipped, out_of_time, validation,
                       total_seconds=earlier_seconds + wall)
