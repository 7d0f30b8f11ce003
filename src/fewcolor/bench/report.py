"""Benchmark reports: the markdown table (appended to docs/RESULTS.md with a copy of the gallery picture)
and the gallery page (the same queries in a row per method)."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from fewcolor.bench.protocols import Budget, Protocol
from fewcolor.bench.provenance import git_commit, machine_description
from fewcolor.bench.results import TABLE_METRICS, MethodResult
from fewcolor.io.atomic import write_text_atomic
from fewcolor.metrics.set_level import MIN_SET_IMAGES


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
    commit = git_commit()
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"### {protocol.name} ({size}) — {now}",
        "",
        f"{protocol.description}. {budget_sentence(dataclasses.asdict(budget))}, "
        f"{protocol.image_size}² px. Mean ± 95 % CI over queries (FID: over seeds, one value per seed).",
        "",
        f"Command: `{command}`  ",
        f"Commit: `{commit}`; machine: {machine_description()}; wall time {wall_seconds / 60:.1f} min.",
        "",
        table_rows(summaries),
    ]
    return "\n".join(lines)


def budget_sentence(budget: dict[str, Any]) -> str:
    """"Budget: ..." of a table, from a :class:`Budget` as a dict (how summaries store it)."""
    return (f"Budget: {budget['train_images']} training image-gradient evaluations per method, "
            f"{budget['adapt_steps']} adaptation steps (batch ≤ {budget['batch_size']}) per episode, "
            f"{budget['max_episodes'] or 'all'} episodes × {budget['max_queries'] or 'all'} queries")


def table_rows(summaries: Sequence[dict[str, Any]]) -> str:
    """The markdown table (header and one row per method) of saved summaries (``results/<protocol>/M.json``)."""
    lines = [
        "| method | preset | seeds | queries | adaptation | " + " | ".join(t for _, t in TABLE_METRICS) + " |",
        "|" + "---|" * (5 + len(TABLE_METRICS)),
    ]
    small: set[int] = set()
    for s in summaries:
        cells = [_fmt(s["aggregate"][k]) for k, _ in TABLE_METRICS]
        n = s.get("fid_set_images")  # absent from summaries written before it was recorded
        if n is not None and n < MIN_SET_IMAGES and s["aggregate"]["fid"].get("mean") is not None:
            cells[[k for k, _ in TABLE_METRICS].index("fid")] += " †"
            small.add(int(n))
        lines.append(
            f"| {s['method']} | {s['preset'] or 'default'} | {len(s['seeds'])} | {s['queries']} | "
            f"{'/'.join(s['adaptation'])} | " + " | ".join(cells) + " |"
        )
    if small:
        lines += ["", f"† FID on {', '.join(map(str, sorted(small)))} images per set: unreliable below "
                      f"{MIN_SET_IMAGES} (docs/METRICS.md); compare only runs with the same number."]
    return "\n".join(lines) + "\n"


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


def append_results(results_md: Path, table: str, gallery: Path, run_name: str, protocol_name: str,
                   methods: Sequence[str]) -> None:
    """Append ``table`` to ``results_md`` with a link to the gallery and, when it exists, a copy of its
    picture under ``results/`` beside the markdown file (one per run, never replaced)."""
    results_md.parent.mkdir(parents=True, exist_ok=True)
    prior = results_md.read_text(encoding="utf-8") if results_md.exists() else "# Results\n"
    gallery_png = gallery.with_suffix(".png")
    note = f"\nGallery: `{gallery}`"
    if gallery_png.exists():
        # a copy next to RESULTS.md so the committed table shows its pictures; one per run, so a
        # later run of the same protocol does not replace the picture of an earlier table
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
        dest = results_md.parent / "results" / f"{run_name}-{stamp}.png"
        n = 1
        while dest.exists():  # two runs in one second
            n += 1
            dest = dest.with_name(f"{run_name}-{stamp}-{n}.png")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(gallery_png, dest)
        rows = "grey, truth, " + ", ".join(methods)
        note += f"\n\n![{protocol_name} gallery (rows: {rows})](results/{dest.name})"
    write_text_atomic(results_md, prior.rstrip("\n") + "\n\n" + table + note + "\n")
