"""Every on-disk cache of fewcolor, under ``FEWCOLOR_HOME`` (default ``~/.cache/fewcolor``).

* **Keyed tensors** (:func:`cache_file`, :func:`load_tensors`, :func:`save_tensors`,
  :func:`cached_tensors`): safetensors files with a JSON header holding the key that made them; a file
  whose key does not match, or that cannot be read, is recomputed. Users: colour priors (CIC), cluster
  descriptors and tasks (MetalGAN, Iizuka), FID reference features. :func:`load_or_compute_prior` is the
  colour-prior entry point.
* **Dataset fingerprint** (:func:`data_fingerprint`): the root, relative paths and each file's size and
  modification time, so a cache keyed by it goes stale when an image is added, removed or edited.
* **Folder scans** (:func:`load_scan_cache`, :func:`save_scan_cache`): per image file, whether it decoded,
  whether it is grey (:func:`fewcolor.data.grey.is_grey`) and its size, keyed by the file's size and
  modification time, so re-opening a large dataset reads only new or changed files.

Nothing is ever written inside a dataset folder (it may be read-only or shared), and a cache that cannot
be written only costs a recomputation next time (a warning, never an error).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from fewcolor.color.bins import Q, bins_id
from fewcolor.data.protocol import Dataset
from fewcolor.home import fewcolor_home
from fewcolor.io.atomic import write_text_atomic
from fewcolor.io.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

__all__ = [
    "SCAN_CACHE_VERSION",
    "cache_file",
    "cached_tensors",
    "data_fingerprint",
    "fewcolor_home",
    "load_or_compute_prior",
    "load_scan_cache",
    "load_tensors",
    "prior_cache_path",
    "save_scan_cache",
    "save_tensors",
    "scan_cache_path",
]

log = logging.getLogger(__name__)

SCAN_CACHE_VERSION = 1
#: bump to invalidate every keyed-tensor cache entry at once
TENSOR_CACHE_VERSION = 1


# ------------------------------------------------------------------------------- dataset fingerprint
def data_fingerprint(dataset: Dataset) -> dict[str, Any] | None:
    """What identifies a folder dataset's images: root, relative paths, and each file's size and mtime.

    ``None`` for datasets without ``root`` and ``paths`` (in-memory tensors): those are not cached.
    """
    root, paths = getattr(dataset, "root", None), getattr(dataset, "paths", None)
    if root is None or paths is None:
        return None
    root = Path(root)
    stats: list[list[Any]] = []
    for p in paths:
        try:
            st = (root / p).stat()
            stats.append([str(p), st.st_size, st.st_mtime_ns])
        except OSError:
            stats.append([str(p), -1, -1])
    digest = hashlib.sha256(json.dumps(stats).encode()).hexdigest()
    return {"root": str(root.resolve()), "files": len(stats), "files_sha256": digest}


# ------------------------------------------------------------------------------------ keyed tensors
def key_digest(key: Mapping[str, Any]) -> str:
    """A stable 24-hex-digit hash of a JSON-serialisable key (with the cache version)."""
    text = json.dumps({"v": TENSOR_CACHE_VERSION, **key}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def cache_file(folder: str, key: Mapping[str, Any] | str, prefix: str = "",
               root: str | os.PathLike[str] | None = None) -> Path:
    """``<root or FEWCOLOR_HOME>/<folder>/<name>.safetensors``: ``name`` is ``key`` itself when it is a
    string (made file-name safe), else ``<prefix>-<hash of key>``."""
    if isinstance(key, str):
        if not key:
            raise ValueError("a cache key must be a non-empty string")
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("._") or "entry"
    else:
        name = f"{prefix}-{key_digest(key)}" if prefix else key_digest(key)
    base = Path(root) if root is not None else fewcolor_home() / folder
    return base / f"{name}.safetensors"


def load_tensors(
    path: str | os.PathLike[str], key: Any = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """The cached ``(tensors, metadata)``, or ``None`` when absent, unreadable, or made for another ``key``."""
    if not Path(path).is_file():
        return None
    try:
        tensors, meta = load_checkpoint(path)
    except CheckpointError as exc:
        log.warning("ignoring unreadable cache %s (%s); recomputing", path, exc)
        return None
    if key is not None and meta.get("key") != json.loads(json.dumps(key, default=str)):
        return None
    return tensors, meta


def save_tensors(path: str | os.PathLike[str], tensors: Mapping[str, torch.Tensor], key: Any,
                 meta: Mapping[str, Any] | None = None) -> Path | None:
    """Write a cache entry atomically (the path, or ``None`` when it could not be written)."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return save_checkpoint(path, tensors, {"kind": "cache", "key": key, **(meta or {})})
    except (OSError, CheckpointError) as exc:
        log.warning("could not write the cache %s (%s); set FEWCOLOR_HOME to a writable folder", path, exc)
        return None


def cached_tensors(path: str | os.PathLike[str], key: Any,
                   compute: Callable[[], Mapping[str, torch.Tensor]], refresh: bool = False) -> dict[str, torch.Tensor]:
    """The tensors cached at ``path`` for ``key``, else ``compute()`` written there."""
    if not refresh:
        hit = load_tensors(path, key)
        if hit is not None:
            return hit[0]
    tensors = dict(compute())
    save_tensors(path, tensors, key)
    return tensors


# ------------------------------------------------------------------------------------- colour priors
def prior_cache_path(key: str, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where :func:`load_or_compute_prior` keeps the prior for ``key`` (``FEWCOLOR_HOME/priors``)."""
    if not key:
        raise ValueError("prior cache key must be a non-empty string")
    return cache_file("priors", key, root=cache_dir)


def load_or_compute_prior(
    key: str,
    compute_fn: Callable[[], torch.Tensor],
    cache_dir: str | os.PathLike[str] | None = None,
    refresh: bool = False,
) -> torch.Tensor:
    """The cached ab-bin prior (Q,) float64 for ``key``, or ``compute_fn()`` normalised and stored.

    ``key`` identifies the data and settings (CIC builds it from :func:`data_fingerprint`). A corrupt or
    mismatching cache file is recomputed and replaced; so is a prior over another bin list (the entry records
    :func:`fewcolor.color.bins.bins_id`, e.g. priors made before the switch to Zhang's released bins).
    """

    def compute() -> dict[str, torch.Tensor]:
        prior = compute_fn().detach().double().cpu()
        if prior.shape != (Q,) or not torch.isfinite(prior).all() or prior.sum() <= 0:
            raise ValueError(f"load_or_compute_prior({key!r}): compute_fn returned an invalid prior "
                             f"{tuple(prior.shape)}")
        return {"prior": prior / prior.sum()}

    entry_key = {"prior": key, "bins": bins_id()}
    return cached_tensors(prior_cache_path(key, cache_dir), entry_key, compute, refresh=refresh)["prior"].double()


# ------------------------------------------------------------------------------------- folder scans
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
    merged: dict[str, Mapping[str, Any]] = dict(load_scan_cache(root, settings))
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
