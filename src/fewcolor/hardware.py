"""What this machine can do: which devices exist and which precision is fast on them.

bfloat16 autocast is a speed-up only where the hardware computes in bf16 natively: CUDA GPUs that
support it, and x86 CPUs with AVX-512-BF16 or AMX-BF16 (oneDNN's bf16 kernels). On an AVX2-only CPU
PyTorch emulates bf16, measured ~3x slower in training and ~90x slower per matmul than fp32, so
``auto`` picks fp32 there and an explicit ``bf16`` falls back to fp32 with one warning.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = [
    "PRECISIONS",
    "DeviceError",
    "Precision",
    "cpu_bf16_flags",
    "cpu_has_native_bf16",
    "cpu_vendor",
    "descriptor_precision",
    "int8_engine",
    "quantized_engine",
    "resolve_device",
    "resolve_precision",
]

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16")
#: what the frozen descriptor networks of the clustering can compute in (``fewcolor cluster --precision``)
DESCRIPTOR_CHOICES = ("auto", "fp32", "bf16", "int8")
#: quantized engines in order of preference: x86 (fbgemm + oneDNN, VNNI where present), then ARM's
_INT8_ENGINES = ("x86", "fbgemm", "qnnpack")
#: /proc/cpuinfo flags of native bf16 arithmetic (AVX-512-BF16 dot products, AMX bf16 tiles)
_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


class DeviceError(ValueError):
    """A device name that does not parse, or a device this machine does not have."""


def resolve_device(name: str | None = None) -> torch.device:
    """``name`` as a usable ``torch.device`` (default: CUDA when present, else CPU); raises :class:`DeviceError`."""
    if not name:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise DeviceError(f"--device {name!r} is not a device name; use cpu, cuda or cuda:N") from exc
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {name}: this PyTorch build sees no CUDA GPU; use --device cpu")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise DeviceError(f"--device {name}: only {count} CUDA device(s) here (cuda:0 to cuda:{count - 1})")
        return device
    if device.type == "mps":
        if not torch.backends.mps.is_available():
            raise DeviceError(f"--device {name}: Apple MPS is not available here; use --device cpu")
        return device
    raise DeviceError(f"--device {name}: fewcolor runs on cpu, cuda or mps, not {device.type}")


@functools.lru_cache(maxsize=8)
def cpu_bf16_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The native-bf16 flags the CPU reports (Linux /proc/cpuinfo; empty where it cannot be read).

    Read once per file: inference passes (e.g. MetalGAN's query embedding) ask on every call."""
    try:
        text = Path(cpuinfo).read_text(encoding="ascii", errors="replace")
    except OSError:
        return frozenset()
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(f for f in line.split(":", 1)[-1].split() if f in _BF16_FLAGS)
    return frozenset(flags)


