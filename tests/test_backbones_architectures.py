"""Backbone definitions with random init: torchvision key names and shapes, state_dict round-trips."""

from __future__ import annotations

import pickle

import pytest
import torch

from fewcolor.backbones import FeatureExtractor, WeightsNotFoundError, choose_backbone, load_backbone
from fewcolor.backbones.weights import (
    NumpyOnlyUnpickler,
    WeightSpec,
    cache_dir,
    download,
    get_spec,
    read_any,
    resolve,
    weights_available,
)


def torchvision_resnet_keys(depths: tuple[int, ...], bottleneck: bool) -> list[str]:
    """torchvision's ResNet state_dict keys, written from its architecture (not from the project's code)."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = ["conv1.weight", *[f"bn1.{s}" for s in bn]]
    convs = ("1", "2", "3") if bottleneck else ("1", "2")
    for stage, depth in enumerate(depths, start=1):
        for block in range(depth):
            pre = f"layer{stage}.{block}"
            for c in convs:
                keys += [f"{pre}.conv{c}.weight", *[f"{pre}.bn{c}.{s}" for s in bn]]
            if block == 0 and (stage > 1 or bottleneck):
                keys += [f"{pre}.downsample.0.weight", *[f"{pre}.downsample.1.{s}" for s in bn]]
    return [*keys, "fc.weight", "fc.bias"]


@pytest.mark.parametrize(("name", "depths", "bottleneck", "n_keys", "n_params"), [
    ("resnet18", (2, 2, 2, 2), False, 122, 11_689_512),
    ("resnet50", (3, 4, 6, 3), True, 320, 25_557_032),
])
def test_resnet_keys_and_sizes_match_torchvision(name, depths, bottleneck, n_keys, n_params):
    model = load_backbone(name, pretrained=False)
    state = model.state_dict()
    assert sorted(state) == sorted(torchvision_resnet_keys(depths, bottleneck))
    assert len(state) == n_keys
    assert sum(p.numel() for p in model.parameters()) == n_params


def test_resnet50_shapes_follow_v1_5():
    state = load_backbone("resnet50", pretrained=False).state_dict()
    assert state["layer4.0.conv2.weight"].shape == (512, 512, 3, 3)
    assert state["layer4.0.downsample.0.weight"].shape == (2048, 1024, 1, 1)
    assert state["fc.weight"].shape == (1000, 2048)
    model = load_backbone("resnet50", pretrained=False)
    conv2 = dict(model.named_modules())["layer2.0.conv2"]
    assert conv2.stride == (2, 2)  # v1.5: the stride sits on the 3×3 conv
    with torch.no_grad():
        assert model(torch.rand(1, 3, 64, 64)).shape == (1, 1000)


def test_vgg_alexnet_feature_keys():
    vgg = load_backbone("vgg16", pretrained=False).state_dict()
    convs = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    assert sorted(vgg) == sorted([f"features.{i}.{p}" for i in convs for p in ("weight", "bias")])
    alex = load_backbone("alexnet", pretrained=False).state_dict()
    assert sorted(alex) == sorted([f"features.{i}.{p}" for i in (0, 3, 6, 8, 10) for p in ("weight", "bias")])
    assert alex["features.0.weight"].shape == (64, 3, 11, 11)


def test_torchvision_layout_file_round_trips(tmp_path, monkeypatch):
    monkeypatch.setenv("FEWCOLOR_HOME", str(tmp_path / "home"))
    source = load_backbone("resnet18", pretrained=False)
    assert not weights_available("resnet18")
    # A torchvision-layout file dropped into the cache under torchvision's name is found and loaded.
    cache_dir().mkdir(parents=True)
    torch.save(source.state_dict(), cache_dir() / "resnet18-f37072fd.pth")
    assert weights_available("resnet18")
    loaded = load_backbone("resnet18")
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert loaded.weights_source.startswith("cache")
    assert (cache_dir() / "resnet18.safetensors").is_file()
    assert resolve("resnet18").path == cache_dir() / "resnet18.safetensors"  # converted copy used next time
    # An explicit path beats the cache.
    other = load_backbone("resnet18", pretrained=False)
    path = tmp_path / "mine.pth"
    torch.save(other.state_dict(), path)
    explicit = load_backbone("resnet18", weights=path)
    assert torch.equal(explicit.state_dict()["fc.weight"], other.state_dict()["fc.weight"])


def test_missing_weights_message_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("FEWCOLOR_HOME", str(tmp_path))
    monkeypatch.delenv("FEWCOLOR_ALLOW_DOWNLOAD", raising=False)
    with pytest.raises(WeightsNotFoundError) as err:
        load_backbone("resnet50")
    msg = str(err.value)
    assert "resnet50-0676ba61.pth" in msg and str(tmp_path / "weights") in msg
    assert "https://download.pytorch.org/models/resnet50-0676ba61.pth" in msg
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        load_backbone("resnet50", weights=tmp_path / "nope.pth")


def test_download_checks_sha256(tmp_path):
    payload = tmp_path / "src.bin"
    payload.write_bytes(b"fewcolor weights")
    import hashlib

    digest = hashlib.sha256(payload.read_bytes()).hexdigest()
    good = WeightSpec("t", "test", "t.bin", read_any, url=payload.as_uri(), sha256=digest[:8])
    assert download(good, tmp_path / "c").read_bytes() == b"fewcolor weights"
    bad = WeightSpec("t", "test", "u.bin", read_any, url=payload.as_uri(), sha256="0" * 64)
    with pytest.raises(OSError, match="sha256 mismatch"):
        download(bad, tmp_path / "c")
    assert not (tmp_path / "c" / "u.bin").exists()


def test_numpy_only_unpickler_refuses_code(tmp_path):
    import io

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with pytest.raises(pickle.UnpicklingError, match=r"builtins\.print"):
        NumpyOnlyUnpickler(io.BytesIO(pickle.dumps({"a": Evil()}))).load()


def test_feature_extractor_random_init():
    fe = FeatureExtractor("resnet50", "layer4.0", "mac", pretrained=False)
    assert fe.out_dim == 2048
    l_norm = torch.rand(2, 1, 64, 48) * 2 - 1
    out = fe(l_norm)
    assert out.shape == (2, 2048)
    assert torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-5)
    assert not any(p.requires_grad for p in fe.parameters())
    fe.train()
    assert not fe.training and not fe.net.training
    avg = FeatureExtractor("resnet18", "avgpool", "avg", pretrained=False)
    assert avg.out_dim == 512 and avg(l_norm).shape == (2, 512)
    # MAC = per-channel spatial max of the tapped map, then L2-normalised; avg = spatial mean.
    (fmap,) = fe.layer_maps(l_norm)
    assert fmap.shape[:2] == (2, 2048)
    mac = fmap.amax(dim=(2, 3))
    assert torch.allclose(out, mac / mac.norm(dim=1, keepdim=True), atol=1e-6)
    tapped = FeatureExtractor("resnet18", "layer3", "avg", pretrained=False)
    assert torch.allclose(tapped(l_norm), tapped.layer_maps(l_norm)[0].mean(dim=(2, 3)), atol=1e-6)
    # The grey input is (L_norm + 1) / 2 in all three channels.
    seen = {}
    tapped.net.conv1.register_forward_pre_hook(lambda m, i: seen.update(x=i[0]))
    tapped(l_norm)
    grey = (seen["x"] * tapped.std + tapped.mean)
    assert torch.allclose(grey, ((l_norm + 1) / 2).expand(-1, 3, -1, -1), atol=1e-5)


def test_feature_extractor_concatenates_the_mac_of_several_layers():
    # MetalGAN's VGG16 fallback descriptor: conv3_3, conv4_3, conv5_3 MACs (256 + 512 + 512 = 1280-d), each
    # L2-normalised, concatenated and normalised again — so a PCA to 512 reduces something.
    torch.manual_seed(0)
    multi = FeatureExtractor("vgg16", "features.15,features.22,features.29", "mac", pretrained=False)
    assert multi.out_dim == 1280
    l_norm = torch.rand(2, 1, 64, 64) * 2 - 1
    maps = multi.layer_maps(l_norm)
    assert [m.shape[1] for m in maps] == [256, 512, 512]
    parts = [torch.nn.functional.normalize(m.amax(dim=(2, 3)), dim=1) for m in maps]
    expected = torch.cat(parts, dim=1) / 3**0.5
    torch.testing.assert_close(multi(l_norm), expected, rtol=1e-5, atol=1e-6)


def test_feature_extractor_errors():
    with pytest.raises(KeyError, match="no layer"):
        FeatureExtractor("resnet18", "layer9", pretrained=False)
    with pytest.raises(ValueError, match="pooling"):
        FeatureExtractor("resnet18", "avgpool", pooling="gem", pretrained=False)
    fe = FeatureExtractor("resnet18", "layer1", pretrained=False)
    with pytest.raises(ValueError, match=r"\(B,1,H,W\)"):
        fe(torch.zeros(1, 3, 32, 32))


def test_choose_backbone_none_available(tmp_path, monkeypatch):
    monkeypatch.setenv("FEWCOLOR_HOME", str(tmp_path))
    with pytest.raises(WeightsNotFoundError, match=r"resnet18-f37072fd\.pth"):
        choose_backbone([("resnet50", "layer4.0"), ("resnet18", "avgpool")])
    assert get_spec("resnet18").url.startswith("https://download.pytorch.org/")
