"""Keep the memory a training step frees for the next step (glibc's malloc on Linux).

glibc serves allocations above its mmap threshold (128 KiB at first, raised as large blocks are freed,
up to 32 MiB) with fresh ``mmap`` pages and trims the heap top above twice that threshold, so every
step hands some of its activation and gradient buffers back to the kernel and page-faults them in
again on the next one: in the unet cpu preset ~1,500–2,800 minor faults per step with the default
setting, at about 1.2 µs each on the project's AVX-512 machine (docs/PERFORMANCE.md). A training process reuses
the same sizes step after step, so :func:`retain_freed_memory` raises both thresholds: large blocks come
from the heap and stay there once freed. The cost is that the process keeps its peak heap until it
exits (it would grow to that peak at every step anyway).

PyTorch's CPU tuning guides reach the same effect with jemalloc or tcmalloc through ``LD_PRELOAD``,
which a ``pip install`` cannot set up; ``mallopt`` does it from inside the process.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
import sys

__all__ = ["OPT_OUT", "RETAIN_BYTES", "retain_freed_memory"]

log = logging.getLogger(__name__)

#: ``mallopt`` parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: blocks up to this size come from the heap, and this much free heap top is kept rather than trimmed
RETAIN_BYTES = 1 << 30
#: the largest mmap threshold that every glibc accepts on 64-bit systems
_OLD_GLIBC_MMAP_MAX = 32 << 20
#: the environment variable that turns the retention off (value ``0``)
OPT_OUT = "FEWCOLOR_RETAIN_MEMORY"


def retain_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds to :data:`RETAIN_BYTES` for the rest of the process.

    Returns whether glibc took the setting; on other C libraries and other systems nothing changes
    (``False``), nor with ``FEWCOLOR_RETAIN_MEMORY=0`` in the environment (:data:`OPT_OUT`). Where glibc
    refuses an mmap threshold above 32 MiB (``HEAP_MAX_SIZE / 2`` on 64-bit systems, in some releases), that
    maximum is taken.
    The setting lasts as long as the process (a Python caller that trains in process keeps it after
    :func:`fewcolor.train.loop.train` returns); calling it again is harmless.
    """
    if os.environ.get(OPT_OUT) == "0":
        return False
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process already runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    mmap_took = any(mallopt(_M_MMAP_THRESHOLD, size) == 1 for size in (RETAIN_BYTES, _OLD_GLIBC_MMAP_MAX))
    trim_took = mallopt(_M_TRIM_THRESHOLD, RETAIN_BYTES) == 1
    if not (mmap_took and trim_took):
        log.debug("glibc's mallopt refused a retention threshold (mmap: %s, trim: %s)", mmap_took, trim_took)
    return mmap_took and trim_took
