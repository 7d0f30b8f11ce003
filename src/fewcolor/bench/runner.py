"""Run a benchmark protocol: train every method on the same data with the same budget, adapt each to
every episode's support with the same budget, colorize the queries, score them, and report.

Outputs (``OUT`` = ``results/<protocol>``)::

    OUT/<method>.json              aggregate over seeds (mean ± 95 % CI over all queries) + per seed, and the
                                   identity of the runs it came from (:func:`results_identity`): a rerun
                                   with another one is refused unless ``overwrite``
    OUT/<method>/seed<S>/          metrics.json and report.html of ``fewcolor evaluate``
    results/runs/<dataset>/<method>-<preset>-<budget>/seed<S>/  training runs, shared by the protocols on
                                   the same data (resumable: a finished run is reused when its recorded
                                   settings are this benchmark's, refused in one line when not)
    OUT/gallery.html               the same queries in a row per method
    docs/RESULTS.md                a dated markdown table appended, with the exact command
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import numbers
import os
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from fewcolor.bench.protocols import SIZES, Budget, Protocol, protocol_episodes, protocol_train_paths
from fewcolor.bench.report import append_results, markdown_table, write_gallery
from fewcolor.bench.results import MethodResult, SeedResult, mean_of, smallest_fid_set, summarize
from fewcolor.color.lab import grey_rgb_from_l, rgb_to_l
from fewcolor.io.atomic import write_text_atomic
from fewcolor.train.last_state import LAST_NAME, has_training_state, previous_of

log = logging.getLogger(__name__)

#: what an interrupted benchmark tells the user: its training runs resume from their saved state on a rerun
RESUME_HINT = "run the same command again: the benchmark resumes interrupted runs from their saved state"


def eval_image(path: Path, size: int) -> torch.Tensor:
    """The protocol's view of an image: shorter side to ``size``, centre crop ``size``×``size``."""
    from fewcolor.data.transforms import eval_transform
    from fewcolor.io.image import read_rgb

    return eval_transform(size)(read_rgb(path))


def _paths_dataset(paths: Sequence[Path], size: int, seed: int, skip_grey: bool, transform: Any = None) -> Any:
    """A training-transform dataset over absolute paths (training splits and support sets); ``transform``
    defaults to ``train_transform(size)`` (a method's own: ``method.train_transform(size)``).

    ``skip_grey`` drops grey-looking images from a training split; a support set keeps them (the
    protocol chose them: a black-and-white Pokémon's support is its real colours).
    """
    import os

    from fewcolor.data.folder import ImageFolderDataset
    from fewcolor.data.transforms import train_transform

    root = Path(os.path.commonpath([str(p.parent) for p in paths]))
    return ImageFolderDataset(
        root, paths=[str(p) for p in paths], transform=transform or train_transform(size), seed=seed, cache=True,
        skip_grey=skip_grey,
    )


def _chosen_preset(method_name: str, preset: str | None) -> str | None:
    """``preset`` when the method has it, else None (the method's defaults)."""
    from fewcolor.methods.registry import get_method_class

    return preset if preset in get_method_class(method_name).presets else None


def _build(method_name: str, preset: str | None, size: int, seed: int, extra: dict[str, Any] | None = None) -> Any:
    from fewcolor.methods.registry import build_method, get_method_class, with_run_seed

    cls = get_method_class(method_name)
    chosen = _chosen_preset(method_name, preset)
    if preset and chosen is None:
        log.warning("%s has no preset %r: using its defaults", method_name, preset)
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    overrides = {"image_size": size} if "image_size" in fields else {}
    overrides.update(extra or {})
    torch.manual_seed(seed)
    return build_method(method_name, chosen, with_run_seed(method_name, overrides, seed)), chosen


@dataclass
class TrainedRun:
    """A benchmark's training run, trained now or reused."""

    method: Any
    steps: int
    session_seconds: float  #: training time this command spent on it (0 for a reused run)
    #: seconds per step over all of the run's steps, as measured (None: the run recorded no training time)
    seconds_per_step: float | None
    reused: bool


