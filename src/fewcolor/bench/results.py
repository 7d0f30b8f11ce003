"""What a benchmark run produced per method and seed, and its aggregation (mean ± 95 % CI)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from fewcolor.metrics.stats import mean_ci95

#: metrics shown in the markdown table: (key in evaluate's aggregate / set level, column title, better)
TABLE_METRICS = (
    ("lpips", "LPIPS↓"),
    ("fid", "FID↓"),
    ("psnr", "PSNR↑"),
    ("ssim", "SSIM↑"),
    ("delta_e2000", "ΔE00↓"),
    ("cf_hs_pred", "CF"),
    ("delta_cf_hs", "ΔCF↓"),
)



@dataclass
class SeedResult:
    seed: int
    per_image: list[dict[str, Any]]
    set_level: dict[str, Any]
    adaptation: str
    train_steps: int
    train_seconds: float
    eval_seconds: float


@dataclass
class MethodResult:
    method: str  #: the label in the table: the method's name, or ``name@preset`` for a per-method preset
    preset: str | None
    seeds: list[SeedResult] = field(default_factory=list)
    #: (query name, grey input, truth, prediction) of the first queries of seed 0
    gallery: list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor]] = field(default_factory=list)


def mean_of(values: Sequence[Any]) -> float | None:
    vals = [float(v) for v in values if isinstance(v, (int, float))]
    return sum(vals) / len(vals) if vals else None


def smallest_fid_set(set_levels: Sequence[dict[str, Any]]) -> int | None:
    """The smallest number of images one of these FID values was computed on (None: no FID among them)."""
    sizes = [int(s["set_images"]) for s in set_levels
             if s.get("fid") is not None and s.get("set_images") is not None]
    return min(sizes) if sizes else None


def summarize(result: MethodResult) -> dict[str, Any]:
    """Mean ± 95 % CI over every query of every seed; set-level metrics (FID) over seeds."""
    rows = [r for s in result.seeds for r in s.per_image]
    keys = [k for k, _ in TABLE_METRICS if k != "fid"] + ["auc", "cf_abs_pred", "delta_cf_abs"]
    agg = {k: mean_ci95([float(r[k]) for r in rows if r.get(k) is not None]) for k in keys}
    agg["fid"] = mean_ci95([s.set_level["fid"] for s in result.seeds if s.set_level.get("fid") is not None])
    return {
        "fid_set_images": smallest_fid_set([s.set_level for s in result.seeds]),  # the table flags a small one
        "method": result.method,
        "preset": result.preset,
        "seeds": [s.seed for s in result.seeds],
        "queries": len(rows),
        "adaptation": sorted({s.adaptation for s in result.seeds}),
        "train_steps": [s.train_steps for s in result.seeds],
        "train_seconds": [round(s.train_seconds, 1) for s in result.seeds],
        "eval_seconds": [round(s.eval_seconds, 1) for s in result.seeds],
        "aggregate": agg,
        "per_seed": [
            {"seed": s.seed, **{k: mean_of([r.get(k) for r in s.per_image]) for k in keys}, **s.set_level}
            for s in result.seeds
        ],
    }
