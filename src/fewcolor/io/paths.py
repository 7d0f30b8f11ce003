"""Where outputs go: one distinct name per input, never an input's own path, never inside an input folder.

:func:`output_paths` maps input files (with the path relative to what the user named) to output files:

1. ``rel`` with the output suffix (``sub/a.jpg`` -> ``sub/a.png``);
2. inputs that would share a name up to the extension (``a.png`` and ``a.jpg``, ``img.tiff`` and
   ``img.webp``; compared case-insensitively, as macOS and Windows file systems do) keep their
   extension in the name instead: ``a_png.png``, ``a_jpg.png``;
3. a name still taken (by an earlier output, a variant of one, an input file, or, with ``keep_existing``,
   any file already there) gets ``_2``, ``_3``...

so no result is silently lost and no input is ever overwritten. :func:`check_outside` refuses an output
folder inside (or equal to) a folder being read, unless the caller allows it; :func:`check_new` refuses
outputs that exist already (a command replaces them only when told to, with ``--overwrite``), and
:func:`removed_on_failure` takes the folders a failed run created, still empty, away again.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["OutputPathError", "PlannedOutput", "check_new", "check_outside", "existing_error", "is_within",
           "missing_folders", "output_paths", "removed_on_failure", "variant_paths"]


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
                  option: str = "-o", both_ways: bool = False, allow: str = "") -> None:
    """Refuse ``out_dir`` when it is (inside) a folder being read, or, with ``both_ways``, contains one.

    ``both_ways`` is for writers that fill a whole folder (``evaluate``'s ``pred/``): a folder being read
    inside it could be overwritten too. ``allow`` names the option that would allow it (``colorize
    --inside-input``), said at the end of the message.
    """
    for folder in read_dirs:
        if is_within(out_dir, folder):
            raise OutputPathError(
                f"{option} {out_dir} is inside the input folder {folder}: outputs would mix with (or "
                "overwrite) the inputs; choose an output outside it" + (f" (or pass {allow})" if allow else ""))
        if both_ways and is_within(folder, out_dir):
            raise OutputPathError(
                f"{option} {out_dir} contains the input folder {folder}, which the outputs could overwrite; "
                "choose an output folder that neither holds nor lies in it")


def existing_error(existing: Sequence[Path], option: str = "-o", where: str | os.PathLike[str] | None = None,
                   total: int | None = None) -> OutputPathError:
    """The one-line refusal of outputs that exist: the first of ``existing`` and how many (of the ``total``
    outputs the command would write, when it knows), and the fix: ``--overwrite``, or another ``option``."""
    first, count = existing[0], len(existing)
    head = f"{option} {first} exists" if where is None or Path(where) == first else \
        f"{option} {where}: {first} exists"
    if total is not None and total > 1:
        head += f" ({count} of the {total} outputs this run would write {'exists' if count == 1 else 'exist'})"
    elif count > 1:
        head += f" (and {count - 1} more)"
    return OutputPathError(f"{head}; pass --overwrite to replace {'it' if count == 1 else 'them'}, or choose "
                           f"another {option}")


def check_new(paths: Sequence[str | os.PathLike[str]], option: str = "-o",
              where: str | os.PathLike[str] | None = None) -> None:
    """Refuse (:class:`OutputPathError`, naming the first and how many) when any of the output ``paths`` a
    command would write exists already: a file is never replaced silently. Checked before any work;
    ``where`` is the output folder the message names first."""
    existing = [Path(p) for p in paths if os.path.lexists(p)]
    if existing:
        raise existing_error(existing, option, where, total=len(paths))


def missing_folders(path: str | os.PathLike[str]) -> list[Path]:
    """The folders that creating ``path`` (with its parents) would create, deepest first."""
    out: list[Path] = []
    folder = Path(path).absolute()
    while not os.path.lexists(folder) and folder != folder.parent:
        out.append(folder)
        folder = folder.parent
    return out


@contextmanager
def removed_on_failure(created: Sequence[Path]) -> Iterator[None]:
    """Run the block; when it fails (any exception, ``sys.exit`` included), remove the folders of ``created``
    (:func:`missing_folders`, deepest first) that are still empty, so a failed run leaves no empty output
    folder behind. A folder holding anything is kept, and so are the folders above it."""
    try:
        yield
    except BaseException:
        for folder in created:
            try:
                folder.rmdir()
            except OSError:
                break
        raise


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


def variant_paths(path: str | os.PathLike[str], variants: int = 0) -> tuple[Path, ...]:
    """The file(s) one named output is written as: ``path``, or with ``variants`` > 0 ``NAME_v1`` ...
    ``NAME_vK`` beside it (its suffix kept), as :func:`output_paths` names variants."""
    p = Path(path)
    return _expand(p, p.suffix, variants)


def _expand(path: Path, suffix: str, variants: int) -> tuple[Path, ...]:
    if variants <= 0:
        return (path,)
    return tuple(path.with_name(f"{path.stem}_v{v}{suffix}") for v in range(1, variants + 1))
