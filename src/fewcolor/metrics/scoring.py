"""Per-image scoring under the evaluation protocol (docs/METRICS.md): the resize + Lab round-trip that
prediction and truth both go through, and the per-image metrics of a batch of pairs."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from fewcolor.color.lab import lab_to_rgb, rgb_to_lab
from fewcolor.metrics.color import auc_ab_lab, colorfulness_abs, colorfulness_hs, mean_delta_e2000_lab
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
def score_batch(names: list[str], preds: torch.Tensor, truths: torch.Tensor, lpips_model: LPIPS,
                device: torch.device) -> list[dict[str, Any]]:
    """The per-image metrics of prepared pairs (see :func:`prepare_pair`) stacked as ``(B,3,H,W)``, one
    row per pair: every metric runs once over the batch, and the Lab of each side is computed once and
    shared by ΔE00 and AuC. Per-image values equal :func:`score_pair`'s (float tolerance)."""
    if preds.shape != truths.shape or preds.ndim != 4 or preds.shape[0] != len(names):
        raise ValueError(f"score_batch needs {len(names)} pairs as two (B,3,H,W) tensors, got "
                         f"{tuple(preds.shape)} and {tuple(truths.shape)}")
    p, t = preds.to(device).float(), truths.to(device).float()
    height, width = int(p.shape[-2]), int(p.shape[-1])
    lab_p, lab_t = rgb_to_lab(p), rgb_to_lab(t)
    values: dict[str, list[float]] = {
        "psnr": psnr(p, t).tolist(),
        "ssim": ssim(p, t).tolist() if min(height, width) >= SSIM_WINDOW else [float("nan")] * len(names),
        "lpips": lpips_model(p, t).tolist(),
        "delta_e2000": mean_delta_e2000_lab(lab_p, lab_t).tolist(),
        "auc": auc_ab_lab(lab_p, lab_t).tolist(),
    }
    for variant, fn in (("hs", colorfulness_hs), ("abs", colorfulness_abs)):
        cf_p, cf_t = fn(p).tolist(), fn(t).tolist()
        values[f"cf_{variant}_pred"], values[f"cf_{variant}_truth"] = cf_p, cf_t
        values[f"delta_cf_{variant}"] = [abs(a - b) for a, b in zip(cf_p, cf_t, strict=True)]
    return [{"name": name, "height": height, "width": width, **{k: v[i] for k, v in values.items()}}
            for i, name in enumerate(names)]


def score_pair(name: str, pred: torch.Tensor, truth: torch.Tensor, lpips_model: LPIPS,
               device: torch.device) -> dict[str, Any]:
    """The per-image metrics of one prepared (3,H,W) pair (a batch of one)."""
    return score_batch([name], pred[None], truth[None], lpips_model, device)[0]
