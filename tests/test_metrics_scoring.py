"""Batched scoring gives each pair the numbers it gets scored alone."""

from __future__ import annotations

import math

import pytest
import torch

from fewcolor.backbones.weights import get_spec, missing_message, package_file
from fewcolor.metrics.lpips import LPIPS
from fewcolor.metrics.scoring import PER_IMAGE_METRICS, prepare_pair, score_batch, score_pair

pytestmark = pytest.mark.weights


def test_batched_metrics_equal_the_per_image_ones() -> None:
    for name in ("alexnet", "lpips_alex_lin"):
        if package_file(get_spec(name)) is None:
            pytest.skip(missing_message(get_spec(name)))
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
