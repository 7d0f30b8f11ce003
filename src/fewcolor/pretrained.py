"""The model shipped inside the package, when there is one."""

from __future__ import annotations

from pathlib import Path

#: where a bundled base model lives inside the installed package
BUNDLED_MODEL = Path(__file__).resolve().parent / "weights" / "base.safetensors"


def bundled_model_path() -> Path | None:
    """The bundled base model's checkpoint, or ``None`` when this install ships none."""
    return BUNDLED_MODEL if BUNDLED_MODEL.is_file() else None
