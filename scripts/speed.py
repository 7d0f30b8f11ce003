#!/usr/bin/env python
"""The speed benchmark of issue #18: one markdown table of what this machine does, with the targets.

Runs the parts of ``fewcolor.bench.speed`` in order (GEMM peak, training throughput, set-up passes,
inference, retrieval; a part this checkout lacks is listed as missing) and prints a header (date,
commit, CPU, cores, torch version, CPU capability) and a table: part, quantity, value, unit, target,
met. Notes (sizes, repeats) follow the table.

    python scripts/speed.py                     # everything, full sizes (about 4 minutes on 2 cores)
    python scripts/speed.py --quick             # smaller sizes, fewer repeats
    python scripts/speed.py --parts gemm,training --markdown docs/PERFORMANCE.md

Run it on a quiet machine: every number is a wall-clock time, and the ratios compare parts of one run.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from fewcolor.bench.speed import PARTS, Row, part

REPO = Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def commit() -> str:
    """The checkout's short commit (``+dirty`` with uncommitted changes), or ``unknown`` outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def header(quick: bool) -> list[str]:
    """The lines above the table: when, which code, which machine."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return [
        f"Speed benchmark{' (--quick)' if quick else ''}, {now}, commit {commit()}",
        "",
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores, {torch.get_num_threads()} torch threads",
        f"- torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}"
        + (f", CUDA: {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no CUDA device"),
    ]


def _number(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def table(rows: Sequence[Row], missing: Sequence[str] = ()) -> list[str]:
    """The markdown table of ``rows``, then the notes and the parts that are missing."""
    lines = ["| part | quantity | value | unit | target | met |", "|---|---|---:|---|---:|---|"]
    for r in rows:
        target = "" if r.target is None else ("≥ " if r.higher_is_better else "≤ ") + _number(r.target)
        met = {True: "yes", False: "**no**", None: ""}[r.met]
        lines.append(f"| {r.part} | {r.name} | {_number(r.value)} | {r.unit} | {target} | {met} |")
    notes = [f"- {r.part} / {r.name}: {r.note}" for r in rows if r.note]
    notes += [f"- {name}: not in this checkout (no fewcolor.bench.speed.{name})" for name in missing]
    return lines + (["", *notes] if notes else [])


def run(names: Sequence[str], quick: bool) -> tuple[list[Row], list[str]]:
    """Rows of every part in ``names`` (in that order) and the names of the missing parts."""
    rows: list[Row] = []
    missing: list[str] = []
    for name in names:
        measure = part(name)
        if measure is None:
            missing.append(name)
            continue
        t = time.perf_counter()
        print(f"speed: {name}...", file=sys.stderr, flush=True)
        rows += measure(quick)
        print(f"speed: {name} took {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    return rows, missing


def parse_parts(text: str | None) -> list[str]:
    """``--parts a,b`` as a list in the order given (all of PARTS without it); unknown names raise SystemExit."""
    if not text:
        return list(PARTS)
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in PARTS]
    if unknown or not names:
        raise SystemExit(f"speed.py: --parts {text!r}: unknown part(s) {', '.join(unknown) or '(none given)'}; "
                         f"choose from {','.join(PARTS)}")
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="smaller problems and fewer repeats (each part well under a minute)")
    parser.add_argument("--parts", metavar="A,B",
                        help=f"comma-separated parts to run, in this order (default: all of {','.join(PARTS)})")
    parser.add_argument("--markdown", metavar="FILE", type=Path,
                        help="also append the header and the table to FILE (e.g. docs/PERFORMANCE.md)")
    args = parser.parse_args(argv)
    names = parse_parts(args.parts)
    if args.markdown is not None and not args.markdown.parent.is_dir():
        raise SystemExit(f"speed.py: --markdown {args.markdown}: the folder {args.markdown.parent} does not exist")
    rows, missing = run(names, args.quick)
    text = "\n".join([*header(args.quick), "", *table(rows, missing)]) + "\n"
    print(text, end="")
    if args.markdown is not None:
        with args.markdown.open("a", encoding="utf-8") as f:
            f.write("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
