"""Atomic file writes: write to a temporary file in the same folder, then rename over the target.

The temporary file is created private (mode 0600, as ``mkstemp`` does); before the rename it gets the
mode a plain ``open(path, "w")`` would have given: the target's own mode when it already exists, else
0666 minus the process umask. With ``durable=True`` the file's data and then the folder's entry are flushed
to the disk (fsync) around the rename, so that a power loss or host crash leaves either the old or the new
file whole, never an empty or torn one (a rename alone can reach the disk before the data it names).

Text is written as UTF-8; a file name that is not valid UTF-8 (it reaches
Python as lone surrogates) is written with backslash escapes instead of failing at the end of the work.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path


def current_umask() -> int:
    """The process umask, read without changing it where /proc allows (Linux), else set and restored."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _final_mode(target: Path) -> int:
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        return 0o666 & ~current_umask()


def _fsync(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise  # some file systems cannot sync a folder: the data itself is on the disk
    finally:
        os.close(fd)


#: Windows' rename refuses an existing name (POSIX rename replaces it)
RENAME_KEEPS_EXISTING = os.name == "nt"

#: the end of the message refusing to replace an existing file
KEPT_FILE = "it is kept: choose another output path or allow replacing it (--overwrite; overwrite=True in Python)"


def _commit_new(tmp: Path, target: Path) -> None:
    """Give ``tmp`` the name ``target`` only if no file has it: a hard link fails on an existing name in one
    step (no check-then-write window). Where the file system has no hard links, Windows' rename refuses an
    existing name in one step too; elsewhere (POSIX rename replaces) the name is checked just before the rename."""
    appeared = f"{target} exists (it may have appeared while this file was being written); {KEPT_FILE}"
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise FileExistsError(appeared) from None
    except OSError:
        if RENAME_KEEPS_EXISTING:
            try:
                os.rename(tmp, target)
            except FileExistsError:
                raise FileExistsError(appeared) from None
            return
        if os.path.lexists(target):
            raise FileExistsError(f"{target} exists; {KEPT_FILE}") from None
        os.replace(tmp, target)
        return
    tmp.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], durable: bool = False, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` in one rename (``durable``:
    flushed to the disk first, see the module docstring). ``replace=False`` never replaces a file: one that
    exists when the work ends (even one that appeared during it) raises ``FileExistsError`` and is kept."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, _final_mode(target))
        if durable:
            _fsync(tmp)
        if replace:
            os.replace(tmp, target)
        else:
            _commit_new(tmp, target)
        if durable and os.name == "posix":  # the rename itself; Windows cannot open a folder to sync it
            _fsync(target.parent, directory=True)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", errors="backslashreplace")
