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
import datetime as _dt
import json
import logging
import platform
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from fewcolor.bench.protocols import SIZES, Budget, Protocol
from fewcolor.color.lab import grey_rgb_from_l, rgb_to_l
from fewcolor.io.atomic import write_text_atomic
from fewcolor.metrics.stats import mean_ci95

log = logging.getLogger(__name__)

#: metrics shown in the markdown table: (key in evaluate's aggregate / set level, column title, better)
TABLE_METRICS = (
    ("lpips", "LPIPS↓"),
    ("fid", "FID↓"),
    ("psnr", "PSNR↑"),
    ("ssim", "SSIM↑"),
    ("delta_e2000", "ΔE00↓"),
    ("cf_hs_pred", "CF"),
    ("delta_cf_hs", "ΔCF↓"),
)


@dataclass
class SeedResult:
    seed: int
    per_image: list[dict[str, Any]]
    set_level: dict[str, Any]
    adaptation: str
    train_steps: int
    train_seconds: float
    eval_seconds: float


@dataclass
class MethodResult:
    method: str  #: the label in the table: the method's name, or ``name@preset`` for a per-method preset
    preset: str | None
    seeds: list[SeedResult] = field(default_factory=list)
    #: (query name, grey input, truth, prediction) of the first queries of seed 0
    gallery: list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor]] = field(default_factory=list)


def eval_image(path: Path, size: int) -> torch.Tensor:
    """The protocol's view of an image: shorter side to ``size``, centre crop ``size``×``size``."""
    from fewcolor.data.transforms import eval_transform
    from fewcolor.io.image import read_rgb

    return eval_transform(size)(read_rgb(path))


def _paths_dataset(paths: Sequence[Path], size: int, seed: int, skip_grey: bool) -> Any:
    """A training-transform dataset over absolute paths (training splits and support sets).

    ``skip_grey`` drops grey-looking images from a training split; a support set keeps them (the
    protocol chose them: a black-and-white Pokémon's support is its real colours).
    """
    import os

    from fewcolor.data.folder import ImageFolderDataset
    from fewcolor.data.transforms import train_transform

    root = Path(os.path.commonpath([str(p.parent) for p in paths]))
    return ImageFolderDataset(
        root, paths=[str(p) for p in paths], transform=train_transform(size), seed=seed, cache=True,
        skip_grey=skip_grey,
    )


