"""One training process per run folder: an exclusive lock on ``RUN/.lock`` held for the whole run.

Two ``fewcolor train --resume`` (or two benchmarks) on one folder would otherwise both resume from its
checkpoint and write over each other's log, checkpoint and model. The lock is an advisory ``flock``: the
kernel drops it when the process ends however it ends (``kill -9`` included), so a stale lock file never
blocks a later run. The file keeps the holder's process id, for the message the second process gives.
Where ``fcntl`` does not exist (Windows), or the file system has no ``flock`` (some NFS and Lustre mounts),
no lock is taken, the latter with a warning.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"
#: what flock gives on a file system without it: train there unlocked rather than not at all
_NO_FLOCK = frozenset({errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK, errno.EINVAL})


class RunFolderBusy(OSError):
    """Another process is training into the folder."""


@contextlib.contextmanager
def run_folder_lock(folder: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the folder's lock for the block; :class:`RunFolderBusy` (one line, naming the holder) when another
    process holds it."""
    if fcntl is None:
        yield
        return
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    # O_CLOEXEC: a program this process runs (npm) must not keep the lock after we end; forked data workers
    # share the descriptor and hold it while they live, which is while this process does
    fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise RunFolderBusy(
                f"{path} is in use by another training run (pid {holder}); wait for it to finish or stop it, "
                "or train into another -o"
            ) from None
        except OSError as exc:
            if exc.errno not in _NO_FLOCK:
                raise
            log.warning("%s: this file system cannot lock files (%s), so nothing stops a second run from "
                        "training into the same folder at once", path, exc.strerror)
        else:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
