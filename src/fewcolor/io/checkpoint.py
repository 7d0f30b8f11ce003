"""The one checkpoint format: safetensors tensors + JSON metadata in the safetensors header.

Loading never unpickles. A file that is not safetensors, or a safetensors file not written by
fewcolor, raises :class:`CheckpointError` naming the file and what is wrong.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from fewcolor.io.atomic import atomic_path

METADATA_KEY = "fewcolor"
FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint file could not be read or is not a fewcolor checkpoint."""


def save_checkpoint(
    path: str | os.PathLike[str], tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, Any]
) -> Path:
    """Write ``tensors`` and JSON-serialisable ``metadata`` atomically to ``path``."""
    from fewcolor.version import __version__

    meta = {"format_version": FORMAT_VERSION, "fewcolor_version": __version__, **metadata}
    try:
        header = json.dumps(meta, sort_keys=True)
    except TypeError as exc:
        raise CheckpointError(f"checkpoint metadata for {path} is not JSON-serialisable: {exc}") from exc
    # safetensors refuses shared or non-contiguous storage: give it private contiguous copies.
    clean = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(clean, str(tmp), metadata={METADATA_KEY: header})
    return Path(path)


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON metadata of a checkpoint, without reading its tensors."""
    return _open(path, tensors=False)[1]


def load_checkpoint(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read ``(tensors, metadata)``; raises :class:`CheckpointError` with the file named."""
    return _open(path, tensors=True, device=str(device))


def _open(
    path: str | os.PathLike[str], tensors: bool, device: str = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {p}")
    try:
        with safe_open(str(p), framework="pt", device=device) as f:
            header = (f.metadata() or {}).get(METADATA_KEY)
            data = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no __iter__ if tensors else {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{p} is not a readable safetensors checkpoint ({exc}); fewcolor never unpickles "
            "files, so .pt/.pth pickles must be converted first"
        ) from exc
    if header is None:
        raise CheckpointError(f"{p} is a safetensors file but not a fewcolor checkpoint (no metadata)")
    try:
        meta = json.loads(header)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{p}: checkpoint metadata is corrupt ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{p}: unsupported checkpoint format {meta.get('format_version')!r}")
    return data, meta