@functools.lru_cache(maxsize=8)
def cpu_vendor(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The CPU's ``vendor_id`` (``GenuineIntel``, ``AuthenticAMD``...; empty where it cannot be read)."""
    try:
        text = Path(cpuinfo).read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""
    for line in text.splitlines():
        if line.startswith("vendor_id"):
            return line.split(":", 1)[-1].strip()
    return ""


def cpu_has_native_bf16(capability: str | None = None, flags: Iterable[str] | None = None) -> bool:
    """Whether the CPU computes bf16 natively: PyTorch's AVX-512 kernels and an AVX-512-BF16/AMX-BF16 flag.

    ``capability`` defaults to ``torch.backends.cpu.get_cpu_capability()``, ``flags`` to :func:`cpu_bf16_flags`.
    """
    capability = torch.backends.cpu.get_cpu_capability() if capability is None else capability
    present = cpu_bf16_flags() if flags is None else frozenset(flags)
    return capability.upper().startswith("AVX512") and bool(present & set(_BF16_FLAGS))


@dataclass(frozen=True)
class Precision:
    name: str  #: "fp32" or "bf16": what autocast will use
    reason: str  #: one line for the log: why this precision
    fell_back: bool = False  #: bf16 was asked for but the hardware would emulate it

    @property
    def bf16(self) -> bool:
        return self.name == "bf16"


def resolve_precision(requested: str, device: torch.device, native_cpu_bf16: bool | None = None,
                      fixed_by: str | None = None) -> Precision:
    """The precision to train in for ``requested`` (auto, fp32 or bf16) on ``device``.

    ``native_cpu_bf16`` defaults to :func:`cpu_has_native_bf16` (tests pass it explicitly). ``fixed_by``:
    why the caller, not the user, chose ``requested`` (e.g. "fine-tuning runs in fp32"); the reason then
    says so instead of "as asked".
    """
    if requested not in PRECISIONS:
        raise ValueError(f"--precision {requested!r}: choose one of {', '.join(PRECISIONS)}")
    if requested == "fp32":
        return Precision("fp32", "fp32 as asked" if fixed_by is None else f"fp32 ({fixed_by})")
    if device.type == "cuda":
        native = torch.cuda.is_bf16_supported()
        where = f"CUDA device {torch.cuda.get_device_name(device)}"
    elif device.type == "cpu":
        native = cpu_has_native_bf16() if native_cpu_bf16 is None else native_cpu_bf16
        where = f"this CPU ({torch.backends.cpu.get_cpu_capability()}, bf16 flags: " + (
            ", ".join(sorted(cpu_bf16_flags())) or "none") + ")"
    else:
        native, where = False, f"device {device}"
    if native:
        return Precision("bf16", f"bf16 autocast: {where} computes bf16 natively")
    if requested == "bf16":
        asked = "bf16 asked for" if fixed_by is None else f"bf16 ({fixed_by})"
        return Precision("fp32", f"{asked}, but {where} would emulate it (several times slower); training in fp32",
                         fell_back=True)
    return Precision("fp32", f"fp32: {where} has no native bf16")


def native_bf16(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` computes bf16 natively (what ``--precision auto`` picks): inference passes such as
    the cluster descriptors then run under bf16 autocast."""
    return resolve_precision("auto", torch.device(device)).bf16


@contextlib.contextmanager
def quantized_engine(name: str) -> Iterator[None]:
    """PyTorch's quantized engine is process-wide: set it for the block, then put the previous one back."""
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = name
    try:
        yield
    finally:
        torch.backends.quantized.engine = previous


def int8_engine() -> str | None:
    """The quantized engine this PyTorch build offers for int8 convolutions on the CPU, or None (also where its
    FX quantization API is gone: PyTorch deprecates ``torch.ao.quantization`` in favour of torchao)."""
    try:
        import torch.ao.quantization.quantize_fx  # the API fewcolor.backbones.int8 uses
    except ImportError:
        return None
    supported = torch.backends.quantized.supported_engines
    return next((e for e in _INT8_ENGINES if e in supported), None)


def descriptor_precision(requested: str = "auto") -> str:
    """What the clustering's descriptor pass (on the CPU) computes in for ``requested``.

    ``auto``: int8 where PyTorch has a quantized engine (about 2x bf16's rate with the same clusters,
    docs/PERFORMANCE.md), else bf16 where the CPU computes it natively, else fp32. An explicit ``bf16`` or
    ``int8`` the machine cannot do well falls back to fp32 with a warning.
    """
    if requested not in DESCRIPTOR_CHOICES:
        raise ValueError(f"descriptor precision {requested!r}: choose one of {', '.join(DESCRIPTOR_CHOICES)}")
    if requested == "auto":
        return "int8" if int8_engine() else "bf16" if native_bf16() else "fp32"
    if requested == "int8" and int8_engine() is None:
        log.warning("int8 descriptors asked for, but this PyTorch build has no quantized engine; using fp32")
        return "fp32"
    if requested == "bf16" and not native_bf16():
        log.warning("bf16 descriptors asked for, but this CPU would emulate bf16 (several times slower); using fp32")
        return "fp32"
    return requested
