"""Where fewcolor keeps its caches (converted weights, priors, datasets, scans, cluster tasks).

``$FEWCOLOR_HOME`` when set, else the platform cache: ``%LOCALAPPDATA%\\fewcolor`` on Windows,
``~/Library/Caches/fewcolor`` on macOS, ``$XDG_CACHE_HOME/fewcolor`` or ``~/.cache/fewcolor`` elsewhere.
Imports nothing from fewcolor, so every layer may use it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV_HOME = "FEWCOLOR_HOME"


def fewcolor_home() -> Path:
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "fewcolor"
