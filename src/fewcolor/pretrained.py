"""The bundled base model: the checkpoint ``fewcolor adapt`` and the API start from when no model is named.

It ships inside the package as ``fewcolor/weights/base.safetensors``. Imports nothing from fewcolor, so
every layer may use it.
"""

from __future__ import annotations

from pathlib import Path

#: where the bundled base model lives inside the installed package
BUNDLED_MODEL = Path(__file__).resolve().parent / "weights" / "base.safetensors"


def bundled_model_path() -> Path | None:
    """The bundled base model's path, or ``None`` when this installation has none."""
    return BUNDLED_MODEL if BUNDLED_MODEL.is_file() else None


def require_bundled_model(instead: str) -> Path:
    """The bundled base model's path; without one, ``FileNotFoundError`` naming the file and ``instead``
    (what the caller can do: e.g. "name a checkpoint: fewcolor adapt MODEL ...")."""
    path = bundled_model_path()
    if path is None:
        raise FileNotFoundError(f"this installation has no bundled base model ({BUNDLED_MODEL}); {instead}")
    return path
