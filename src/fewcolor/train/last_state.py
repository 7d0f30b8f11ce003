"""A run's latest training state on disk: ``last.safetensors`` and the one before it.

Each save first moves the current ``last`` to ``last.prev`` and then writes the new one (atomically and
durably, :func:`fewcolor.io.checkpoint.save_checkpoint`). A resume takes ``last`` when it reads back whole
(checksum and all) and otherwise falls back to ``last.prev``, saying so: a host crash in the middle of a
save, or a damaged disk block, then costs one checkpoint interval instead of the whole run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from fewcolor.io.checkpoint import CheckpointError, load_checkpoint
from fewcolor.train.state import save_training_state

log = logging.getLogger(__name__)

LAST_NAME = "last.safetensors"
PREVIOUS_NAME = "last.prev.safetensors"


def previous_of(last: Path) -> Path:
    return last.with_name(PREVIOUS_NAME)


def has_training_state(last: Path) -> bool:
    """Whether the run folder of ``last`` holds a state to resume (``last`` or the one before it)."""
    return last.exists() or previous_of(last).exists()


def save_keeping_previous(last: Path, method: torch.nn.Module, optimizers: Mapping[str, torch.optim.Optimizer],
                          step: int, extra: Mapping[str, Any] | None = None) -> Path:
    """:func:`~fewcolor.train.state.save_training_state` to ``last``, the state it held kept as ``last.prev``."""
    if last.exists():
        os.replace(last, previous_of(last))
    return save_training_state(last, method, optimizers, step, extra)


def resumable_state(last: Path) -> Path:
    """``last`` when it reads back whole, else ``last.prev`` (with a warning naming what was wrong with
    ``last``); :class:`CheckpointError` naming both when neither does."""
    try:
        load_checkpoint(last)
        return last
    except CheckpointError as exc:
        damage = str(exc)
    previous = previous_of(last)
    if not previous.exists():
        raise CheckpointError(damage)
    try:
        meta = load_checkpoint(previous)[1]
    except CheckpointError as exc:
        raise CheckpointError(f"{damage}; the one before it cannot be read either ({exc})") from exc
    log.warning("%s; resuming from the checkpoint before it, %s (step %s)", damage, previous, meta.get("step"))
    return previous
