"""The "setup" part of the speed benchmark (issue #18): its rows, on synthetic images in a temporary home."""

from __future__ import annotations

import pytest

from fewcolor.bench.speed import Row, part


def test_setup_part_rows_on_synthetic_images(monkeypatch: pytest.MonkeyPatch) -> None:
    import fewcolor.bench.speed.setup as setup

    assert part("setup") is setup.measure
    # a tiny random backbone and a small clustering keep the test fast; the data fall back to synthetic
    monkeypatch.setattr(setup, "resolve_backbone", lambda spec: ("alexnet", "features.11", False))
    monkeypatch.setattr(setup, "DEFAULT_FEATURE_SIZE", 64)
    monkeypatch.setattr(setup, "CLUSTER_IMAGES", 40)
    prior = setup._prior_row(8)
    descriptors, clustering = setup._cluster_rows(6, k=3, fit_images=20)
    for row in (prior, descriptors, clustering):
        assert isinstance(row, Row) and row.part == "setup" and row.value > 0
    assert prior.unit == "img/s" and prior.target == 200.0 and "8 synthetic 96px images" in prior.note
    assert descriptors.unit == "img/s" and "alexnet/features.11 at 64px" in descriptors.note
    assert clustering.unit == "s" and clustering.target == 120.0 and not clustering.higher_is_better
    assert "(timed on 20, scaled)" in clustering.note
