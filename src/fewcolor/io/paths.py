"""Where outputs go: one distinct name per input, never an input's own path, never inside an input folder.

:func:`output_paths` maps input files (with the path relative to what the user named) to output files:

1. ``rel`` with the output suffix (``sub/a.jpg`` -> ``sub/a.png``);
2. inputs that would share a name up to the extension (``a.png`` and ``a.jpg``, ``img.tiff`` and
   ``img.webp``; compared case-insensitively, as macOS and Windows file systems do) keep their
   extension in the name instead: ``a_png.png``, ``a_jpg.png``;
3. a name still taken (by an earlier output, a variant of one, an input file, or, with ``keep_existing``,
   any file already there) gets ``_2``, ``_3``...

so no result is silently lost and no input is ever overwritten. :func:`check_outside` refuses an output
folder inside (or equal to) a folder being read, unless the caller allows it.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["OutputPathError", "PlannedOutput", "check_outside", "is_within", "output_paths"]


class OutputPathError(ValueError):
    """An output location would overwrite or pollute an input."""


@dataclass(frozen=True)
class PlannedOutput:
    source: Path  #: the input file
    paths: tuple[Path, ...]  #: its output file(s): one, or one per variant
    note: str | None = None  #: why the name differs from the plain ``rel.with_suffix(suffix)``


def is_within(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is ``folder`` or lies below it (symbolic links and ``..`` resolved)."""
    p, f = Path(path).resolve(), Path(folder).resolve()
    return p == f or f in p.parents


def check_outside(out_dir: str | os.PathLike[str], read_dirs: Iterable[str | os.PathLike[str]],
                  option: str = "-o", both_ways: bool = False) -> None:
    """Refuse ``out_dir`` when it is (inside) a folder being read, or, with ``both_ways``, contains one.

    ``both_ways`` is for writers that fill a whole folder (``evaluate``'s ``pred/``): a folder being read
    inside it could be overwritten too.
    """
    for folder in read_dirs:
        if is_within(out_dir, folder):
            raise OutputPathError(
                f"{option} {out_dir} is inside the input folder {folder}: outputs would mix with (or "
                "overwrite) the inputs; choose an output outside it")
        if both_ways and is_within(folder, out_dir):
            raise OutputPathError(
                f"{option} {out_dir} contains the input folder {folder}, which the outputs could overwrite; "
                "choose an output folder that neither holds nor lies in it")


def _key(path: Path) -> str:
    return os.path.normcase(str(path.resolve())).casefold()


def output_paths(items: Sequence[tuple[Path, Path]], out_dir: str | os.PathLike[str], suffix: str = ".png",
                 variants: int = 0, keep_existing: bool = False) -> list[PlannedOutput]:
    """Distinct output files for ``(input file, path relative to what the user named)`` pairs, in order.

    ``variants`` > 0 gives each input ``NAME_v1`` ... ``NAME_vK`` instead of ``NAME``. ``keep_existing``
    treats every file already present as taken (for an output folder among the user's own files, where a
    file this run did not write is not an earlier output to replace). See the module docstring for the
    naming rules; ``note`` explains every name that differs from the plain one.
    """
    out = Path(out_dir)
    plain = [rel.with_suffix(suffix) for _, rel in items]
    groups: dict[str, list[int]] = defaultdict(list)
    for i, name in enumerate(plain):
        groups[_key(out / name)].append(i)
    taken = {_key(src) for src, _ in items}
    rel_counts = Counter(rel for _, rel in items)
    planned: list[PlannedOutput] = []
    for i, (src, rel) in enumerate(items):
        name, note = plain[i], None
        group = groups[_key(out / name)]
        if len(group) > 1:
            ext = rel.suffix.lstrip(".").lower() or "noext"
            name = rel.with_name(f"{rel.stem}_{ext}{suffix}")
            others = ", ".join(_shown(items[j], rel_counts) for j in group if j != i)
            note = f"{_shown(items[i], rel_counts)} -> {name.as_posix()} (its plain name is shared with {others})"
        stem, count = name.stem, 1
        while True:
            paths = _expand(out / name, suffix, variants)
            if not any(_key(p) in taken or (keep_existing and os.path.lexists(p)) for p in paths):
                break
            count += 1
            name = name.with_name(f"{stem}_{count}{suffix}")
        if count > 1:
            note = f"{_shown(items[i], rel_counts)} -> {name.as_posix()} (the name {stem}{suffix} was taken)"
        taken.update(_key(p) for p in paths)
        planned.append(PlannedOutput(src, paths, note))
    return planned


def _shown(item: tuple[Path, Path], rel_counts: Counter[Path]) -> str:
    """An input as a note names it: its relative path, or its whole path where another input has the same
    relative path (the same file name from two folders named one by one must be told apart)."""
    src, rel = item
    return str(src) if rel_counts[rel] > 1 else rel.as_posix()


def _expand(path: Path, suffix: str, variants: int) -> tuple[Path, ...]:
    if variants <= 0:
        return (path,)
    return tuple(path.with_name(f"{path.stem}_v{v}{suffix}") for v in range(1, variants + 1))
