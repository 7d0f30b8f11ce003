"""An int8 copy of a memory's unit keys for fast approximate scoring (issue #18, item 5).

Each key row ``K[i]`` is stored as int8 codes ``c[i]`` and one scale ``s[i]`` (symmetric, per row:
``s[i] = max|K[i]| / 127`` rounded to bf16, ``c[i] = round(K[i] / s[i])``), a quarter of the fp32 bytes.
Scoring a batch of queries against all rows is ATen's fused int8-weight kernel
(``torch.ops.aten._weight_int8pack_mm``: bf16 activations × int8 rows × per-row scale), which is
vectorised for the AVX2 and AVX512 CPU capabilities. The scores are approximate (about ±2e-3 on a unit
dot product): :class:`fewcolor.nets.memory.ColorMemory` uses them only to pick candidates, then
re-ranks those exactly in fp32.

The kernel needs the key dimension to be a multiple of 16 (other sizes crash or give wrong numbers in
torch 2.13), so codes and queries are zero-padded up to one.

Why this and not bf16 keys or an inverted-file index: measured in docs/MEMOPAINTER.md, "Retrieval at
scale".
"""

from __future__ import annotations

import torch

#: CPU capabilities (``torch.backends.cpu.get_cpu_capability()``) on which the int8 kernel is vectorised
VECTORISED_CAPABILITIES = ("AVX2", "AVX512")
_PAD = 16  # the kernel's granularity along the key dimension
_CHUNK = 8192  # rows quantised at a time (bounds the temporary fp32 copy)


def int8_scan_available(device: torch.device) -> bool:
    """Whether :class:`Int8Keys` is fast here: a CPU tensor, a vectorised capability, the kernel present."""
    return (device.type == "cpu" and torch.backends.cpu.get_cpu_capability() in VECTORISED_CAPABILITIES
            and hasattr(torch.ops.aten, "_weight_int8pack_mm"))


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

    def __init__(self, keys: torch.Tensor) -> None:
        self.codes, self.scales = quantise_rows(keys)
        self.dim = int(keys.shape[1])
        self._stamp = self._stamp_of(keys)

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

    def scores(self, q: torch.Tensor) -> torch.Tensor:
        """Approximate ``q · K`` (B, m) in bf16 for queries (B, d)."""
        qb = q.detach().to(torch.bfloat16)
        if qb.shape[1] != self.codes.shape[1]:
            qb = torch.nn.functional.pad(qb, (0, self.codes.shape[1] - qb.shape[1]))
        return torch.ops.aten._weight_int8pack_mm(qb.contiguous(), self.codes, self.scales)
