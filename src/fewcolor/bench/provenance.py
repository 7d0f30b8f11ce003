"""Where a benchmark number came from: the commit of the code and the machine it ran on."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import torch


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, cwd=cwd)


def git_commit(cwd: Path = Path(__file__).parent) -> str:
    """The short commit of ``cwd``'s checkout, ``+dirty`` when tracked files outside ``docs/`` (where
    this very table is written) differ from it, or ``unknown``."""
    try:
        out = _git(cwd, "rev-parse", "--short", "HEAD")
        dirty = _git(cwd, "status", "--porcelain", "--untracked-files=no", "--", ":(top)", ":(top,exclude)docs")
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "") if out.returncode == 0 else "unknown"
    except OSError:
        return "unknown"


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}{gpu}"
