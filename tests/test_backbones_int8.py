"""int8 MAC descriptors (fewcolor.backbones.int8) and the clustering's precision choice (issue #18, item 3)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fewcolor.backbones import clustering
from fewcolor.backbones.clustering import build_extractor, dataset_descriptors, embedding_network, int8_descriptor
from fewcolor.backbones.int8 import Int8Descriptor, int8_taps_supported
from fewcolor.data.folder import ImageFolderDataset
from fewcolor.hardware import descriptor_precision, int8_engine

needs_int8 = pytest.mark.skipif(int8_engine() is None, reason="this PyTorch build has no quantized engine")
SPEC = "alexnet:features.4,features.11"  # two taps, random weights: small and fast, like VGG16's multi-MAC


def _extractor():
    name, _, layer = SPEC.partition(":")
    return build_extractor(name, layer, pretrained=False, seed=5)


@pytest.fixture
def emoji_ten(emoji_dir):
    return ImageFolderDataset(emoji_dir, paths=ImageFolderDataset(emoji_dir).paths[:10])


@needs_int8
def test_int8_descriptors_agree_with_fp32_and_a_stored_calibration_reproduces_them(emoji_ten) -> None:
    ext = _extractor()
    info = {"feature_size": 64}
    q = int8_descriptor(ext, info, emoji_ten)
    assert set(info["int8_qparams"]) == set(q.qparams()) and info["int8_qparams"]  # the ranges, JSON-able
    assert all(isinstance(v, (int, float)) for v in info["int8_qparams"].values())
    fp32 = dataset_descriptors(emoji_ten, ext, 64, progress=False)
    int8 = dataset_descriptors(emoji_ten, q, 64, progress=False)
    assert int8.shape == fp32.shape and int8.dtype == torch.float32
    assert not torch.equal(int8, fp32)  # the quantized copy did compute
    assert F.cosine_similarity(int8, fp32).min() > 0.98
    torch.testing.assert_close(int8.norm(dim=1), torch.ones(len(int8)))  # still L2-normalised MAC
    again = Int8Descriptor(ext, qparams=info["int8_qparams"])  # no calibration: the stored ranges
    assert torch.equal(dataset_descriptors(emoji_ten, again, 64, progress=False), int8)


@needs_int8
def test_a_calibration_from_another_network_is_refused_clearly(emoji_ten) -> None:
    stored = int8_descriptor(_extractor(), {"feature_size": 64}, emoji_ten).qparams()
    vgg = build_extractor("vgg16", "features.29", pretrained=False)
    with pytest.raises(ValueError, match="does not fit this backbone"):
        Int8Descriptor(vgg, qparams=stored)
    with pytest.raises(ValueError, match="exactly one"):
        Int8Descriptor(vgg)


@needs_int8
def test_int8_needs_leaf_taps_and_the_clustering_falls_back_without_them() -> None:
    assert not int8_taps_supported("resnet18", "layer4")  # a block, not a leaf module
    assert int8_taps_supported("alexnet", "features.4,features.11")
    assert int8_taps_supported("vgg16", clustering.VGG16_MULTI_MAC)
    resnet = build_extractor("resnet18", "layer4", pretrained=False)
    with pytest.raises(ValueError, match="leaf module"):
        Int8Descriptor(resnet, calibration=torch.zeros(2, 1, 64, 64))
    images = torch.rand(6, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    from helpers import TensorColourDataset

    tasks = clustering.cluster_dataset(TensorColourDataset(images), 2, backbone="resnet18:layer4", feature_size=64,
                                       pretrained=False, precision="int8")
    assert "int8" not in tasks.info  # computed in bf16 or fp32 instead, as the info says


@needs_int8
@pytest.mark.parametrize("spec", [SPEC, "vgg16:" + clustering.VGG16_MULTI_MAC])
def test_int8_clusters_are_cached_apart_and_new_images_embed_like_the_training_ones(
        emoji_ten, monkeypatch, spec: str) -> None:
    kwargs = {"backbone": spec, "feature_size": 64, "pretrained": False}
    plain = clustering.cluster_dataset(emoji_ten, 3, **kwargs)
    fast = clustering.cluster_dataset(emoji_ten, 3, **kwargs, precision="int8")
    assert "int8" not in plain.info and fast.info["int8"] == int8_engine() and fast.info["int8_qparams"]
    net, bf16 = embedding_network(fast.info)  # what MetalGAN embeds its queries with: the stored ranges
    assert isinstance(net, Int8Descriptor) and not bf16
    ls = torch.cat([clustering.l_at(emoji_ten.read(i)[None], 64) for i in range(len(emoji_ten))])
    assert torch.equal(fast.assign(clustering.descriptors(net, ls)), fast.assignments)

    def no_network(*args, **kwargs):
        raise AssertionError("the descriptors should come from the cache")

    monkeypatch.setattr(clustering, "build_extractor", no_network)
    cached = clustering.cluster_dataset(emoji_ten, 3, **kwargs, precision="int8")  # the tasks' cache
    assert cached.info["int8_qparams"] == fast.info["int8_qparams"]
    assert torch.equal(cached.assignments, fast.assignments)
    other_k = clustering.cluster_dataset(emoji_ten, 2, **kwargs, precision="int8")  # the descriptors' cache
    assert other_k.info["int8_qparams"] == fast.info["int8_qparams"] and other_k.k == 2


def test_an_unusable_int8_calibration_embeds_in_fp32_with_a_warning(caplog) -> None:
    info = {"backbone": "alexnet", "layer": "features.4,features.11", "pretrained": False, "feature_size": 64,
            "int8": int8_engine() or "x86", "int8_qparams": {"not.a.scale": 1.0}}
    net, bf16 = embedding_network(info)
    assert not isinstance(net, Int8Descriptor) and not bf16
    assert "fp32" in caplog.text


def test_int8_clusters_embed_in_fp32_where_int8_is_missing(emoji_ten, monkeypatch, caplog) -> None:
    info = {"backbone": "alexnet", "layer": "features.4,features.11", "pretrained": False, "feature_size": 64,
            "int8": "x86", "int8_qparams": {"scale": 1.0}}
    monkeypatch.setattr(clustering, "int8_engine", lambda: None)
    net, bf16 = embedding_network(info)
    assert not isinstance(net, Int8Descriptor) and not bf16
    assert "fp32" in caplog.text


def test_descriptor_precision_follows_the_machine(monkeypatch) -> None:
    import fewcolor.hardware as hw

    monkeypatch.setattr(hw, "int8_engine", lambda: "x86")
    assert descriptor_precision() == "int8" and descriptor_precision("fp32") == "fp32"
    monkeypatch.setattr(hw, "int8_engine", lambda: None)
    monkeypatch.setattr(hw, "native_bf16", lambda device="cpu": True)
    assert descriptor_precision() == "bf16"
    assert descriptor_precision("int8") == "fp32"  # asked for, not available: fp32 with a warning
    monkeypatch.setattr(hw, "native_bf16", lambda device="cpu": False)
    assert descriptor_precision() == "fp32" and descriptor_precision("bf16") == "fp32"
    with pytest.raises(ValueError, match="int4"):
        descriptor_precision("int4")
    with pytest.raises(ValueError, match="descriptor precision"):
        clustering.cluster_dataset(None, 3, precision="auto")  # type: ignore[arg-type]  # resolved by the caller