def _run_dir(
    out_dir: Path,
    protocol: Protocol,
    smoke: bool,
    method_name: str,
    chosen_preset: str | None,
    budget: Budget,
    run_tag: str,
    overrides: dict[str, Any] | None,
    seed: int,
    fold: int | None,
) -> Path:
    """A training run's folder: keyed by data and budget, not protocol (pokemon-frames and its shiny control
    share one run). The built-in protocols' runs must keep these paths: benchmarks in progress reuse them."""
    fold_tag = "" if fold is None else f"/fold{fold}"
    run_dir = (
        out_dir.parent
        / "runs"
        / (protocol.dataset + ("-smoke" if smoke else ""))
        / f"{method_name}-{chosen_preset or 'default'}-{budget.train_images}{run_tag}"
        / f"seed{seed}{fold_tag}"
    )
    if overrides:
        run_dir = run_dir.with_name(run_dir.name + "-" + "-".join(f"{k}{v}" for k, v in sorted(overrides.items())))
    return run_dir


def _recorded_state(run_dir: Path) -> dict[str, Any]:
    """What the run in ``run_dir`` recorded: its training state's metadata (identity, step, training time),
    else its final model's (method, config, step); empty when there is none that reads back (training
    then says what is wrong with it)."""
    from fewcolor.io.checkpoint import CheckpointError, read_metadata

    last = run_dir / "checkpoints" / LAST_NAME
    for path in (last, previous_of(last), run_dir / "model.safetensors"):
        if path.exists():
            try:
                return read_metadata(path)
            except (CheckpointError, OSError):
                continue
    return {}


def _recorded_identity(meta: dict[str, Any]) -> dict[str, Any] | None:
    """The run identity in a checkpoint's metadata (:func:`fewcolor.train.loop.run_identity`), or the
    method and config of a final model; None for a checkpoint that records neither."""
    if isinstance(meta.get("run"), dict):
        return dict(meta["run"])
    if isinstance(meta.get("config"), dict):
        return {"method": meta.get("method"), "config": meta["config"]}
    return None


def _steps_still_to_train(run_dir: Path, steps: int) -> int:
    """How many of a run's ``steps`` its folder does not hold yet (0 for a finished run)."""
    done = _recorded_state(run_dir).get("step", 0)
    return max(0, steps - done) if isinstance(done, int) else steps


