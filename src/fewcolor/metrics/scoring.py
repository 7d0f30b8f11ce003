"""Per-image scoring under the evaluation protocol (docs/METRICS.md): the resize + Lab round-trip that
prediction and truth both go through, and the per-image metrics of one pair."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from fewcolor.color.lab import lab_to_rgb, rgb_to_lab
from fewcolor.metrics.color import auc_ab, colorfulness_abs, colorfulness_hs, mean_delta_e2000
from fewcolor.metrics.lpips import LPIPS
from fewcolor.metrics.pixel import SSIM_WINDOW, psnr, ssim

PER_IMAGE_METRICS = ("psnr", "ssim", "lpips", "delta_e2000", "auc", "cf_hs_pred", "cf_hs_truth",
                     "delta_cf_hs", "cf_abs_pred", "cf_abs_truth", "delta_cf_abs")


def resize(img: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(C,H,W) to ``size`` (bilinear, antialiased, clamped to [0, 1]); unchanged when already that size."""
    if tuple(img.shape[-2:]) == size:
        return img
    out = F.interpolate(img[None], size=size, mode="bilinear", antialias=True, align_corners=False)
    return out[0].clamp(0, 1)


def prepare_pair(pred: torch.Tensor, truth: torch.Tensor, size: int | None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply the evaluation protocol (resize, then the same Lab round-trip) to a (3,H,W) pair."""
    if pred.shape[0] == 1:
        pred = pred.expand(3, -1, -1)
    if truth.shape[0] == 1:
        truth = truth.expand(3, -1, -1)
    target = (size, size) if size else (int(truth.shape[-2]), int(truth.shape[-1]))
    pred, truth = resize(pred.float(), target), resize(truth.float(), target)
    both = lab_to_rgb(rgb_to_lab(torch.stack([pred, truth])))
    return both[0], both[1]


@torch.no_grad()
def score_pair(name: str, pred: torch.Tensor, truth: torch.Tensor, lpips_model: LPIPS,
               device: torch.device) -> dict[str, Any]:
    """The per-image metrics of a prepared (3,H,W) pair (see :func:`prepare_pair`)."""
    p, t = pred[None].to(device), truth[None].to(device)
    row: dict[str, Any] = {
        "name": name,
        "height": int(pred.shape[-2]),
        "width": int(pred.shape[-1]),
        "psnr": float(psnr(p, t)[0]),
        "ssim": float(ssim(p, t)[0]) if min(pred.shape[-2:]) >= SSIM_WINDOW else float("nan"),
        "lpips": float(lpips_model(p, t)[0]),
        "delta_e2000": float(mean_delta_e2000(p, t)[0]),
        "auc": float(auc_ab(p, t)[0]),
    }
    for variant, fn in (("hs", colorfulness_hs), ("abs", colorfulness_abs)):
        cf_p, cf_t = float(fn(p)[0]), float(fn(t)[0])
        row[f"cf_{variant}_pred"], row[f"cf_{variant}_truth"] = cf_p, cf_t
        row[f"delta_cf_{variant}"] = abs(cf_p - cf_t)
    return row