def _build(method_name: str, preset: str | None, size: int, seed: int, extra: dict[str, Any] | None = None) -> Any:
    from fewcolor.methods.registry import build_method, get_method_class

    cls = get_method_class(method_name)
    chosen = preset if preset in cls.presets else None
    if preset and chosen is None:
        log.warning("%s has no preset %r: using its defaults", method_name, preset)
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    overrides = {"image_size": size} if "image_size" in fields else {}
    overrides.update(extra or {})
    torch.manual_seed(seed)
    return build_method(method_name, chosen, overrides), chosen


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
    from fewcolor.data.episodes import train_split
    from fewcolor.methods.registry import load_method
    from fewcolor.train.loop import TrainOptions, train

    steps = max(1, budget.train_images // method.images_per_step(budget.batch_size))
    model_path = run_dir / "model.safetensors"
    if model_path.exists():
        reused = load_method(model_path)
        if getattr(reused, "checkpoint_step", -1) == steps:
            log.info("reusing finished run %s", run_dir)
            return reused, steps, 0.0
    split = train_split(protocol.dataset, fold, smoke=smoke)
    dataset = _paths_dataset(split.paths, protocol.image_size, seed, skip_grey=True)
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
    result = train(method, dataset, opts)
    return method, result.step, result.wall_seconds


def _query_pairs(
    method: Any,
    protocol: Protocol,
    budget: Budget,
    fold: int | None,
    seed: int,
    smoke: bool,
    device: str | None,
    adaptation: list[str],
    gallery: list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor]],
) -> Iterator[tuple[str, torch.Tensor, torch.Tensor]]:
    from fewcolor.data.episodes import episodes
    from fewcolor.pipeline import Colorizer
    from fewcolor.train.adapt import adapt

    eps = episodes(protocol.dataset, protocol.k_shot, fold=fold, seed=seed, control=protocol.control, smoke=smoke)
    if budget.max_episodes is not None:
        # an even spread over the episode list, not its alphabetical head
        stride = max(1, len(eps) // budget.max_episodes)
        eps = eps[::stride][: budget.max_episodes]
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
) -> MethodResult:
    """``run_tag`` is appended to the training runs' folder name (a non-default batch size)."""
    from fewcolor.metrics.evaluate import EvalConfig, evaluate_pairs

    result = MethodResult(label or method_name, preset)
    for seed in seeds:
        per_image: list[dict[str, Any]] = []
        set_levels: list[dict[str, Any]] = []
        adaptation: list[str] = []
        train_steps, train_seconds, t_eval = 0, 0.0, 0.0
        for fold in protocol.folds:
            fold_tag = "" if fold is None else f"/fold{fold}"
            method, result.preset = _build(method_name, preset, protocol.image_size, seed, overrides)
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
            pairs = _query_pairs(method, protocol, budget, fold, seed, smoke, device, adaptation, result.gallery)
            metrics = evaluate_pairs(
                pairs,
                out_dir / result.method / f"seed{seed}{fold_tag}",
                EvalConfig(size=protocol.image_size, fid=fid, device=device, seed=seed),
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
        set_level = {k: _mean([s.get(k) for s in set_levels]) for k in ("fid", "kid_mean")}
        result.seeds.append(
            SeedResult(
                seed, per_image, set_level, ",".join(sorted(set(adaptation))), train_steps, train_seconds, t_eval
            )
        )
    return result


def _mean(values: Sequence[Any]) -> float | None:
    vals = [float(v) for v in values if isinstance(v, (int, float))]
    return sum(vals) / len(vals) if vals else None


def summarize(result: MethodResult) -> dict[str, Any]:
    """Mean ± 95 % CI over every query of every seed; set-level metrics (FID) over seeds."""
    rows = [r for s in result.seeds for r in s.per_image]
    keys = [k for k, _ in TABLE_METRICS if k != "fid"] + ["auc", "cf_abs_pred", "delta_cf_abs"]
    agg = {k: mean_ci95([float(r[k]) for r in rows if r.get(k) is not None]) for k in keys}
    agg["fid"] = mean_ci95([s.set_level["fid"] for s in result.seeds if s.set_level.get("fid") is not None])
    return {
        "method": result.method,
        "preset": result.preset,
        "seeds": [s.seed for s in result.seeds],
        "queries": len(rows),
        "adaptation": sorted({s.adaptation for s in result.seeds}),
        "train_steps": [s.train_steps for s in result.seeds],
        "train_seconds": [round(s.train_seconds, 1) for s in result.seeds],
        "eval_seconds": [round(s.eval_seconds, 1) for s in result.seeds],
        "aggregate": agg,
        "per_seed": [
            {"seed": s.seed, **{k: _mean([r.get(k) for r in s.per_image]) for k in keys}, **s.set_level}
            for s in result.seeds
        ],
    }


def _fmt(stat: dict[str, Any]) -> str:
    """``mean ± half-width of the 95 % CI`` (``mean_ci95``'s keys), or the mean alone for one value."""
    mean, low, high = stat.get("mean"), stat.get("ci95_low"), stat.get("ci95_high")
    if mean is None:
        return "n/a"
    return f"{mean:.3f} ± {(high - low) / 2:.3f}" if low is not None and high is not None else f"{mean:.3f}"


def markdown_table(
    protocol: Protocol,
    budget: Budget,
    summaries: Sequence[dict[str, Any]],
    command: str,
    wall_seconds: float,
    size: str,
) -> str:
    commit = _git_commit()
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    head = "| method | preset | seeds | queries | adaptation | " + " | ".join(t for _, t in TABLE_METRICS) + " |"
    sep = "|" + "---|" * (5 + len(TABLE_METRICS))
    lines = [
        f"### {protocol.name} ({size}) — {now}",
        "",
        f"{protocol.description}. Budget: {budget.train_images} training image-gradient evaluations per method, "
        f"{budget.adapt_steps} adaptation steps (batch ≤ {budget.batch_size}) per episode, "
        f"{budget.max_episodes or 'all'} episodes × {budget.max_queries or 'all'} queries, "
        f"{protocol.image_size}² px. Mean ± 95 % CI over queries (FID: over seeds, one value per seed).",
        "",
        f"Command: `{command}`  ",
        f"Commit: `{commit}`; machine: {_machine()}; wall time {wall_seconds / 60:.1f} min.",
        "",
        head,
        sep,
    ]
    for s in summaries:
        cells = [_fmt(s["aggregate"][k]) for k, _ in TABLE_METRICS]
        lines.append(
            f"| {s['method']} | {s['preset'] or 'default'} | {len(s['seeds'])} | {s['queries']} | "
            f"{'/'.join(s['adaptation'])} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, cwd=cwd)


def _git_commit(cwd: Path = Path(__file__).parent) -> str:
    """The short commit of ``cwd``'s checkout, ``+dirty`` when tracked files outside ``docs/`` (where
    this very table is written) differ from it, or ``unknown``."""
    try:
        out = _git(cwd, "rev-parse", "--short", "HEAD")
        dirty = _git(cwd, "status", "--porcelain", "--untracked-files=no", "--", ":(top)", ":(top,exclude)docs")
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "") if out.returncode == 0 else "unknown"
    except OSError:
        return "unknown"


def _machine() -> str:
    import os

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}{gpu}"


