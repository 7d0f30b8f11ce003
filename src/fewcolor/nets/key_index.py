"""An int8 copy of a memory's unit keys for fast approximate scoring (issue #18, item 5).

Each key row ``K[i]`` is stored as int8 codes ``c[i]`` and one scale ``s[i]`` (symmetric, per row:
``s[i] = max|K[i]| / 127`` rounded to bf16, ``c[i] = round(K[i] / s[i])``), a quarter of the fp32 bytes.
The scores are approximate (about ±3e-3 on a unit dot product): :class:`fewcolor.nets.memory.ColorMemory`
uses them only to pick candidates, then re-ranks those exactly in fp32.

Two kernels score a batch of queries against all rows, both vectorised on x86 (chosen by
:func:`scan_kernel`):

- ``fbgemm``: PyTorch's dynamically quantized linear (``torch.ops.quantized.linear_dynamic``: the query
  quantized per tensor to uint8 on the fly, then fbgemm's int8 GEMM against the codes packed once by
  ``linear_prepack``). On the AVX2-only host it scanned 100k × 512 in 1.9 ms per single query against
  4.6–4.8 ms for ``int8pack`` (docs/PERFORMANCE.md, "Retrieval on AVX2"). A packed matrix cannot change a
  row in place: rows written since the last pack are scored from their dequantised codes (kept until the
  next write) and overwrite their columns, and the whole matrix is packed again (~0.7 s at 100k × 512)
  once more than :data:`REPACK_AFTER` rows are pending — cheap for a memory that is mostly read (inference;
  training's memories are small and searched exactly). The query is quantized per call, so with fbgemm a
  query's approximate scores depend slightly (≤ ~4e-3) on the other queries of its batch; the exact
  re-rank makes that matter only for near-ties at the candidate cut-off.
- ``int8pack``: ATen's fused int8-weight kernel (``torch.ops.aten._weight_int8pack_mm``: bf16 queries ×
  int8 rows × per-row scale), where the quantized linear is missing (builds without fbgemm, or once
  PyTorch drops ``torch.ops.quantized``). It needs the key dimension to be a multiple of 16 (other sizes
  crash or give wrong numbers in torch 2.13), so codes and queries are zero-padded up to one.

Why int8 and not bf16 keys or an inverted-file index: measured in docs/MEMOPAINTER.md, "Retrieval at scale".
"""

from __future__ import annotations

import warnings

import torch

from fewcolor.hardware import quantized_engine

#: CPU capabilities (``torch.backends.cpu.get_cpu_capability()``) on which the int8 kernels are vectorised
VECTORISED_CAPABILITIES = ("AVX2", "AVX512")
#: quantized engines whose dynamic linear is fbgemm's int8 GEMM, in order of preference
_FBGEMM_ENGINES = ("x86", "fbgemm")
#: rows written since the last pack beyond which the packed matrix is rebuilt (below, they are scored apart)
REPACK_AFTER = 1024
_PAD = 16  # int8pack's granularity along the key dimension
_CHUNK = 8192  # rows quantised at a time (bounds the temporary fp32 copy)


def has_int8pack() -> bool:
    """Whether ATen has the fused int8-weight kernel (vectorised on AVX2/AVX512 only)."""
    return hasattr(torch.ops.aten, "_weight_int8pack_mm")


def fbgemm_engine() -> str | None:
    """The quantized engine whose dynamic linear is fbgemm's int8 GEMM, or None where the build has none."""
    ops = getattr(torch.ops, "quantized", None)
    if ops is None or not hasattr(ops, "linear_dynamic") or not hasattr(ops, "linear_prepack"):
        return None
    return next((e for e in _FBGEMM_ENGINES if e in torch.backends.quantized.supported_engines), None)


def scan_kernel(device: torch.device) -> str | None:
    """The kernel :class:`Int8Keys` scores with here (``fbgemm`` or ``int8pack``), or None where neither is
    vectorised (not a CPU tensor, an ARM or scalar CPU): the memory then searches exactly."""
    if device.type != "cpu" or torch.backends.cpu.get_cpu_capability() not in VECTORISED_CAPABILITIES:
        return None
    if fbgemm_engine() is not None:
        return "fbgemm"
    return "int8pack" if has_int8pack() else None


def int8_scan_available(device: torch.device) -> bool:
    """Whether :class:`Int8Keys` is fast here: a CPU tensor, a vectorised capability, a kernel present."""
    return scan_kernel(device) is not None


