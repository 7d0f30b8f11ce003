"""Start a network from another checkpoint's weights wherever names and shapes match (``--init``).

Matching, per tensor of the target's state dict:

1. the same key with the same shape (e.g. ``generator.net.encoder...`` of the base colorizer into a U-Net
   family method built with ``encoder=efficientnet-lite0``);
2. otherwise the same key without its first component (``net.x`` ↔ ``generator.x``), if exactly one source
   tensor has that suffix and the shape agrees.

Buffers that describe the training data rather than the network (the ab prior and its rebalancing
weights) are loaded too when they match: they belong to the same colour space. Nothing is loaded silently:
the report lists what was loaded, what kept its initial value, and what was skipped for a shape mismatch.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import torch
from torch import nn

from fewcolor.io.checkpoint import CheckpointError, load_checkpoint

log = logging.getLogger(__name__)


@dataclass
class WarmStartReport:
    source: str
    loaded: list[str] = field(default_factory=list)
    shape_mismatch: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    def summary(self) -> str:
        total = len(self.loaded) + len(self.shape_mismatch) + len(self.kept)
        return (f"--init {self.source}: loaded {len(self.loaded)} of {total} tensors"
                f" ({len(self.shape_mismatch)} shape mismatches, {len(self.kept)} not in the source)")


def _tail(key: str) -> str:
    return key.split(".", 1)[1] if "." in key else key


def warm_start(module: nn.Module, path: str | os.PathLike[str]) -> WarmStartReport:
    """Copy matching tensors of the checkpoint at ``path`` into ``module`` (in place); see the module doc.

    Raises :class:`CheckpointError` naming the file when it cannot be read or shares no tensor with
    ``module`` (then it is the wrong checkpoint for this method).
    """
    tensors, meta = load_checkpoint(path)
    report = WarmStartReport(source=str(path))
    by_tail: dict[str, list[str]] = {}
    for key in tensors:
        by_tail.setdefault(_tail(key), []).append(key)
    target = module.state_dict()
    updates: dict[str, torch.Tensor] = {}
    for key, value in target.items():
        source_key = key if key in tensors else None
        if source_key is None:
            candidates = by_tail.get(_tail(key), [])
            source_key = candidates[0] if len(candidates) == 1 else None
        if source_key is None:
            report.kept.append(key)
        elif tensors[source_key].shape != value.shape:
            report.shape_mismatch.append(key)
        else:
            updates[key] = tensors[source_key].to(value.dtype)
            report.loaded.append(key)
    if not updates:
        method = meta.get("method", "?")
        raise CheckpointError(
            f"{path} (a {method!r} model) shares no tensor of matching name and shape with this network; "
            "give a checkpoint of the same architecture (e.g. the base model for an encoder=efficientnet-lite0 "
            "generator)"
        )
    module.load_state_dict(updates, strict=False)
    log.info(report.summary())
    for name, keys in (("loaded", report.loaded), ("shape mismatch", report.shape_mismatch),
                       ("kept initial value", report.kept)):
        if keys:
            log.info("  %s: %s", name, ", ".join(_compact(keys)))
    return report


def _compact(keys: list[str], limit: int = 12) -> list[str]:
    """Module prefixes of ``keys`` (three components), counted, for a readable log line."""
    groups: dict[str, int] = {}
    for k in keys:
        prefix = ".".join(k.split(".")[:3])
        groups[prefix] = groups.get(prefix, 0) + 1
    items = [f"{p} ({n})" for p, n in groups.items()]
    return items[:limit] + ([f"... {len(items) - limit} more"] if len(items) > limit else [])
