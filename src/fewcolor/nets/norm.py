"""Normalisation layers by name, shared by the generators and discriminators."""

from __future__ import annotations

from torch import nn


def make_norm(kind: str, channels: int) -> nn.Module:
    """A 2-D normalisation layer by name: ``batch``, ``instance`` (affine) or ``none``."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; use batch, instance or none")
