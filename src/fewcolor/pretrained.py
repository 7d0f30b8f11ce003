"""The pretrained base colorizer that ships inside the package, when this build has one.

Imports nothing from fewcolor, so every layer may use it.
"""

from __future__ import annotations

from pathlib import Path

#: where a build of fewcolor puts its bundled base colorizer checkpoint
BUNDLED_MODEL = Path(__file__).resolve().parent / "weights" / "base.safetensors"


def bundled_model_path() -> Path | None:
    """``src/fewcolor/weights/base.safetensors`` when it exists in this installation, else ``None``."""
    return BUNDLED_MODEL if BUNDLED_MODEL.is_file() else None
