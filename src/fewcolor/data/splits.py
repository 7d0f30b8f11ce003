"""Split files: plain-text lists of image paths relative to a dataset root.

Format (one path per line, UTF-8)::

    # flowers12 train split, seed 0        <- whole-line comments start with '#'
    daisy/0001.jpg                         <- POSIX separators, relative to the dataset root
    rose/0042.jpg

Blank lines are ignored. Absolute paths, backslashes, '..' components and duplicates are refused,
so a split file means the same thing on every machine.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

from fewcolor.io.atomic import write_text_atomic

__all__ = ["make_splits", "read_split", "validate_split_path", "write_split"]


def validate_split_path(entry: str, where: str = "split") -> str:
    """Check one relative POSIX path; returns it normalised (no './' prefix)."""
    if "\\" in entry:
        raise ValueError(f"{where}: {entry!r} uses backslashes; split files use POSIX '/' separators")
    pure = PurePosixPath(entry)
    if pure.is_absolute() or (len(entry) > 1 and entry[1] == ":"):
        raise ValueError(f"{where}: {entry!r} is absolute; split paths are relative to the dataset root")
    if ".." in pure.parts:
        raise ValueError(f"{where}: {entry!r} contains '..'; split paths must stay inside the dataset root")
    text = pure.as_posix()
    if text in ("", "."):
        raise ValueError(f"{where}: empty path entry")
    return text


def read_split(file: str | os.PathLike[str]) -> list[str]:
    """The relative paths listed in a split file, in file order."""
    p = Path(file)
    if not p.is_file():
        raise FileNotFoundError(f"split file not found: {p}")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{p} is not a split file (not UTF-8 text, byte {exc.start}); a split file lists "
                         "image paths relative to the dataset root, one per line") from exc
    if "\0" in text:
        raise ValueError(f"{p} is not a split file (it holds NUL bytes); a split file lists image paths "
                         "relative to the dataset root, one per line")
    paths: list[str] = []
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        entry = validate_split_path(line, where=f"{p}:{lineno}")
        if entry in seen:
            raise ValueError(f"{p}:{lineno}: {entry!r} is listed twice (first on line {seen[entry]})")
        seen[entry] = lineno
        paths.append(entry)
    return paths


def write_split(
    file: str | os.PathLike[str], paths: Sequence[str | os.PathLike[str]], header: str | None = None
) -> Path:
    """Write ``paths`` (relative; ``Path`` objects are written with '/') atomically, one per line.

    ``header`` (optional, may span lines) is written as '#' comment lines at the top.
    """
    p = Path(file)
    lines = [f"# {h}".rstrip() for h in header.splitlines()] if header else []
    seen: set[str] = set()
    for entry in paths:
        text = entry.as_posix() if isinstance(entry, PurePosixPath | Path) else str(entry)
        text = validate_split_path(text, where=str(p))
        if text in seen:
            raise ValueError(f"{p}: {text!r} would be written twice")
        seen.add(text)
        lines.append(text)
    write_text_atomic(p, "\n".join(lines) + "\n")
    return p


def make_splits(
    paths: Sequence[str],
    fractions: Mapping[str, float],
    seed: int = 0,
    stratify_by: Sequence[object] | None = None,
) -> dict[str, list[str]]:
    """Deterministically split ``paths`` into named parts, e.g. ``{"train": .8, "val": .1, "test": .1}``.

    With ``stratify_by`` (one label per path) each label is split on its own, so every part keeps the
    class proportions. Within a group the paths are sorted, shuffled with ``random.Random(seed)`` and
    cut by counts from the largest-remainder rule (counts sum exactly to the group size). The result
    depends only on the set of paths, the fractions, the labels and the seed; each part is sorted.
    """
    if not fractions:
        raise ValueError("make_splits: fractions is empty; give e.g. {'train': 0.8, 'test': 0.2}")
    if any(f < 0 for f in fractions.values()):
        raise ValueError(f"make_splits: fractions must be non-negative, got {dict(fractions)}")
    total = sum(fractions.values())
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        raise ValueError(f"make_splits: fractions must sum to 1, got {total} from {dict(fractions)}")
    if len(set(paths)) != len(paths):
        raise ValueError("make_splits: paths contain duplicates")
    if stratify_by is not None and len(stratify_by) != len(paths):
        raise ValueError(f"make_splits: {len(stratify_by)} labels for {len(paths)} paths")

    groups: dict[str, list[str]] = {}
    labels = stratify_by if stratify_by is not None else [None] * len(paths)
    for path, label in zip(paths, labels, strict=True):
        groups.setdefault(repr(label), []).append(path)

    names = list(fractions)
    out: dict[str, list[str]] = {name: [] for name in names}
    for key in sorted(groups):
        members = sorted(groups[key])
        # one generator per group, seeded from (seed, label) so adding a class leaves others unchanged
        random.Random(f"{seed}:{key}").shuffle(members)
        start = 0
        for name, count in zip(names, _largest_remainder(len(members), [fractions[n] for n in names]),
                               strict=True):
            out[name].extend(members[start:start + count])
            start += count
    return {name: sorted(part) for name, part in out.items()}


def _largest_remainder(n: int, fractions: Sequence[float]) -> list[int]:
    """Integer counts summing to ``n`` closest to ``n * f`` (ties go to the earlier part)."""
    exact = [n * f for f in fractions]
    counts = [math.floor(e) for e in exact]
    order = sorted(range(len(fractions)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts
