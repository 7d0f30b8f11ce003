"""Method registry: ``@register_method`` on a class in ``fewcolor/methods/*.py`` makes it trainable,
loadable and benchmarkable by name. Modules in this package are imported on first look-up, so a new
method is one new file."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import warnings
from collections.abc import Mapping
from typing import Any

from fewcolor.methods.base import Method
from fewcolor.methods.options import ConfigError, InferenceOption, option_table

_REGISTRY: dict[str, type[Method]] = {}
_NOT_METHOD_MODULES = {"base", "bin_classifier", "options", "registry"}
_discovered = False


def register_method(cls: type[Method]) -> type[Method]:
    if not cls.name:
        raise ValueError(f"{cls.__qualname__} needs a non-empty `name`")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"method name {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    import fewcolor.methods as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name not in _NOT_METHOD_MODULES and not info.name.startswith("_"):
            importlib.import_module(f"fewcolor.methods.{info.name}")
    _discovered = True


def available_methods() -> dict[str, type[Method]]:
    _discover()
    return dict(sorted(_REGISTRY.items()))


def unregister_method(name: str) -> None:
    """Remove a registered method (for tests that register a toy one)."""
    _REGISTRY.pop(name, None)


def inference_option_table() -> dict[str, tuple[InferenceOption, list[str]]]:
    """Every registered method's inference options: name -> (declaration, methods that take it).

    Front ends (the CLI's ``colorize``, a web page, an exporter) build their controls from this.
    """
    return option_table(available_methods())


def get_method_class(name: str) -> type[Method]:
    methods = available_methods()
    if name not in methods:
        raise KeyError(f"unknown method {name!r}; registered methods: {', '.join(methods)}")
    return methods[name]


def with_run_seed(name: str, overrides: Mapping[str, Any] | None, seed: int) -> dict[str, Any]:
    """``overrides`` with the config's ``seed`` set to the run's ``seed`` unless they set it themselves (``--set
    M.seed=N``): a run's seed must reach the random choices the method makes itself (cGAN's gradient-penalty
    ε, MetalGAN's task batches and K-means, MemoPainter's memory, Iizuka's K-means, the base prior's sample),
    not only the initial weights and the data order."""
    values = dict(overrides or {})
    if "seed" in {f.name for f in dataclasses.fields(get_method_class(name).Config)}:
        values.setdefault("seed", int(seed))
    return values


def build_method(name: str, preset: str | None = None, overrides: Mapping[str, Any] | None = None) -> Method:
    """A new method from a preset and overrides; a config that builds no usable network raises ConfigError."""
    cls = get_method_class(name)
    config = cls.make_config(preset, overrides)
    given = ", ".join(f"{k}={v!r}" for k, v in (overrides or {}).items()) or "no overrides"
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Initializing zero-element tensors")  # reported below
            method = cls(config)
    except (ValueError, TypeError, RuntimeError, ZeroDivisionError) as exc:
        raise ConfigError(f"{name} (preset {preset or 'paper'}, {given}) builds no network: {exc}") from exc
    empty = [n for n, p in method.named_parameters() if p.numel() == 0]
    if empty:
        raise ConfigError(f"{name} (preset {preset or 'paper'}, {given}) gives empty layers such as {empty[0]}; "
                          "a channel count, width or depth is 0")
    return method


def save_method(method: Method, path: Any, step: int = 0, extra: Mapping[str, Any] | None = None) -> Any:
    """Save a method's weights and buffers with its name, config and normalisation."""
    import dataclasses

    from fewcolor.color.normalize import NORMALIZATION
    from fewcolor.io.checkpoint import save_checkpoint

    meta = {
        "kind": "model",
        "method": method.name,
        "config": dataclasses.asdict(method.config),
        "normalization": NORMALIZATION,
        "step": int(step),
        "method_extra": method.extra_metadata(),
        **(extra or {}),
    }
    return save_checkpoint(path, method.state_dict(), meta)


def load_method(path: Any, device: Any = "cpu") -> Method:
    """Rebuild a method from a checkpoint written by :func:`save_method`."""
    from fewcolor.color.normalize import NORMALIZATION
    from fewcolor.io.checkpoint import CheckpointError, load_checkpoint

    tensors, meta = load_checkpoint(path)
    if meta.get("kind") != "model":
        raise CheckpointError(f"{path} is a {meta.get('kind')!r} checkpoint, not a model")
    if meta.get("normalization") != NORMALIZATION:
        raise CheckpointError(f"{path} uses normalisation {meta.get('normalization')}, expected {NORMALIZATION}")
    try:
        cls = get_method_class(meta.get("method", "(none)"))
        method = cls(cls.make_config(None, meta.get("config", {})))
        method.load_extra_metadata(meta.get("method_extra", {}))
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: its metadata does not build a method ({exc}); the file was damaged "
                              "or written by another version") from exc
    missing, unexpected = method.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not match method {meta['method']!r}: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    method.checkpoint_step = int(meta.get("step", 0))
    return method.to(device).eval()
