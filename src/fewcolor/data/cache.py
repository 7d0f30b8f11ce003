"""On-disk caches under ``FEWCOLOR_HOME`` (default ``~/.cache/fewcolor``).

The folder-scan cache remembers, per image file, whether it decoded, whether it is grey
(:func:`fewcolor.data.grey.is_grey`) and its size, keyed by the file's size and modification time,
so re-opening a large dataset reads only new or changed files. Nothing is ever written inside the
dataset folder itself (it may be read-only or shared).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fewcolor.io.atomic import write_text_atomic

__all__ = ["SCAN_CACHE_VERSION", "fewcolor_home", "load_scan_cache", "save_scan_cache", "scan_cache_path"]

from fewcolor.home import fewcolor_home

log = logging.getLogger(__name__)

SCAN_CACHE_VERSION = 1




def scan_cache_path(root: str | os.PathLike[str], settings: Mapping[str, Any]) -> Path:
    """Where the scan of ``root`` read with ``settings`` (background, pixel limit) is cached."""
    key = json.dumps({"root": str(Path(root).resolve()), **settings}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return fewcolor_home() / "scans" / f"{digest}.json"


def load_scan_cache(root: str | os.PathLike[str], settings: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The cached per-file entries for ``root`` ({} when absent, stale in format, or unreadable)."""
    path = scan_cache_path(root, settings)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable scan cache %s (%s); the folder will be rescanned", path, exc)
        return {}
    if not isinstance(data, dict) or data.get("version") != SCAN_CACHE_VERSION:
        return {}
    entries = data.get("entries")
    return entries if isinstance(entries, dict) else {}


def save_scan_cache(
    root: str | os.PathLike[str], settings: Mapping[str, Any], entries: Mapping[str, Mapping[str, Any]]
) -> Path | None:
    """Merge ``entries`` into the cache of ``root`` atomically; returns the path (None if it could not write).

    Entries of other files already cached (another split of the same folder) are kept.
    """
    path = scan_cache_path(root, settings)
    merged = dict(load_scan_cache(root, settings))
    merged.update(entries)
    payload = {"version": SCAN_CACHE_VERSION, "root": str(Path(root).resolve()), "settings": dict(settings),
               "entries": merged}
    try:
        write_text_atomic(path, json.dumps(payload, sort_keys=True, separators=(",", ":")))
    except OSError as exc:
        # A read-only home must not stop training; the scan is simply redone next time.
        log.warning("could not write the scan cache %s (%s); set FEWCOLOR_HOME to a writable folder",
                    path, exc)
        return None
    return path
