"""Batched scoring gives each pair the numbers it gets scored alone, and the numbers of independent
per-image references (numpy formulas, scikit-image)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fewcolor.color.lab import rgb_to_lab
from fewcolor.metrics.lpips import LPIPS
from fewcolor.metrics.scoring import PER_IMAGE_METRICS, prepare_pair, score_batch, score_pair


@pytest.mark.weights
def test_batched_metrics_equal_the_per_image_ones(lpips_weights) -> None:
    g = torch.Generator().manual_seed(0)
    low = torch.rand(8, 3, 6, 6, generator=g)
    photos = torch.nn.functional.interpolate(low, size=(40, 48), mode="bicubic").clamp(0, 1)
    pairs = [prepare_pair((photos[i] + 0.08 * torch.randn(3, 40, 48, generator=g)).clamp(0, 1), photos[i + 4], None)
             for i in range(4)]
    pairs[2] = prepare_pair(photos[6], photos[6], None)  # an identical pair: LPIPS 0, PSNR inf
    lpips, device = LPIPS("alex"), torch.device("cpu")
    names = [f"im{i}" for i in range(4)]
    batched = score_batch(names, torch.stack([p for p, _ in pairs]), torch.stack([t for _, t in pairs]), lpips,
                          device)
    for name, (pred, truth), row in zip(names, pairs, batched, strict=True):
        alone = score_pair(name, pred, truth, lpips, device)
        assert row.keys() == alone.keys() and set(PER_IMAGE_METRICS) <= row.keys()
        for key in PER_IMAGE_METRICS:
            if math.isinf(alone[key]):
                assert row[key] == alone[key]
            else:
                assert row[key] == pytest.approx(alone[key], rel=1e-5, abs=1e-6), key
    assert batched[2]["lpips"] == 0.0 and math.isinf(batched[2]["psnr"])
    assert len({round(r["lpips"], 6) for r in batched}) == 4  # the rows are not copies of one another


def test_score_batch_refuses_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="score_batch needs 2 pairs"):
        score_batch(["a", "b"], torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 9), None, torch.device("cpu"))  # type: ignore[arg-type]


def _hasler_susstrunk(rgb: np.ndarray, absolute: bool) -> float:
    """M = σ_rgyb + 0.3·μ_rgyb on 0–255 values (Hasler & Süsstrunk 2003); ``absolute``: on |rg|, |yb|."""
    r, g, b = (255.0 * rgb[..., c] for c in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    if absolute:
        rg, yb = np.abs(rg), np.abs(yb)
    return float(np.sqrt(rg.var() + yb.var()) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2))


def test_score_batch_rows_equal_independent_per_image_references() -> None:
    """Each row against a reference computed from that pair alone: PSNR and colourfulness from their
    formulas in numpy, AuC from its definition (share of pixels with ab error <= t, t = 0..150, trapezoid),
    ΔE00 and SSIM from scikit-image. LPIPS has no independent reference here (a stand-in scores 0)."""
    skcolor = pytest.importorskip("skimage.color", reason="scikit-image (dev extra) gives reference values")
    skmetrics = pytest.importorskip("skimage.metrics")
    g = torch.Generator().manual_seed(3)
    low = torch.rand(6, 3, 5, 5, generator=g)
    photos = torch.nn.functional.interpolate(low, size=(24, 28), mode="bicubic").clamp(0, 1)
    pairs = [prepare_pair((photos[i] + 0.1 * torch.randn(3, 24, 28, generator=g)).clamp(0, 1), photos[i + 3], None)
             for i in range(3)]
    pairs.append(prepare_pair(photos[5], photos[5], None))  # identical: PSNR inf, SSIM 1, ΔE00 0, AuC 1
    preds, truths = torch.stack([p for p, _ in pairs]), torch.stack([t for _, t in pairs])
    rows = score_batch([f"im{i}" for i in range(4)], preds, truths,
                       lambda p, t: torch.zeros(p.shape[0]), torch.device("cpu"))  # type: ignore[arg-type]
    lab_p, lab_t = rgb_to_lab(preds).movedim(1, -1).double().numpy(), rgb_to_lab(truths).movedim(1, -1).double().numpy()
    for i, row in enumerate(rows):
        p, t = preds[i].movedim(0, -1).double().numpy(), truths[i].movedim(0, -1).double().numpy()  # (H, W, 3)
        assert (row["name"], row["height"], row["width"]) == (f"im{i}", 24, 28)
        mse = float(np.mean((p - t) ** 2))
        assert row["psnr"] == (math.inf if mse == 0 else pytest.approx(10 * math.log10(1 / mse), rel=1e-6))
        # the project's SSIM (Wang et al. 2004: Gaussian 11×11 window, σ 1.5, population covariances, mean over
        # the valid region and the channels) is skimage's with these options, not its defaults (7×7 box window,
        # sample covariances)
        ssim = skmetrics.structural_similarity(p, t, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                               data_range=1.0, channel_axis=2)
        assert row["ssim"] == pytest.approx(ssim, rel=1e-5, abs=1e-6)
        de = skcolor.deltaE_ciede2000(lab_p[i], lab_t[i]).mean()  # on the project's Lab of the pair
        assert row["delta_e2000"] == pytest.approx(de, rel=1e-5, abs=1e-6)
        de_sk = skcolor.deltaE_ciede2000(skcolor.rgb2lab(p), skcolor.rgb2lab(t)).mean()  # and on skimage's Lab
        assert row["delta_e2000"] == pytest.approx(de_sk, rel=2e-3, abs=1e-4)
        err = np.sqrt(((lab_p[i][..., 1:] - lab_t[i][..., 1:]) ** 2).sum(-1)).ravel()
        thresholds = np.linspace(0.0, 150.0, 151)
        auc = np.trapezoid([(err <= th).mean() for th in thresholds], thresholds) / 150.0
        assert row["auc"] == pytest.approx(auc, abs=1e-5)
        for variant, absolute in (("hs", False), ("abs", True)):
            cf_p, cf_t = _hasler_susstrunk(p, absolute), _hasler_susstrunk(t, absolute)
            assert row[f"cf_{variant}_pred"] == pytest.approx(cf_p, rel=1e-5)
            assert row[f"cf_{variant}_truth"] == pytest.approx(cf_t, rel=1e-5)
            assert row[f"delta_cf_{variant}"] == pytest.approx(abs(cf_p - cf_t), rel=1e-4, abs=1e-4)
    assert math.isinf(rows[3]["psnr"]) and rows[3]["ssim"] == pytest.approx(1.0) and rows[3]["auc"] == 1.0
    assert rows[3]["delta_e2000"] == 0.0
