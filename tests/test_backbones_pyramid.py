"""Multi-depth VGG16 features of a grey image in one pass (random weights: no weight package needed)."""

from __future__ import annotations

import pytest
import torch

from fewcolor.backbones.pyramid import VGG16_PYRAMID, GreyFeaturePyramid
from fewcolor.backbones.registry import load_backbone


def test_taps_have_the_strides_and_channels_of_relu3_3_4_3_5_3():
    torch.manual_seed(0)
    pyr = GreyFeaturePyramid("vgg16", VGG16_PYRAMID, pretrained=False)
    maps = pyr(torch.rand(1, 1, 64, 48) * 2 - 1)
    assert pyr.strides == [4, 8, 16]
    assert [tuple(m.shape) for m in maps] == [(1, 256, 16, 12), (1, 512, 8, 6), (1, 512, 4, 3)]
    assert not pyr.training and not any(p.requires_grad for p in pyr.parameters())


def test_deepest_tap_equals_the_backbone_run_to_that_layer():
    torch.manual_seed(1)
    pyr = GreyFeaturePyramid("vgg16", ("features.8", "features.15"), pretrained=False)
    torch.manual_seed(1)
    net = load_backbone("vgg16", pretrained=False)
    l = torch.rand(1, 1, 32, 32) * 2 - 1
    x = ((l + 1) / 2).expand(-1, 3, -1, -1)
    x = (x - pyr.mean) / pyr.std
    assert torch.allclose(pyr(l)[1], net.features[:16](x), atol=1e-5)


def test_bad_layers_are_named():
    with pytest.raises(KeyError, match=r"features\.<i>"):
        GreyFeaturePyramid("vgg16", ("layer4",), pretrained=False)
    with pytest.raises(ValueError, match="shallow to deep"):
        GreyFeaturePyramid("vgg16", ("features.22", "features.15"), pretrained=False)