def write_gallery(path: Path, protocol: Protocol, results: Sequence[MethodResult]) -> Path:
    """The same queries in a row per method (rows: grey input, truth, then one per method)."""
    from fewcolor.io.html import ImageCell, Page

    page = Page(path, f"fewcolor benchmark gallery: {protocol.name}")
    page.paragraph(protocol.description)
    first = results[0].gallery if results else []
    names = [g[0] for g in first]
    rows: list[list[ImageCell | str | None]] = [
        [ImageCell(g[1]) for g in first],
        [ImageCell(g[2]) for g in first],
    ]
    labels = ["grey input", "truth"]
    for res in results:
        preds = {g[0]: g[3] for g in res.gallery}
        rows.append([ImageCell(preds[n]) if n in preds else None for n in names])
        labels.append(res.method)
    page.image_table(["/".join(n.split("/")[-3:]) for n in names], rows, row_labels=labels)
    if names:
        # the same table as one picture (rows: grey, truth, one per method), small enough to commit
        from fewcolor.io.grid import image_grid
        from fewcolor.io.image import write_rgb

        tiles = [c.image if isinstance(c, ImageCell) else torch.ones(3, 8, 8) for row in rows for c in row]
        write_rgb(path.with_suffix(".png"), image_grid(tiles, ncols=len(names), tile=protocol.image_size))
    return page.write()


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
) -> dict[str, Any]:
    """Run ``methods`` on ``protocol``; returns the summaries and the paths written.

    ``overrides`` maps a method name to config overrides for it (``--set METHOD.KEY=VALUE``).
    """
    from fewcolor.data.recipes import is_prepared, prepare

    smoke = size == "smoke"
    if not is_prepared(protocol.dataset, smoke=smoke):
        log.info("preparing dataset %s%s", protocol.dataset, " (smoke)" if smoke else "")
        prepare(protocol.dataset, smoke=smoke)
    out_dir = Path(out_root) / (protocol.name + ("-smoke" if smoke else ""))
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    results, summaries, files = [], [], []
    # the batch size changes what a run is (more, smaller updates): runs with another one are kept apart
    run_tag = "" if budget.batch_size == SIZES[size].batch_size else f"-b{budget.batch_size}"
    for label in methods:
        # "cgan@metalgan-cpu": this method with its own preset (e.g. the same cGAN as MetalGAN's)
        name, _, own_preset = label.partition("@")
        res = run_method(
            name, protocol, budget, own_preset or preset, seeds, out_dir, smoke, device, fid,
            (overrides or {}).get(name), label, run_tag,
        )
        results.append(res)
        summary = summarize(res)
        summary.update({"protocol": protocol.name, "size": size, "budget": dataclasses.asdict(budget)})
        summaries.append(summary)
        write_text_atomic(out_dir / f"{label}.json", json.dumps(summary, indent=2))
        files.append(out_dir / f"{label}.json")
    gallery = write_gallery(out_dir / "gallery.html", protocol, results)
    wall = time.time() - t0
    table = markdown_table(protocol, budget, summaries, command, wall, size)
    if results_md is not None:
        results_md.parent.mkdir(parents=True, exist_ok=True)
        prior = results_md.read_text(encoding="utf-8") if results_md.exists() else "# Results\n"
        gallery_png = gallery.with_suffix(".png")
        note = f"\nGallery: `{gallery}`"
        if gallery_png.exists():
            # a copy next to RESULTS.md so the committed table shows its pictures; one per run, so a
            # later run of the same protocol does not replace the picture of an earlier table
            import shutil

            stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
            dest = results_md.parent / "results" / f"{out_dir.name}-{stamp}.png"
            n = 1
            while dest.exists():  # two runs in one second
                n += 1
                dest = dest.with_name(f"{out_dir.name}-{stamp}-{n}.png")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(gallery_png, dest)
            rows = "grey, truth, " + ", ".join(methods)
            note += f"\n\n![{protocol.name} gallery (rows: {rows})](results/{dest.name})"
        write_text_atomic(results_md, prior.rstrip("\n") + "\n\n" + table + note + "\n")
    return {"summaries": summaries, "gallery": gallery, "files": files, "table": table, "wall_seconds": wall}
