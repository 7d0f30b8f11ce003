"""Pretrained encoders seen through a grey image: taps, strides, freezing, the ImageNet prediction."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fewcolor.backbones.weights import get_spec, missing_message, package_file
from fewcolor.color.lab import rgb_to_lab
from fewcolor.color.normalize import normalize_l
from fewcolor.nets.encoder_decoder import EncoderDecoder, EncoderGenerator
from fewcolor.nets.encoders import ENCODERS, PretrainedEncoder

pytestmark = pytest.mark.weights


def needs(backbone: str) -> None:
    if package_file(get_spec(backbone)) is None:
        pytest.skip(missing_message(get_spec(backbone)))


def grey_chelsea(h: int = 224, w: int = 288) -> torch.Tensor:
    data = pytest.importorskip("skimage.data")
    rgb = torch.from_numpy(data.chelsea().copy()).permute(2, 0, 1).float()[None] / 255
    rgb = F.interpolate(rgb, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    return normalize_l(rgb_to_lab(rgb)[:, :1])


def test_lite0_encoder_on_grey_chelsea_still_sees_a_cat():
    # docs/MODEL_CARD.md: from the grey photo alone the encoder's global features call it class 285.
    needs("efficientnet_lite0")
    enc = PretrainedEncoder("efficientnet-lite0")
    taps, pooled = enc(grey_chelsea())
    spec = ENCODERS["efficientnet-lite0"]
    assert [t.shape[1] for t in taps] == list(spec.channels)
    assert [224 // t.shape[-2] for t in taps] == list(spec.strides)
    probs = enc.net._fc(pooled).softmax(-1)[0]
    assert int(probs.argmax()) == 285 and float(probs[285]) > 0.5


@pytest.mark.parametrize("name", ["efficientnet-lite0", "vgg16"])
def test_taps_have_the_documented_strides_and_channels(name):
    spec = ENCODERS[name]
    enc = PretrainedEncoder(name, pretrained=False)
    taps, pooled = enc(torch.zeros(1, 1, 64, 96))
    assert [(t.shape[1], 64 // t.shape[-2], 96 // t.shape[-1]) for t in taps] == [
        (c, s, s) for c, s in zip(spec.channels, spec.strides, strict=True)
    ]
    assert pooled.shape == (1, spec.global_channels)


def test_frozen_encoder_gets_no_gradient_and_keeps_batchnorm_statistics():
    enc = PretrainedEncoder("efficientnet-lite0", pretrained=False, frozen=True)
    net = EncoderDecoder(enc, 5, (16, 8, 8, 8))
    net.train()
    before = enc.net._bn0.running_mean.clone()
    net(torch.rand(2, 1, 64, 64) * 2 - 1).sum().backward()
    assert all(p.grad is None for p in enc.parameters())
    assert any(p.grad is not None for p in net.head.parameters())
    assert torch.equal(enc.net._bn0.running_mean, before)
    enc.set_frozen(False)
    net.train()
    net(torch.rand(2, 1, 64, 64) * 2 - 1).sum().backward()
    assert enc.net._conv_stem.weight.grad is not None
    assert not torch.equal(enc.net._bn0.running_mean, before)


def test_sides_must_be_multiples_of_the_deepest_stride():
    enc = PretrainedEncoder("efficientnet-lite0", pretrained=False)
    with pytest.raises(ValueError, match="divisible by 32"):
        enc(torch.zeros(1, 1, 48, 64))


def test_encoder_generator_gives_bounded_ab_at_input_size():
    gen = EncoderGenerator(PretrainedEncoder("efficientnet-lite0", pretrained=False), (16, 8, 8, 8))
    gen.eval()
    ab = gen(torch.rand(2, 1, 64, 96) * 2 - 1)
    assert ab.shape == (2, 2, 64, 96) and ab.abs().max() <= 1.0
    # T -> 0 is the mode of the bin distribution: an ab bin centre (multiples of 10 in Lab units)
    mode = gen(torch.zeros(1, 1, 32, 32), temperature=0.0)[0, :, 0, 0] * 110
    assert torch.allclose(mode, mode.round(decimals=-1), atol=1e-3)
