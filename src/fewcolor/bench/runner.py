"""Run a benchmark protocol: train every method on the same data with the same budget, adapt each to
every episode's support with the same budget, colorize the queries, score them, and report.

Outputs (``OUT`` = ``results/<protocol>``)::

    OUT/<method>.json              aggregate over seeds (mean ± 95 % CI over all queries) + per seed
    OUT/<method>/seed<S>/          metrics.json and report.html of ``fewcolor evaluate``
    results/runs/<dataset>/<method>-<preset>-<budget>/seed<S>/  training runs, shared by the protocols on
                                   the same data (resumable: a finished run is reused)
    OUT/gallery.html               the same queries in a row per method
    docs/RESULTS.md                a dated markdown table appended, with the exact command
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from fewcolor.bench.protocols import SIZES, Budget, Protocol, protocol_episodes, protocol_train_paths
from fewcolor.bench.report import append_results, markdown_table, write_gallery
from fewcolor.bench.results import MethodResult, SeedResult, mean_of, summarize
from fewcolor.color.lab import grey_rgb_from_l, rgb_to_l
from fewcolor.io.atomic import write_text_atomic

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


def _build(method_name: str, preset: str | None, size: int, seed: int, extra: dict[str, Any] | None = None) -> Any:
    from fewcolor.methods.registry import build_method, get_method_class, with_run_seed

    cls = get_method_class(method_name)
    chosen = preset if preset in cls.presets else None
    if preset and chosen is None:
        log.warning("%s has no preset %r: using its defaults", method_name, preset)
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    overrides = {"image_size": size} if "image_size" in fields else {}
    overrides.update(extra or {})
    torch.manual_seed(seed)
    return build_method(method_name, chosen, with_run_seed(method_name, overrides, seed)), chosen


def _train_or_reuse(
    method: Any,
    protocol: Protocol,
    budget: Budget,
    fold: int | None,
    seed: int,
    run_dir: Path,
    smoke: bool,
    device: str | None,
) -> tuple[Any, int, float]:
    from fewcolor.methods.registry import load_method
    from fewcolor.train.loop import TrainingInterrupted, TrainOptions, train

    steps = max(1, budget.train_images // method.images_per_step(budget.batch_size))
    model_path = run_dir / "model.safetensors"
    if model_path.exists():
        reused = load_method(model_path)
        if getattr(reused, "checkpoint_step", -1) == steps:
            log.info("reusing finished run %s", run_dir)
            return reused, steps, 0.0
    dataset = _paths_dataset(protocol_train_paths(protocol, fold, smoke), protocol.image_size, seed, skip_grey=True,
                             transform=method.train_transform(protocol.image_size))
    resume = (run_dir / "checkpoints" / "last.safetensors").exists()
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
    try:
        result = train(method, dataset, opts)
    except TrainingInterrupted as exc:  # the benchmark resumes its runs by itself: no --resume to add
        raise exc.with_hint(RESUME_HINT) from exc
    return method, result.step, result.wall_seconds


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
            pred = colorizer.colorize(grey)
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
) -> MethodResult:
    """``label``: the method's name in the table (default ``method_name``); ``run_tag`` is appended to the
    training runs' folder name (a non-default batch size, ``init``'s digest); ``init``: a checkpoint every
    training run starts from where names and shapes match (``bench --init``). The result is labelled
    ``label+init`` when ``init`` initialised the method, else ``label`` (it shares no tensor with it)."""
    from fewcolor.metrics.evaluate import EvalConfig, evaluate_pairs

    label = label or method_name
    result = MethodResult(label, preset)
    for seed in seeds:
        per_image: list[dict[str, Any]] = []
        set_levels: list[dict[str, Any]] = []
        adaptation: list[str] = []
        train_steps, train_seconds, t_eval = 0, 0.0, 0.0
        for fold in protocol.folds:
            fold_tag = "" if fold is None else f"/fold{fold}"
            method, result.preset = _build(method_name, preset, protocol.image_size, seed, overrides)
            initialised = init is not None and _warm_start_or_say(method, init)
            result.method = label + ("+init" if initialised else "")
            # keyed by data and budget, not protocol: pokemon-frames and its shiny control share one run
            run_dir = (
                out_dir.parent
                / "runs"
                / (protocol.dataset + ("-smoke" if smoke else ""))
                / f"{method_name}-{result.preset or 'default'}-{budget.train_images}{run_tag}"
                / f"seed{seed}{fold_tag}"
            )
            if overrides:
                run_dir = run_dir.with_name(
                    run_dir.name + "-" + "-".join(f"{k}{v}" for k, v in sorted(overrides.items()))
                )
            method, train_steps, secs = _train_or_reuse(method, protocol, budget, fold, seed, run_dir, smoke, device)
            train_seconds += secs
            t0 = time.time()
            episodes = _budget_episodes(protocol, budget, fold, seed, smoke)
            pairs = _query_pairs(method, episodes, protocol, budget, seed, device, adaptation, result.gallery)
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
                },
            )
            t_eval += time.time() - t0
            per_image += metrics["per_image"]
            set_levels.append(metrics["set"])
        set_level = {k: mean_of([s.get(k) for s in set_levels]) for k in ("fid", "kid_mean")}
        result.seeds.append(
            SeedResult(
                seed, per_image, set_level, ",".join(sorted(set(adaptation))), train_steps, train_seconds, t_eval
            )
        )
    return result


def _warm_start_or_say(method: Any, init: Path) -> bool:
    """``bench --init``: warm-start ``method``; a method that shares no tensor with it trains from scratch
    (said in the log, and False returned), so one command can list methods of several architectures."""
    from fewcolor.io.checkpoint import CheckpointError
    from fewcolor.io.warm_start import warm_start

    try:
        warm_start(method, init)
    except CheckpointError as exc:
        log.warning("%s: not initialised from %s, it shares no tensor with it (%s)", method.name, init, exc)
        return False
    return True


def plan_line(protocol: Protocol, methods: Sequence[str], budget: Budget, seeds: Sequence[int]) -> str:
    """What a benchmark is about to do, said up front: how many training runs of what budget, how much
    evaluation, and that finished runs are reused (the time: each run's progress bar gives its ETA)."""
    folds = len(protocol.folds)
    runs = len(methods) * len(seeds) * folds
    per = f"{budget.max_queries} queries" if budget.max_queries else "all queries"
    episodes = f"{budget.max_episodes} episodes" if budget.max_episodes else "every episode"
    return (f"{protocol.name}: {len(methods)} method(s) × {len(seeds)} seed(s)"
            + (f" × {folds} folds" if folds > 1 else "")
            + f" = {runs} training run(s) of {budget.train_images:,} image-gradients each (finished runs are reused, "
            f"interrupted ones resume; each shows its ETA), then {episodes} × {per}, "
            f"{budget.adapt_steps} adaptation steps each, per run")


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
) -> dict[str, Any]:
    """Run ``methods`` on ``protocol``; returns the summaries and the paths written.

    ``overrides`` maps a method name to config overrides for it (``--set METHOD.KEY=VALUE``). ``init``: every
    training run starts from this checkpoint where tensors match (the labels of the methods it initialised get
    ``+init``; every run folder gets ``-init`` and the first 8 hex digits of the checkpoint's SHA-256).
    """
    from fewcolor.data.recipes import is_prepared, prepare

    smoke = size == "smoke" and protocol.folder is None  # a user's folder has no smoke subset
    if protocol.folder is None and not is_prepared(protocol.dataset, smoke=smoke):
        log.info("preparing dataset %s%s", protocol.dataset, " (smoke)" if smoke else "")
        prepare(protocol.dataset, smoke=smoke)
    out_dir = Path(out_root) / (protocol.name + ("-smoke" if smoke else ""))
    out_dir.mkdir(parents=True, exist_ok=True)
    log.info("%s", plan_line(protocol, methods, budget, seeds))
    t0 = time.time()
    results, summaries, files = [], [], []
    # the batch size changes what a run is (more, smaller updates): runs with another one are kept apart
    run_tag = "" if budget.batch_size == SIZES[size].batch_size else f"-b{budget.batch_size}"
    if init is not None:
        run_tag += "-init" + hashlib.sha256(Path(init).read_bytes()).hexdigest()[:8]
    for label in methods:
        # "cgan@metalgan-cpu": this method with its own preset (e.g. the same cGAN as MetalGAN's)
        name, _, own_preset = label.partition("@")
        res = run_method(
            name, protocol, budget, own_preset or preset, seeds, out_dir, smoke, device, fid,
            (overrides or {}).get(name), label, run_tag, init,
        )
        results.append(res)
        summary = summarize(res)
        summary.update({"protocol": protocol.name, "size": size, "budget": dataclasses.asdict(budget)})
        summaries.append(summary)
        write_text_atomic(out_dir / f"{res.method}.json", json.dumps(summary, indent=2))
        files.append(out_dir / f"{res.method}.json")
    gallery = write_gallery(out_dir / "gallery.html", protocol, results)
    wall = time.time() - t0
    table = markdown_table(protocol, budget, summaries, command, wall, size)
    if results_md is not None:
        append_results(results_md, table, gallery, out_dir.name, protocol.name, methods)
    return {"summaries": summaries, "gallery": gallery, "files": files, "table": table, "wall_seconds": wall}
