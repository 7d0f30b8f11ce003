"""Empirical bin prior, smoothing and class rebalancing (Zhang et al. 2016, §2.2, Eqs. 3-4)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fewcolor.color.bins import Q, ab_bin_centers
from fewcolor.color.normalize import normalize_ab
from fewcolor.color.prior import bin_counts, bin_prior, rebalance_weights, smooth_prior
from fewcolor.data.cache import load_or_compute_prior, prior_cache_path


def _skewed_prior(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    p = torch.rand(Q, generator=g, dtype=torch.float64) ** 8  # a few common bins, many rare ones
    return p / p.sum()


def _ab_batches() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    # mostly greyish pixels with a few saturated ones, like natural images
    return [torch.randn(2, 2, 8, 8, generator=g) * 8 for _ in range(3)]


def test_rebalance_expectation_is_one() -> None:
    p = _skewed_prior()
    for lam in (0.0, 0.25, 0.5, 0.9):
        w = rebalance_weights(p, lam)
        assert w.shape == (Q,)
        assert torch.allclose((p * w).sum(), torch.tensor(1.0, dtype=torch.float64), atol=1e-10)


def test_lambda_one_gives_uniform_weights() -> None:
    assert torch.allclose(rebalance_weights(_skewed_prior(), 1.0), torch.ones(Q, dtype=torch.float64))


def test_rare_bins_get_larger_weight() -> None:
    p = _skewed_prior(1)
    w = rebalance_weights(p, 0.5)
    order = torch.argsort(p)
    assert torch.all(w[order][1:] <= w[order][:-1] + 1e-12)  # monotone decreasing in p
    assert w[p.argmin()] > 1.0 > w[p.argmax()]
    with pytest.raises(ValueError, match="lam"):
        rebalance_weights(p, 1.5)


def test_hard_counts_match_nearest_bins() -> None:
    centers = ab_bin_centers()
    ab = centers[[3, 3, 3, 10]].T.reshape(2, 2, 2)
    counts = bin_counts(ab)
    assert counts[3] == 3 and counts[10] == 1 and counts.sum() == 4
    mask = torch.tensor([[True, False], [True, True]])
    assert bin_counts(ab, mask=mask)[3] == 2
    soft = bin_counts(ab, soft=True)
    assert torch.allclose(soft.sum(), torch.tensor(4.0, dtype=torch.float64))
    assert soft.argmax() == 3


def test_smoothing_spreads_mass_to_neighbours() -> None:
    p = torch.zeros(Q, dtype=torch.float64)
    i = int(ab_bin_centers().norm(dim=1).argmin())  # the bin at ab = (0, 0), deep inside the gamut
    p[i] = 1.0
    s = smooth_prior(p, 5.0)
    assert torch.allclose(s.sum(), torch.tensor(1.0, dtype=torch.float64))
    d = (ab_bin_centers() - ab_bin_centers()[i]).norm(dim=1)
    neighbours = (d - 10).abs() < 1e-4
    # a 4-neighbour at distance 10 gets exp(-100/50) of the centre's mass
    assert int(neighbours.sum()) == 4
    ratio = s[neighbours] / s[i]
    assert torch.allclose(ratio, torch.full_like(ratio, 2.718281828459045**-2.0))
    assert torch.equal(smooth_prior(p, 0.0), p)


def test_bin_prior_from_dataset_samples() -> None:
    batches = _ab_batches()
    plain = bin_prior(batches, normalized=False, progress=False)
    samples = [{"ab": normalize_ab(b), "label": 0} for b in batches]
    from_dicts = bin_prior(samples, progress=False)
    assert torch.allclose(plain, from_dicts, atol=1e-12)
    assert torch.allclose(plain.sum(), torch.tensor(1.0, dtype=torch.float64))
    # grey-dominated data: the bin at ab = (0, 0) is the most common
    zero_bin = int(((ab_bin_centers()).norm(dim=1)).argmin())
    assert int(plain.argmax()) == zero_bin
    assert bin_prior(batches, normalized=False, max_batches=1, progress=False).shape == (Q,)
    with pytest.raises(KeyError, match="ab_key"):
        bin_prior([{"rgb": batches[0]}], progress=False)


def test_load_or_compute_prior_caches(tmp_path: Path) -> None:
    calls = []

    def compute() -> torch.Tensor:
        calls.append(1)
        return _skewed_prior(2) * 7  # unnormalised on purpose

    first = load_or_compute_prior("flowers/train hard", compute, cache_dir=tmp_path)
    second = load_or_compute_prior("flowers/train hard", compute, cache_dir=tmp_path)
    assert len(calls) == 1
    assert torch.equal(first, second) and torch.allclose(first.sum(), torch.tensor(1.0, dtype=torch.float64))
    path = prior_cache_path("flowers/train hard", tmp_path)
    assert path.is_file() and path.parent == tmp_path
    path.write_bytes(b"not a safetensors file")  # corrupt cache: recomputed, not an error
    load_or_compute_prior("flowers/train hard", compute, cache_dir=tmp_path)
    assert len(calls) == 2


def test_default_cache_dir_follows_fewcolor_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FEWCOLOR_HOME", str(tmp_path))
    assert prior_cache_path("x") == tmp_path / "priors" / "x.safetensors"
    load_or_compute_prior("x", lambda: torch.ones(Q))
    assert (tmp_path / "priors" / "x.safetensors").is_file()
    with pytest.raises(ValueError, match="invalid prior"):
        load_or_compute_prior("y", lambda: torch.ones(5))


def test_a_prior_cached_over_another_bin_list_is_recomputed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fewcolor.data.cache as cache_module

    calls = []

    def compute() -> torch.Tensor:
        calls.append(1)
        return _skewed_prior(3)

    load_or_compute_prior("k", compute, cache_dir=tmp_path)
    monkeypatch.setattr(cache_module, "bins_id", lambda: "another-list")
    load_or_compute_prior("k", compute, cache_dir=tmp_path)
    load_or_compute_prior("k", compute, cache_dir=tmp_path)
    assert len(calls) == 2


def _old_bin_prior(batches: list[torch.Tensor], sigma: float = 5.0) -> torch.Tensor:
    """The prior as computed before the vectorised pass: per batch, the distance search, one bincount."""
    from fewcolor.color.bins import nearest_bins

    counts = torch.zeros(Q, dtype=torch.float64)
    for ab in batches:
        points = ab.movedim(-3, -1).reshape(-1, 2)
        counts += torch.bincount(nearest_bins(points, 1)[1][:, 0], minlength=Q).double()
    return smooth_prior(counts, sigma)


def test_vectorised_prior_equals_the_batch_by_batch_computation(
    emoji_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On real images (and sizes that split the gathered pixels over several binning passes) the prior is
    bit-identical to the old batch-by-batch computation."""
    import fewcolor.color.prior as prior_module
    from fewcolor.data.folder import ImageFolderDataset
    from fewcolor.data.transforms import train_transform

    data = ImageFolderDataset(emoji_dir, transform=train_transform(48))
    samples = [data[i] for i in range(12)]
    expected = _old_bin_prior([s["ab"] * 110.0 for s in samples])
    monkeypatch.setattr(prior_module, "PRIOR_CHUNK_PIXELS", 5000)  # a pass every ~2 images
    assert torch.equal(bin_prior(samples, progress=False), expected)
    monkeypatch.setattr(prior_module, "PRIOR_CHUNK_PIXELS", 1 << 20)  # one pass for all
    assert torch.equal(bin_prior(iter(samples), progress=False, total=12), expected)
