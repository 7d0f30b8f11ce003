"""``Method.auxiliary``: frozen helpers (backbones, fallback models) built once, outside the checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from fewcolor.methods.base import InferenceOptionError, Method
from fewcolor.methods.registry import build_method, save_method


class _Toy(Method):
    name = "toy-auxiliary"

    def __init__(self) -> None:
        super().__init__(None)
        self.head = nn.Linear(3, 2)


def _counting_builder(calls: list[int]):
    def build() -> nn.Module:
        calls.append(1)
        return nn.Conv2d(1, 4, 3)

    return build


def test_auxiliary_is_built_once_and_kept_out_of_the_module_tree() -> None:
    m = _Toy()
    keys = set(m.state_dict())
    calls: list[int] = []
    first = m.auxiliary("net", _counting_builder(calls))
    again = m.auxiliary("net", _counting_builder(calls))
    assert again is first and len(calls) == 1
    assert set(m.state_dict()) == keys == {"head.weight", "head.bias"}
    assert all(mod is not first for mod in m.modules())
    assert all(p is not first.weight for p in m.parameters())
    m.half()  # the module's own conversions do not reach the helper
    assert first.weight.dtype == torch.float32


def test_auxiliary_rebuilds_on_a_new_key_and_after_drop() -> None:
    m = _Toy()
    calls: list[int] = []
    a = m.auxiliary("net", _counting_builder(calls), key=("vgg16", "features.29"))
    assert m.auxiliary("net", _counting_builder(calls), key=("vgg16", "features.29")) is a
    b = m.auxiliary("net", _counting_builder(calls), key=("resnet18", "avgpool"))
    assert b is not a and len(calls) == 2
    m.drop_auxiliary("net")
    assert m.auxiliary("net", _counting_builder(calls), key=("resnet18", "avgpool")) is not b
    m.auxiliary("other", lambda: (nn.Identity(), True))  # any value, e.g. MetalGAN's (network, bf16) pair
    m.drop_auxiliary()
    assert m.auxiliary("net", _counting_builder(calls), key=("resnet18", "avgpool")) is not b
    assert len(calls) == 4


def test_auxiliary_moves_a_module_to_the_device_and_keeps_nothing_when_build_fails() -> None:
    m = _Toy()
    net = m.auxiliary("net", lambda: nn.Linear(2, 2), device="meta")
    assert net.weight.device.type == "meta"
    assert m.auxiliary("pair", lambda: (1, 2), device="cpu") == (1, 2)

    def broken() -> nn.Module:
        raise ValueError("no weights")

    with pytest.raises(ValueError, match="no weights"):
        m.auxiliary("bad", broken)
    calls: list[int] = []
    m.auxiliary("bad", _counting_builder(calls))
    assert len(calls) == 1


def test_memopainter_query_backbone_is_built_once_and_not_saved() -> None:
    method = build_method("memopainter", "tiny")
    keys = list(method.state_dict())
    l = torch.rand(2, 1, 32, 32) * 2 - 1
    feats = method.spatial_features(l)
    extractor = method._extractor(l.device)
    assert method._extractor(l.device) is extractor
    assert feats.shape == (2, 512)
    assert list(method.state_dict()) == keys
    assert not any(k.startswith(("_", "feature_extractor", "extractor")) for k in keys)
    assert all(mod is not extractor for mod in method.modules())


def test_exemplar_backbone_and_fallback_are_built_once_and_not_saved(tmp_path: Path) -> None:
    method = build_method("exemplar", "tiny", {"fallback": "stats"})
    keys = list(method.state_dict())
    with torch.no_grad():
        method.pyramid_of(torch.rand(1, 1, 32, 32) * 2 - 1)
    backbone = method.backbone()
    assert method.backbone() is backbone
    path = save_method(build_method("unet", "tiny").eval(), tmp_path / "unet.safetensors")
    fallback = method._fallback_method(str(path))
    assert method._fallback_method(str(path)) is fallback
    with pytest.raises(InferenceOptionError, match="is not a file"):
        method._fallback_method(str(tmp_path / "missing.safetensors"))
    assert list(method.state_dict()) == keys
    assert all(mod is not backbone and mod is not fallback for mod in method.modules())