def _padded(d: int) -> int:
    return -(-d // _PAD) * _PAD


def quantise_rows(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Int8 codes (n, d padded to 16) and bf16 scales (n,) of float rows (n, d)."""
    n, d = rows.shape
    scales = (rows.abs().amax(dim=1).clamp_min(1e-12) / 127).to(torch.bfloat16)
    codes = torch.zeros(n, _padded(d), dtype=torch.int8, device=rows.device)
    for a in range(0, n, _CHUNK):
        block = rows[a : a + _CHUNK].float() / scales[a : a + _CHUNK, None].float()
        codes[a : a + _CHUNK, :d] = block.round_().clamp_(-127, 127).to(torch.int8)
    return codes, scales


class Int8Keys:
    """Int8 codes of a key matrix, tagged with the keys' identity and in-place version counter.

    :meth:`matches` says whether the codes still describe ``keys``: a different tensor (re-allocated,
    moved to another device) or any in-place change through autograd-visible ops (``keys[i] = ...``,
    ``copy_``, ``load_state_dict``) makes them stale. Writes made through ``.data`` or a collective
    (``torch.distributed.broadcast``) do not bump the counter: follow them with
    ``torch.autograd.graph.increment_version(keys)``, as :mod:`fewcolor.meta.distributed` does.
    """

    def __init__(self, keys: torch.Tensor, kernel: str | None = None) -> None:
        self.kernel = kernel or scan_kernel(keys.device) or "int8pack"
        if self.kernel not in ("fbgemm", "int8pack"):
            raise ValueError(f"int8 scan kernel {self.kernel!r}: choose fbgemm or int8pack")
        self.codes, self.scales = quantise_rows(keys)
        self.dim = int(keys.shape[1])
        self._stamp = self._stamp_of(keys)
        self._packed: object | None = None  # fbgemm's packed codes, built on the first scan
        self._pending: set[int] = set()  # rows re-quantised since the codes were packed
        self._overlay: tuple[torch.Tensor, torch.Tensor] | None = None  # (rows, their dequantised keys)

    @staticmethod
    def _stamp_of(keys: torch.Tensor) -> tuple[int, int, tuple[int, ...]]:
        return keys.data_ptr(), keys._version, tuple(keys.shape)

    def matches(self, keys: torch.Tensor) -> bool:
        return self._stamp == self._stamp_of(keys)

    def refresh(self, keys: torch.Tensor, slot: int) -> None:
        """Re-quantise row ``slot`` after ``keys[slot]`` was written, and take the keys' new stamp."""
        codes, scales = quantise_rows(keys[slot : slot + 1])
        self.codes[slot] = codes[0]
        self.scales[slot] = scales[0]
        self._stamp = self._stamp_of(keys)
        if self._packed is not None:
            self._pending.add(int(slot))
            self._overlay = None

    def scores(self, q: torch.Tensor) -> torch.Tensor:
        """Approximate ``q · K`` (B, m) for queries (B, d): fp32 from ``fbgemm``, bf16 from ``int8pack``."""
        q = q.detach()
        if q.shape[1] != self.codes.shape[1]:
            q = torch.nn.functional.pad(q, (0, self.codes.shape[1] - q.shape[1]))
        if self.kernel == "int8pack":
            return torch.ops.aten._weight_int8pack_mm(q.to(torch.bfloat16).contiguous(), self.codes, self.scales)
        return self._fbgemm_scores(q.float().contiguous())

    def _fbgemm_scores(self, q: torch.Tensor) -> torch.Tensor:
        engine = fbgemm_engine()
        if engine is None:
            raise RuntimeError("this PyTorch build has no fbgemm quantized linear: use kernel='int8pack'")
        with quantized_engine(engine):
            if self._packed is None or len(self._pending) > REPACK_AFTER:
                self._packed, self._pending, self._overlay = self._pack(), set(), None
            out = torch.ops.quantized.linear_dynamic(q, self._packed, True)
        if self._pending:
            if self._overlay is None:  # dequantised once per change of the pending set, not per scan
                rows = torch.tensor(sorted(self._pending), dtype=torch.long)
                self._overlay = rows, self.codes[rows].float() * self.scales[rows, None].float()
            rows, keys = self._overlay
            # the written rows' scores from their current codes (what a fresh pack would hold)
            out[:, rows] = q @ keys.T
        return out

    def _pack(self) -> object:
        n = self.codes.shape[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # quantized tensors are deprecated, not gone (torch 2.13)
            weight = torch._make_per_channel_quantized_tensor(
                self.codes, self.scales.double(), torch.zeros(n, dtype=torch.long), 0)
            return torch.ops.quantized.linear_prepack(weight, None)
