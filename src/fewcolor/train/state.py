"""Training state as safetensors + JSON: model, optimisers, RNGs and step, never pickled.

Optimiser state dicts are flattened: tensors become ``optim.<name>.state.<param>.<key>`` entries and
everything else (scalars, param groups) goes into the JSON metadata.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fewcolor.io.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def _flatten_optimizer(name: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, pstate in sd["state"].items():
        for key, value in pstate.items():
            if torch.is_tensor(value):
                tensors[f"optim.{name}.state.{pid}.{key}"] = value
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return tensors, {"scalars": scalars, "param_groups": sd["param_groups"]}


def _unflatten_optimizer(name: str, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> dict:
    state: dict[int, dict[str, Any]] = {}
    prefix = f"optim.{name}.state."
    for key, value in tensors.items():
        if key.startswith(prefix):
            pid, field = key[len(prefix) :].split(".", 1)
            state.setdefault(int(pid), {})[field] = value
    for pid, fields in meta["scalars"].items():
        state.setdefault(int(pid), {}).update(fields)
    return {"state": state, "param_groups": meta["param_groups"]}


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The global RNG states (torch, CUDA, numpy, random) as tensors + JSON."""
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    np_state: tuple[Any, ...] = tuple(np.random.get_state(legacy=True))
    tensors["rng.numpy.keys"] = torch.from_numpy(np.asarray(np_state[1], dtype=np.int64))
    py_version, py_internal, py_gauss = random.getstate()
    meta = {
        "numpy": [np_state[0], int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": [py_version, list(py_internal), py_gauss],
    }
    return tensors, meta


def set_rng_state(tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    if torch.cuda.is_available():
        states = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
        if states:
            torch.cuda.set_rng_state_all(states)
    name, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((name, tensors["rng.numpy.keys"].numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = meta["python"]
    random.setstate((version, tuple(internal), gauss))


def save_training_state(
    path: str | Path,
    method: torch.nn.Module,
    optimizers: Mapping[str, torch.optim.Optimizer],
    step: int,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Everything needed to continue training exactly: weights, buffers, optimisers, RNGs, step."""
    tensors = {f"model.{k}": v for k, v in method.state_dict().items()}
    optim_meta = {}
    for name, opt in optimizers.items():
        t, m = _flatten_optimizer(name, opt)
        tensors.update(t)
        optim_meta[name] = m
    rng_t, rng_m = rng_state()
    tensors.update(rng_t)
    meta = {"kind": "training_state", "step": int(step), "optimizers": optim_meta, "rng": rng_m, **(extra or {})}
    return save_checkpoint(path, tensors, meta)


def load_training_state(
    path: str | Path,
    method: torch.nn.Module,
    optimizers: Mapping[str, torch.optim.Optimizer],
    restore_rng: bool = True,
) -> dict[str, Any]:
    """Restore what :func:`save_training_state` wrote; returns the metadata (``step`` etc.)."""
    tensors, meta = load_checkpoint(path)
    if meta.get("kind") != "training_state":
        raise CheckpointError(f"{path} is not a training-state checkpoint (kind={meta.get('kind')!r})")
    model_sd = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        method.load_state_dict(model_sd, strict=True)
        missing = sorted(set(optimizers) - set(meta["optimizers"]))
        if missing:
            raise CheckpointError(f"{path} has no state for optimiser(s) {missing}")
        for name, opt in optimizers.items():
            opt.load_state_dict(_unflatten_optimizer(name, tensors, meta["optimizers"][name]))
        if restore_rng:
            set_rng_state(tensors, meta["rng"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{path} does not fit this method and its optimisers "
                              f"({type(exc).__name__}: {str(exc)[:200]})") from exc
    return meta
