"""An on-disk cache of adapted networks, so a test-time adaptation is paid once, not once per process.

MetalGAN adapts a copy of its generator to each query's cluster before colorizing it (this project's
extension, not the paper's; tens of seconds on a laptop CPU at the ``cpu`` preset). The result depends
only on the model's weights and config, the cluster, the step count and the seed, so it is stored under
``FEWCOLOR_HOME/adapted/<key>.safetensors`` and reused by every later ``colorize`` call. The key hashes
the model's full state (weights and buffers, whichever file they came from) with the rest, so a retrained
or different model never hits an old entry. A corrupt or foreign entry is ignored (and rewritten); a
read-only home only costs the reuse.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fewcolor.data.cache import cache_file, load_tensors, save_tensors

log = logging.getLogger(__name__)

FOLDER = "adapted"


def adaptation_key(model: nn.Module, **facts: Any) -> str:
    """A hex digest of ``model``'s state (every parameter and buffer, by name, dtype, shape and bytes) and
    the JSON-serialisable ``facts`` (cluster, steps, seed, config...)."""
    h = hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode())
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:32]


def cache_path(key: str) -> Path:
    """``FEWCOLOR_HOME/adapted/<key>.safetensors`` (the keyed-tensor cache of :mod:`fewcolor.data.cache`)."""
    return cache_file(FOLDER, key)


def load_cached(key: str, into: nn.Module) -> bool:
    """Load the cached state for ``key`` into ``into``; ``False`` when there is none (or it does not fit)."""
    hit = load_tensors(cache_path(key), key)
    if hit is None:
        return False
    try:
        into.load_state_dict(hit[0])
    except RuntimeError as exc:
        log.warning("ignoring the adaptation cache entry %s (%s)", cache_path(key), exc)
        return False
    return True


def store(key: str, module: nn.Module, facts: dict[str, Any]) -> Path | None:
    """Write ``module``'s state as the cache entry for ``key`` (atomic); ``None``, with a warning, when the
    cache folder is not writable (the adaptation is then simply not reused)."""
    return save_tensors(cache_path(key), module.state_dict(), key, {"facts": facts})
