"""Streaming a (gzipped) tarball once, front to back, with a progress bar in bytes."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from tqdm.auto import tqdm

from fewcolor.data.recipes._common import PrepareError


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