def _train_or_reuse(
    method: Any,
    protocol: Protocol,
    budget: Budget,
    fold: int | None,
    seed: int,
    run_dir: Path,
    smoke: bool,
    device: str | None,
) -> TrainedRun:
    from fewcolor.methods.registry import load_method
    from fewcolor.train.loop import (
        TrainingInterrupted,
        TrainOptions,
        config_defaults,
        identity_differences,
        run_identity,
        train,
    )

    steps = max(1, budget.train_images // method.images_per_step(budget.batch_size))
    transform = method.train_transform(protocol.image_size)
    resume = has_training_state(run_dir / "checkpoints" / LAST_NAME)
    opts = TrainOptions(
        out_dir=run_dir,
        steps=steps,
        batch_size=budget.batch_size,
        seed=seed,
        checkpoint_every=max(50, steps // 10),
        sample_every=max(50, steps // 4),
        resume=resume,
        device=device,
    )
    recorded = _recorded_state(run_dir)
    stored = _recorded_identity(recorded)
    if stored is not None:
        # the folder name holds what bench varies, but not what a run was trained with (a model trained at
        # another --image-size before sizes named the folder, a preset changed since): compare what it recorded.
        # run_identity reads only the dataset's transform: no need to open the training images for it
        current = run_identity(method, SimpleNamespace(transform=transform), opts, world=1)
        differences = identity_differences(stored, current, config_defaults(method))
        if differences:
            # refused, not trained elsewhere: a second copy would leave two runs for one name, and hours of
            # training should not start without the user choosing which one counts
            raise ValueError(
                f"{run_dir} holds a training run with other settings ({'; '.join(differences[:6])}); delete that "
                "folder to train it with this command's settings, or give another -o"
            )
    model_path = run_dir / "model.safetensors"
    if model_path.exists():
        reused = load_method(model_path)
        if getattr(reused, "checkpoint_step", -1) == steps:
            log.info("reusing finished run %s", run_dir)
            trained_seconds = recorded.get("trained_seconds")
            per_step = float(trained_seconds) / steps if isinstance(trained_seconds, (int, float)) else None
            return TrainedRun(reused, steps, 0.0, per_step, reused=True)
    dataset = _paths_dataset(protocol_train_paths(protocol, fold, smoke), protocol.image_size, seed, skip_grey=True,
                             transform=transform)
    try:
        result = train(method, dataset, opts)
    except TrainingInterrupted as exc:  # the benchmark resumes its runs by itself: no --resume to add
        raise exc.with_hint(RESUME_HINT) from exc
    # total_seconds covers the steps of earlier, interrupted sessions too: the rate of the whole run
    per_step = result.total_seconds / result.step if result.step else None
    return TrainedRun(method, result.step, result.wall_seconds, per_step, reused=False)


def time_left_line(
    protocol_name: str,
    label: str,
    where: str,
    run: TrainedRun,
    runs_left: int,
    steps_left: int,
    later_methods: Sequence[str],
) -> str:
    """What a finished (or reused) training run measured, and the training time the benchmark still needs:
    ``runs_left`` more runs of ``label`` to train, ``steps_left`` steps between them, at its measured rate; the
    methods after it have no rate yet, so their time is unknown (never a guess)."""
    from fewcolor.train.loop import duration_text

    if run.seconds_per_step is None:
        measured = f"{label} {where}: {'reused; its' if run.reused else 'its'} checkpoint records no training time"
    else:
        when = ", when it was trained" if run.reused else ""
        measured = (f"{label} {where}: {run.seconds_per_step:.3g} s per training step (measured over its "
                    f"{run.steps:,} steps{when})")
    left = []
    if runs_left and steps_left:  # steps_left 0: its other runs are trained already, and will be reused
        if run.seconds_per_step is None:
            left.append(f"{label} {steps_left:,} steps in {runs_left} more run(s), time unknown")
        else:
            left.append(f"{label} about {duration_text(steps_left * run.seconds_per_step)} ({steps_left:,} steps in "
                        f"{runs_left} more run(s))")
    if later_methods:
        whose = "its" if len(later_methods) == 1 else "each one's"
        left.append(f"{', '.join(later_methods)}: unknown until {whose} first run")
    if not left:
        return f"{measured}; no training left in {protocol_name}"
    return f"{measured}; training left in {protocol_name}: {'; '.join(left)}; evaluation comes on top"


def _budget_episodes(protocol: Protocol, budget: Budget, fold: int | None, seed: int, smoke: bool) -> list[Any]:
    """The episodes a benchmark scores: the protocol's, spread evenly down to ``budget.max_episodes``."""
    eps = protocol_episodes(protocol, fold, seed, smoke)
    if budget.max_episodes is not None:
        # an even spread over the episode list, not its alphabetical head
        stride = max(1, len(eps) // budget.max_episodes)
        eps = eps[::stride][: budget.max_episodes]
    return eps


def _query_count(episodes: Sequence[Any], budget: Budget) -> int:
    """How many queries :func:`_query_pairs` yields for ``episodes`` (the evaluation bar's total: its ETA)."""
    cap = budget.max_queries
    return sum(len(ep.queries) if cap is None else min(len(ep.queries), cap) for ep in episodes)


def _query_pairs(
    method: Any,
    eps: Sequence[Any],
    protocol: Protocol,
    budget: Budget,
    seed: int,
    device: str | None,
    adaptation: list[str],
    gallery: list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor]],
    options: dict[str, Any],
) -> Iterator[tuple[str, torch.Tensor, torch.Tensor]]:
    from fewcolor.pipeline import Colorizer
    from fewcolor.train.adapt import adapt

    # the gallery shows a few queries of every episode (as many as fit), not the first episode only
    per_episode = max(1, -(-budget.gallery_queries // max(1, len(eps))))
    for ep in eps:
        shown = 0
        support = _paths_dataset(ep.support, protocol.image_size, seed, skip_grey=False)
        adapted, how = adapt(
            method, support, budget.adapt_steps, batch_size=budget.batch_size, seed=seed, device=device
        )
        adaptation.append(how)
        colorizer = Colorizer(adapted, device=device, size=protocol.image_size)
        pairs = list(zip(ep.queries, ep.truth, strict=True))
        if budget.max_queries is not None:
            pairs = pairs[: budget.max_queries]
        for query, truth_path in pairs:
            truth = eval_image(truth_path, protocol.image_size)
            # the query's own colours are the truth unless the episode says otherwise: read it once
            seen = truth if query == truth_path else eval_image(query, protocol.image_size)
            grey = grey_rgb_from_l(rgb_to_l(seen[None]))[0]
            pred = colorizer.colorize(grey, **options)
            name = f"{ep.name}/{query.name}"
            if len(gallery) < budget.gallery_queries and seed == 0 and shown < per_episode:
                gallery.append((name, grey, truth, pred))
                shown += 1
            yield name, pred, truth


def run_method(
    method_name: str,
    protocol: Protocol,
    budget: Budget,
    preset: str | None,
    seeds: Sequence[int],
    out_dir: Path,
    smoke: bool,
    device: str | None,
    fid: bool,
    overrides: dict[str, Any] | None = None,
    label: str | None = None,
    run_tag: str = "",
    init: Path | None = None,
    identity: dict[str, Any] | None = None,
    later_methods: Sequence[str] = (),
    options: dict[str, Any] | None = None,
) -> MethodResult:
    """``label``: the method's name in the table (default ``method_name``); ``run_tag`` is appended to the
    training runs' folder name (a non-default batch size, ``init``'s digest); ``init``: a checkpoint every
    training run starts from where names and shapes match (``bench --init``). The result is labelled
    ``label+init`` when ``init`` initialised the method, else ``label`` (it shares no tensor with it); then
    :func:`options_label` of ``options``.
    ``identity`` (:func:`results_identity`) is recorded in every metrics.json; ``later_methods``: the labels
    the benchmark runs after this one (the time-left line after each training run names them); ``options``:
    inference options every query is coloured with (checked on the trained method before the first episode)."""
    from fewcolor.metrics.evaluate import EvalConfig, evaluate_pairs

    label = label or method_name
    result = MethodResult(label, preset)
    chosen_preset = _chosen_preset(method_name, preset)
    runs = [(seed, fold) for seed in seeds for fold in protocol.folds]
    for seed in seeds:
        per_image: list[dict[str, Any]] = []
        set_levels: list[dict[str, Any]] = []
        adaptation: list[str] = []
        train_steps, train_seconds, t_eval = 0, 0.0, 0.0
        for fold in protocol.folds:
            fold_tag = "" if fold is None else f"/fold{fold}"
            method, result.preset = _build(method_name, preset, protocol.image_size, seed, overrides)
            initialised = init is not None and _warm_start_or_say(method, init)
            result.method = label + ("+init" if initialised else "") + options_label(options)
            run_dir = _run_dir(out_dir, protocol, smoke, method_name, chosen_preset, budget, run_tag, overrides, seed,
                               fold)
            trained = _train_or_reuse(method, protocol, budget, fold, seed, run_dir, smoke, device)
            method, train_steps = trained.method, trained.steps
            train_seconds += trained.session_seconds
            # the later runs of this method, less what their folders hold already (finished runs are reused)
            steps_to_train = [
                _steps_still_to_train(
                    _run_dir(out_dir, protocol, smoke, method_name, chosen_preset, budget, run_tag, overrides, s, f),
                    trained.steps,
                )
                for s, f in runs[runs.index((seed, fold)) + 1:]
            ]
            log.info("%s", time_left_line(protocol.name, result.method, f"seed{seed}{fold_tag}", trained,
                                          sum(1 for n in steps_to_train if n), sum(steps_to_train), later_methods))
            t0 = time.time()
            method.check_options(options or {})  # one error now, not one per query
            episodes = _budget_episodes(protocol, budget, fold, seed, smoke)
            pairs = _query_pairs(method, episodes, protocol, budget, seed, device, adaptation, result.gallery,
                                 options or {})
            metrics = evaluate_pairs(
                pairs,
                out_dir / result.method / f"seed{seed}{fold_tag}",
                EvalConfig(size=protocol.image_size, fid=fid, device=device, seed=seed),
                total=_query_count(episodes, budget),
                extra_protocol={
                    "benchmark": protocol.name,
                    "fold": fold,
                    "seed": seed,
                    "budget": dataclasses.asdict(budget),
                    **({"identity": identity} if identity is not None else {}),
                },
            )
            t_eval += time.time() - t0
            per_image += metrics["per_image"]
            set_levels.append(metrics["set"])
        set_level = {k: mean_of([s.get(k) for s in set_levels]) for k in ("fid", "kid_mean")}
        smallest = smallest_fid_set(set_levels)
        if smallest is not None:  # the smallest set any fold's FID was computed on (the table flags small ones)
            set_level["set_images"] = smallest
        result.seeds.append(
            SeedResult(
                seed, per_image, set_level, ",".join(sorted(set(adaptation))), train_steps, train_seconds, t_eval
            )
        )
    return result


def _warm_start_or_say(method: Any, init: Path, say: bool = True) -> bool:
    """``bench --init``: warm-start ``method``; a method that shares no tensor with it trains from scratch
    (said in the log unless ``say`` is false, and False returned), so one command can list methods of several
    architectures."""
    from fewcolor.io.checkpoint import CheckpointError
    from fewcolor.io.warm_start import warm_start

    try:
        warm_start(method, init)
    except CheckpointError as exc:
        if say:
                log.warning("%s: not initialised from %s, it shares no tensor with it (%s)", method.name, init, exc)
        return False
    return True


def plan_line(protocol: Protocol, methods: Sequence[str], budget: Budget, seeds: Sequence[int]) -> str:
    """What a benchmark is about to do, said up front: how many training runs of what budget, how much
    evaluation, and that finished runs are reused (the time is not known before a method's first run)."""
    folds = len(protocol.folds)
    runs = len(methods) * len(seeds) * folds
    per = f"{budget.max_queries} queries" if budget.max_queries else "all queries"
    episodes = f"{budget.max_episodes} episodes" if budget.max_episodes else "every episode"
    return (f"{protocol.name}: {len(methods)} method(s) × {len(seeds)} seed(s)"
            + (f" × {folds} folds" if folds > 1 else "")
            + f" = {runs} training run(s) of {budget.train_images:,} image-gradients each (finished runs are reused, "
            f"interrupted ones resume; each shows its ETA, and after each the training time left is said from "
            f"the rates measured so far), then {episodes} × {per}, {budget.adapt_steps} adaptation steps each, per run")


def _out_dir(protocol: Protocol, size: str, out_root: Path) -> Path:
    """``OUT``: the protocol's results folder (a user's folder has no smoke subset, so no ``-smoke``)."""
    return Path(out_root) / (protocol.name + ("-smoke" if _is_smoke(protocol, size) else ""))


def _is_smoke(protocol: Protocol, size: str) -> bool:
    return size == "smoke" and protocol.folder is None  # a user's folder has no smoke subset


def _batch_tag(budget: Budget, size: str) -> str:
    # the batch size changes what a run is (more, smaller updates): runs with another one are kept apart
    return "" if budget.batch_size == SIZES[size].batch_size else f"-b{budget.batch_size}"


def _init_digest(init: Path | None) -> str | None:
    """The first 8 hex digits of ``init``'s SHA-256 (None without ``init``): what names its runs."""
    return None if init is None else hashlib.sha256(Path(init).read_bytes()).hexdigest()[:8]


def results_identity(
    protocol: Protocol,
    budget: Budget,
    chosen_preset: str | None,
    overrides: dict[str, Any] | None,
    batch_tag: str,
    init_digest: str | None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What a method's results on ``protocol`` came from (recorded in its results JSON): two benchmarks with the
    same identity train and score the same runs, so the second may replace the first's files (JSON-normalised).
    Inference ``options`` are recorded only when given, so results written before they existed keep their
    identity."""
    identity = {
        "budget": dataclasses.asdict(budget),
        "preset": chosen_preset,
        "image_size": protocol.image_size,
        "overrides": dict(sorted((overrides or {}).items())),
        "batch_tag": batch_tag,
        "init": init_digest,
    }
    given = {k: _option_tag(v) for k, v in sorted((options or {}).items()) if v is not None}
    if given:
        identity["options"] = given
    return json.loads(json.dumps(identity, default=str))


def _flat_differences(before: dict[str, Any], now: dict[str, Any], prefix: str = "") -> list[str]:
    """``"budget.train_images 16 -> 32"`` per leaf that differs between two JSON dicts."""
    differences = []
    for key in sorted(set(before) | set(now)):
        old, new = before.get(key), now.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            differences += _flat_differences(old, new, f"{prefix}{key}.")
        elif old != new:
            differences.append(f"{prefix}{key} {old!r} -> {new!r}")
    return differences


#: characters an option's value may keep in a results file name (others: the value goes by a digest)
_NAME_SAFE = re.compile(r"[A-Za-z0-9._,#+-]{1,40}")


def _option_tag(value: Any) -> str:
    """An inference option's value as a results name and identity show it: a number or short plain text as
    itself, a file (e.g. a fallback checkpoint) by its stem and the first 8 hex digits of its SHA-256 (two
    ``model.safetensors`` stay apart; ``./m`` and ``m`` are one), other text by its digest."""
    if isinstance(value, bool) or not isinstance(value, (str, os.PathLike, numbers.Real)):
        raise TypeError(f"an inference option's value must be a number or text, got a {type(value).__name__}")
    if isinstance(value, numbers.Real):
        return str(value)
    if os.path.isfile(value):
        return f"{Path(value).stem}-{hashlib.sha256(Path(value).read_bytes()).hexdigest()[:8]}"
    text = os.fspath(value)
    return text if _NAME_SAFE.fullmatch(text) else "sha" + hashlib.sha256(text.encode()).hexdigest()[:8]


def options_label(options: dict[str, Any] | None) -> str:
    """What inference options add to a method's results name, e.g. ``[temperature=1.0]`` (values as
    :func:`_option_tag` shows them; ``None``: not given), so results with and without them sit side by side in
    one results folder and share the training."""
    given = {k: v for k, v in (options or {}).items() if v is not None}
    if not given:
        return ""
    return "[" + ",".join(f"{k}={_option_tag(v)}" for k, v in sorted(given.items())) + "]"


def _result_label(label: str, method_name: str, preset: str | None, size: int, overrides: dict[str, Any] | None,
                  init: Path | None, options: dict[str, Any] | None = None) -> str:
    """The name a method's results get: ``label+init`` when ``init`` initialises it (which takes building it),
    else ``label``; then :func:`options_label`."""
    if init is None:
        return label + options_label(options)
    method, _ = _build(method_name, preset, size, 0, overrides)
    return (label + "+init" if _warm_start_or_say(method, init, say=False) else label) + options_label(options)


def check_results_free(
    protocol: Protocol,
    methods: Sequence[str],
    budget: Budget,
    size: str,
    preset: str | None = "cpu",
    out_root: Path = Path("results"),
    overrides: dict[str, dict[str, Any]] | None = None,
    init: Path | None = None,
    options: dict[str, dict[str, Any]] | None = None,
) -> None:
    """Refuse (``FileExistsError``, one line naming the file and the fix) when a results JSON that
    :func:`run_benchmark` would write already holds the results of runs with another
    :func:`results_identity` (another budget, ``--set``, preset, size, batch size, ``--init`` or inference
    options): checked before
    any training. The same identity (the same command again: its runs are reused) and a file written before
    identities were recorded may be replaced."""
    out_dir = _out_dir(protocol, size, out_root)
    batch_tag, init_digest = _batch_tag(budget, size), _init_digest(init)
    for label in methods:
        name, _, own_preset = label.partition("@")
        method_preset = own_preset or preset
        method_overrides = (overrides or {}).get(name)
        method_options = (options or {}).get(name)
        result_label = _result_label(label, name, method_preset, protocol.image_size, method_overrides, init,
                                     method_options)
        path = out_dir / f"{result_label}.json"
        if not path.exists():
            continue
        try:
            recorded = json.loads(path.read_text(encoding="utf-8")).get("identity")
        except (OSError, ValueError, AttributeError) as exc:
            log.warning("%s cannot be read (%s): it will be replaced", path, exc)
            continue
        if not isinstance(recorded, dict):
            log.info("%s records no identity (written before results recorded one): it will be replaced", path)
            continue
        current = results_identity(protocol, budget, _chosen_preset(name, method_preset), method_overrides,
                                   batch_tag, init_digest, method_options)
        differences = _flat_differences(recorded, current)
        if differences:
            raise FileExistsError(
                f"{path} holds the results of other runs ({'; '.join(differences[:4])}); give --overwrite to "
                "replace them, or another -o to keep both"
            )


def run_benchmark(
    protocol: Protocol,
    methods: Sequence[str],
    budget: Budget,
    size: str,
    preset: str | None = "cpu",
    seeds: Sequence[int] = (0,),
    out_root: Path = Path("results"),
    results_md: Path | None = Path("docs/RESULTS.md"),
    command: str = "",
    device: str | None = None,
    fid: bool = True,
    overrides: dict[str, dict[str, Any]] | None = None,
    init: Path | None = None,
    overwrite: bool = False,
    options: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run ``methods`` on ``protocol``; returns the summaries and the paths written.

    ``overrides`` maps a method name to config overrides for it (``--set METHOD.KEY=VALUE``). ``init``: every
    training run starts from this checkpoint where tensors match (the labels of the methods it initialised get
    ``+init``; every run folder gets ``-init`` and the first 8 hex digits of the checkpoint's SHA-256).
    ``overwrite``: replace results of runs with another identity (else refused up front,
    :func:`check_results_free`). ``options`` maps a method name to the inference options its queries are
    coloured with (training is not affected: the runs without them are reused).
    """
    from fewcolor.data.recipes import is_prepared, prepare

    names = [label.partition("@")[0] for label in methods]
    strays = sorted(set(options or {}) - set(names))
    if strays:  # options keyed by a NAME@PRESET label, or by a method not benchmarked: never silently unused
        raise ValueError(f"options for {', '.join(strays)}: not a method name of {', '.join(names)}")
    if not overwrite:
        check_results_free(protocol, methods, budget, size, preset, out_root, overrides, init, options)
    smoke = _is_smoke(protocol, size)
    if protocol.folder is None and not is_prepared(protocol.dataset, smoke=smoke):
        log.info("preparing dataset %s%s", protocol.dataset, " (smoke)" if smoke else "")
        prepare(protocol.dataset, smoke=smoke)
    out_dir = _out_dir(protocol, size, out_root)
    out_dir.mkdir(parents=True, exist_ok=True)
    log.info("%s", plan_line(protocol, methods, budget, seeds))
    t0 = time.time()
    results, summaries, files = [], [], []
    batch_tag, init_digest = _batch_tag(budget, size), _init_digest(init)
    run_tag = batch_tag + ("" if init_digest is None else f"-init{init_digest}")
    for index, label in enumerate(methods):
        # "cgan@metalgan-cpu": this method with its own preset (e.g. the same cGAN as MetalGAN's)
        name, _, own_preset = label.partition("@")
        method_preset = own_preset or preset
        method_overrides = (overrides or {}).get(name)
        method_options = (options or {}).get(name)
        identity = results_identity(protocol, budget, _chosen_preset(name, method_preset), method_overrides,
                                    batch_tag, init_digest, method_options)
        res = run_method(
            name, protocol, budget, method_preset, seeds, out_dir, smoke, device, fid,
            method_overrides, label, run_tag, init, identity, methods[index + 1:], method_options,
        )
        results.append(res)
        summary = summarize(res)
        summary.update({"protocol": protocol.name, "size": size, "budget": dataclasses.asdict(budget),
                        "identity": identity})
        summaries.append(summary)
        write_text_atomic(out_dir / f"{res.method}.json", json.dumps(summary, indent=2))
        files.append(out_dir / f"{res.method}.json")
    gallery = write_gallery(out_dir / "gallery.html", protocol, results)
    wall = time.time() - t0
    table = markdown_table(protocol, budget, summaries, command, wall, size)
    if results_md is not None:
        append_results(results_md, table, gallery, out_dir.name, protocol.name, [r.method for r in results])
    return {"summaries": summaries, "gallery": gallery, "files": files, "table": table, "wall_seconds": wall}
