"""The one checkpoint format: safetensors tensors + JSON metadata in the safetensors header.

Loading never unpickles. A file that is not safetensors, or a safetensors file not written by
fewcolor, raises :class:`CheckpointError` naming the file and what is wrong. So does a checkpoint
whose tensors no longer match the SHA-256 written into its metadata (flipped bytes), one holding a
NaN or infinite value in a floating-point tensor, and one whose metadata fields have the wrong types.
"""

from __future__ import annotations

import hashlib
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
CHECKSUM_KEY = "tensors_sha256"

# Types of the metadata fields fewcolor writes (bool is refused where an int is expected).
_FIELD_TYPES: dict[str, type] = {
    "format_version": int, "fewcolor_version": str, "kind": str, "method": str, "config": dict,
    "normalization": dict, "step": int, "method_extra": dict, "optimizers": dict, "rng": dict,
    CHECKSUM_KEY: str,
}


class CheckpointError(RuntimeError):
    """A checkpoint file could not be read or is not a fewcolor checkpoint."""


def save_checkpoint(
    path: str | os.PathLike[str], tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, Any]
) -> Path:
    """Write ``tensors`` and JSON-serialisable ``metadata`` atomically and durably (fsync) to ``path``."""
    from fewcolor.version import __version__

    # safetensors refuses shared or non-contiguous storage: give it private contiguous copies.
    clean = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    meta = {"format_version": FORMAT_VERSION, "fewcolor_version": __version__, **metadata,
            CHECKSUM_KEY: tensors_sha256(clean)}
    try:
        header = json.dumps(meta, sort_keys=True)
    except TypeError as exc:
        raise CheckpointError(f"checkpoint metadata for {path} is not JSON-serialisable: {exc}") from exc
    with atomic_path(path, durable=True) as tmp:
        save_file(clean, str(tmp), metadata={METADATA_KEY: header})
    return Path(path)


def tensors_sha256(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        digest.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def nonfinite_tensors(tensors: Mapping[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors holding a NaN or an infinity."""
    return [name for name, t in sorted(tensors.items())
            if (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t).all())]


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON metadata of a checkpoint, without reading its tensors."""
    return _open(path, tensors=False)[1]


def load_checkpoint(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read ``(tensors, metadata)``; raises :class:`CheckpointError` with the file named."""
    return _open(path, tensors=True, device=str(device))


def _unreadable_hint(p: Path) -> str:
    """The likely fix for a file that safetensors cannot open, from what the file is."""
    if p.suffix.lower() in (".pt", ".pth", ".ckpt", ".bin", ".pkl"):
        return "fewcolor never unpickles files, so .pt/.pth pickles must be converted first"
    if p.stat().st_size == 0:
        return "the file is empty: write or copy it again"
    if p.suffix.lower() == ".safetensors":
        return "it may be cut short (an interrupted copy or download): copy it again"
    return "give a .safetensors model written by fewcolor (train, adapt) or `base` for the bundled one"


def _open(
    path: str | os.PathLike[str], tensors: bool, device: str = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {p}")
    try:
        with safe_open(str(p), framework="pt", device=device) as f:
            header = (f.metadata() or {}).get(METADATA_KEY)
            data = {k: f.get_tensor(k) for k in f.keys()} if tensors else {}  # noqa: SIM118 - no __iter__
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{p} is not a readable safetensors checkpoint ({exc}); {_unreadable_hint(p)}") from exc
    if header is None:
        raise CheckpointError(f"{p} is a safetensors file but not a fewcolor checkpoint (no metadata)")
    try:
        meta = json.loads(header)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{p}: checkpoint metadata is corrupt ({exc})") from exc
    if not isinstance(meta, dict):
        raise CheckpointError(f"{p}: checkpoint metadata is corrupt (a JSON {type(meta).__name__}, not an object)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{p}: unsupported checkpoint format {meta.get('format_version')!r}")
    _check_field_types(p, meta)
    if tensors:
        _check_tensors(p, data, meta)
    return data, meta


def _check_field_types(path: Path, meta: Mapping[str, Any]) -> None:
    for key, expected in _FIELD_TYPES.items():
        if key not in meta:
            continue
        value = meta[key]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise CheckpointError(
                f"{path}: metadata field {key!r} should be a JSON {_JSON_NAMES[expected]}, got "
                f"{json.dumps(value)[:60]}; the file was damaged or edited, restore it or retrain"
            )
    if meta.get("step", 0) < 0:
        raise CheckpointError(f"{path}: metadata field 'step' is negative ({meta['step']}); the file was damaged")


_JSON_NAMES = {int: "integer", str: "string", dict: "object"}


def _check_tensors(path: Path, data: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> None:
    expected = meta.get(CHECKSUM_KEY)
    if expected is not None and tensors_sha256(data) != expected:
        raise CheckpointError(
            f"{path}: the tensors do not match the checksum in the metadata (the file was corrupted on "
            "disk or in transfer); restore it from a copy or retrain"
        )
    bad = nonfinite_tensors(data)
    if bad:
        raise CheckpointError(
            f"{path}: {len(bad)} tensor(s) hold NaN or infinite values, e.g. {', '.join(bad[:3])}; "
            "the model diverged before it was saved: use an earlier checkpoint or retrain"
        )
