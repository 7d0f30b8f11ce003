"""Fréchet distance, KID and Inception Score on known inputs; Inception features on real images."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from fewcolor.backbones.weights import get_spec, missing_message, package_file
from fewcolor.metrics.fid import (
    InceptionFeatures,
    feature_statistics,
    fid_from_features,
    fid_preprocess,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
    load_cached_features,
    store_cached_features,
)


def reference_fid(f1: np.ndarray, f2: np.ndarray) -> float:
    """Independent float64 computation: numpy statistics and scipy's general matrix square root."""
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


@pytest.mark.parametrize(("seed", "n1", "n2"), [(0, 400, 350), (1, 20, 30), (2, 64, 17)])
def test_frechet_distance_matches_scipy(seed, n1, n2):
    # n > d: eigendecomposition of the covariances; n <= d: the exact low-rank SVD path.
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n1, 32))
    b = rng.normal(size=(n2, 32)) @ rng.normal(size=(32, 32)) * 0.3 + 0.5
    expected = reference_fid(a, b)
    assert fid_from_features(a, b) == pytest.approx(expected, rel=1e-7, abs=1e-7)
    assert frechet_distance(*feature_statistics(a), *feature_statistics(b)) == pytest.approx(expected, rel=1e-7)


def test_frechet_distance_closed_forms():
    d = 5
    eye = np.eye(d)
    assert frechet_distance(np.zeros(d), eye, np.zeros(d), eye) == pytest.approx(0.0, abs=1e-10)
    # Shifted means only: ||mu||^2; scaled isotropic covariances: d (s1 - s2)^2 with s = std.
    assert frechet_distance(np.zeros(d), eye, np.ones(d), eye) == pytest.approx(d)
    assert frechet_distance(np.zeros(d), eye, np.zeros(d), 4 * eye) == pytest.approx(d * (1 - 2) ** 2)


def test_kid_is_unbiased_near_zero_for_one_distribution_and_positive_otherwise():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 16)), rng.normal(size=(300, 16))
    c = rng.normal(size=(300, 16)) + 1.0
    same, _ = kernel_inception_distance(a, b, n_subsets=20, subset_size=100, seed=0)
    diff, _ = kernel_inception_distance(a, c, n_subsets=20, subset_size=100, seed=0)
    assert abs(same) < 0.02 and diff > 0.3
    assert kernel_inception_distance(a, c, 5, 50, seed=1) == kernel_inception_distance(a, c, 5, 50, seed=1)


def test_inception_score_known_values():
    assert inception_score(torch.zeros(20, 1008), splits=2)[0] == pytest.approx(1.0)
    # Confident and evenly spread over k classes: IS = k.
    logits = torch.full((40, 1008), -1e4)
    logits[torch.arange(40), torch.arange(40) % 8] = 0.0
    mean, std = inception_score(logits, splits=5)
    assert mean == pytest.approx(8.0, rel=1e-6) and std == pytest.approx(0.0, abs=1e-6)


def test_statistics_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FEWCOLOR_HOME", str(tmp_path))
    feats = torch.randn(10, 4, dtype=torch.float64)
    mu, sigma = feature_statistics(feats)
    assert mu.shape == (4,) and sigma.shape == (4, 4)
    assert load_cached_features("k") is None
    store_cached_features("k", feats)
    assert torch.allclose(load_cached_features("k"), feats.float().double())
    with pytest.raises(ValueError, match="at least 2"):
        feature_statistics(feats[:1])


def test_preprocess_resizes_and_scales():
    x = fid_preprocess(torch.ones(2, 3, 64, 80))
    assert x.shape == (2, 3, 299, 299) and torch.allclose(x, torch.ones_like(x))


@pytest.mark.weights
def test_inception_features_on_real_images():
    spec = get_spec("inception_v3_fid")
    if package_file(spec) is None:
        pytest.skip(missing_message(spec))
    data = pytest.importorskip("skimage.data")
    imgs = torch.stack([torch.from_numpy(getattr(data, n)()[:128, :128].copy()).permute(2, 0, 1).float() / 255
                        for n in ("astronaut", "chelsea", "coffee")])
    model = InceptionFeatures()
    f = model.pool3(imgs)
    assert f.shape == (3, 2048) and f.dtype == torch.float64 and (f >= 0).all()  # pool3 follows a ReLU
    trace = float(f.var(dim=0, unbiased=True).sum())
    assert abs(fid_from_features(f, f)) < 1e-9 * trace
    assert fid_from_features(f[:2], f[1:]) > 1.0
    assert not model.has_logits and math.isfinite(float(f.sum()))


def test_pytorch_fid_layout_file_enables_logits(tmp_path):
    # A file in pytorch-fid's layout (our key names + the 1008-way fc) loads with its classifier.
    from fewcolor.backbones.inception import InceptionV3FID

    torch.manual_seed(0)
    state = InceptionV3FID().state_dict()
    state["fc.weight"] = torch.randn(1008, 2048) * 0.01
    state["fc.bias"] = torch.zeros(1008)
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(state, path)
    model = InceptionFeatures(weights=path)
    assert model.has_logits and model.weights_source.startswith("path")
    logits = model.logits(torch.rand(2, 3, 80, 80))
    assert logits.shape == (2, 1008)
    mean, _ = inception_score(logits, splits=1)
    assert 1.0 - 1e-9 <= mean <= 2.0 + 1e-9  # two images can spread over at most two classes
