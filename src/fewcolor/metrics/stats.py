"""Summary statistics for per-image metric values."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.special import stdtrit


def mean_ci95(values: Sequence[float]) -> dict[str, float | int | None]:
    """Mean, sample std and the 95 % confidence interval of the mean (Student's t, n − 1 dof).

    Non-finite values (e.g. PSNR = +inf for identical images) make the mean non-finite; the interval is
    then None. With one value the interval is None too.
    """
    arr = np.asarray(list(values), dtype=np.float64)
    n = int(arr.size)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "ci95_low": None, "ci95_high": None}
    mean = float(arr.mean())
    if n == 1 or not np.all(np.isfinite(arr)):
        return {"n": n, "mean": mean, "std": None, "ci95_low": None, "ci95_high": None}
    std = float(arr.std(ddof=1))
    # Student's t quantile: stdtrit is what scipy.stats.t.ppf evaluates (scipy.stats takes ~2 s to import)
    half = float(stdtrit(n - 1, 0.975)) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "ci95_low": mean - half, "ci95_high": mean + half}
