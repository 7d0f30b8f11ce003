"""Colour metrics: mean CIEDE2000, Zhang's AuC of ab errors, Hasler & Süsstrunk colourfulness, ΔCF.

All take RGB ``(B,3,H,W)`` in [0, 1] and return per-image values ``(B,)``.
"""

from __future__ import annotations

import torch

from fewcolor.color.lab import rgb_to_lab

AUC_MAX_THRESHOLD = 150.0


def _batch(x: torch.Tensor) -> torch.Tensor:
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected RGB (B,3,H,W) or (3,H,W), got {tuple(x.shape)}")
    return x.float()


def _pair(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pred, target = _batch(pred), _batch(target)
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and truth {tuple(target.shape)} differ in shape")
    return pred, target


def mean_delta_e2000(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean CIEDE2000 colour difference over the pixels of each image (Sharma et al. 2005)."""
    pred, target = _pair(pred, target)
    return mean_delta_e2000_lab(rgb_to_lab(pred), rgb_to_lab(target))


def mean_delta_e2000_lab(lab_pred: torch.Tensor, lab_target: torch.Tensor) -> torch.Tensor:
    """:func:`mean_delta_e2000` from Lab ``(B,3,H,W)`` already computed (shared with :func:`auc_ab_lab`)."""
    from fewcolor.color.ciede2000 import delta_e_2000

    de = delta_e_2000(lab_pred.movedim(1, -1), lab_target.movedim(1, -1))
    return de.reshape(lab_pred.shape[0], -1).mean(dim=1).float()


def auc_ab(pred: torch.Tensor, target: torch.Tensor, max_threshold: float = AUC_MAX_THRESHOLD,
           steps: int = 151) -> torch.Tensor:
    """Zhang et al. (ECCV 2016, §3.1 "raw accuracy"): the fraction of pixels whose ab error (L2, Lab units)
    is within a threshold, swept over ``steps`` thresholds from 0 to ``max_threshold`` (150), and the area
    under that curve (trapezoid rule) divided by ``max_threshold`` so it lies in [0, 1].

    "Within" is ``error <= t``, so a perfect prediction scores exactly 1.
    """
    pred, target = _pair(pred, target)
    return auc_ab_lab(rgb_to_lab(pred), rgb_to_lab(target), max_threshold, steps)


def auc_ab_lab(lab_pred: torch.Tensor, lab_target: torch.Tensor, max_threshold: float = AUC_MAX_THRESHOLD,
               steps: int = 151) -> torch.Tensor:
    """:func:`auc_ab` from Lab ``(B,3,H,W)`` already computed.

    The fraction of pixels within each threshold comes from one sort of the errors (``searchsorted``),
    not from a (B, steps, pixels) comparison: the same counts, without the steps-fold temporary."""
    err = (lab_pred[:, 1:] - lab_target[:, 1:]).pow(2).sum(dim=1).sqrt().flatten(1)
    thresholds = torch.linspace(0.0, max_threshold, steps, device=err.device)
    within = torch.searchsorted(err.sort(dim=1).values.contiguous(),
                                thresholds.expand(err.shape[0], -1).contiguous(), right=True)
    frac = within.float() / err.shape[1]  # (B, steps): count of err <= t over the pixels
    return torch.trapezoid(frac, thresholds, dim=1) / max_threshold


def _opponent(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    rgb255 = _batch(rgb).double() * 255.0
    r, g, b = rgb255[:, 0], rgb255[:, 1], rgb255[:, 2]
    return (r - g).flatten(1), (0.5 * (r + g) - b).flatten(1)


def _combine(rg: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
    sigma = (rg.var(dim=1, unbiased=False) + yb.var(dim=1, unbiased=False)).sqrt()
    mu = (rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2).sqrt()
    return (sigma + 0.3 * mu).float()


def colorfulness_hs(rgb: torch.Tensor) -> torch.Tensor:
    """Hasler & Süsstrunk (SPIE 2003, eq. for M^(3)), the paper's form, on 0–255 values:
    rg = R − G, yb = ½(R + G) − B, M = σ_rgyb + 0.3·μ_rgyb with σ_rgyb = √(σ²_rg + σ²_yb),
    μ_rgyb = √(μ²_rg + μ²_yb) (population standard deviations)."""
    return _combine(*_opponent(rgb))


def colorfulness_abs(rgb: torch.Tensor) -> torch.Tensor:
    """The variant in DDColor's / ColorFormer's evaluation code (``basicsr/metrics/colorfulness.py``):
    the same formula on |R − G| and |½(R + G) − B|. Its values differ from :func:`colorfulness_hs`; never
    compare numbers across the two."""
    rg, yb = _opponent(rgb)
    return _combine(rg.abs(), yb.abs())


COLORFULNESS = {"hs": colorfulness_hs, "abs": colorfulness_abs}


def delta_colorfulness(pred: torch.Tensor, target: torch.Tensor, variant: str = "abs") -> torch.Tensor:
    """ΔCF per image = |CF(pred) − CF(truth)| (always ≥ 0; the signed difference CF(pred) − CF(truth) is
    what :func:`colorfulness_hs`/:func:`colorfulness_abs` give when subtracted directly)."""
    pred, target = _pair(pred, target)
    cf = COLORFULNESS[variant]
    return (cf(pred) - cf(target)).abs()
