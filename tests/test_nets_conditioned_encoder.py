"""MemoPainter's generator on a pretrained encoder: FiLM conditioning that starts as the identity."""

from __future__ import annotations

import pytest
import torch

from fewcolor.nets.encoder_decoder import ConditionedEncoderGenerator, EncoderGenerator
from fewcolor.nets.encoders import PretrainedEncoder


def _pair(seed: int = 0) -> tuple[EncoderGenerator, ConditionedEncoderGenerator]:
    torch.manual_seed(seed)
    plain = EncoderGenerator(PretrainedEncoder("efficientnet-lite0", pretrained=False)).eval()
    conditioned = ConditionedEncoderGenerator(PretrainedEncoder("efficientnet-lite0", pretrained=False), 313,
                                              mlp_hidden=16).eval()
    missing = conditioned.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith("params.") for k in missing)  # the same decoder, plus the MLP
    return plain, conditioned


def test_untrained_conditioning_is_the_identity() -> None:
    plain, conditioned = _pair()
    l = torch.rand(2, 1, 64, 64) * 2 - 1
    feature = torch.softmax(torch.randn(2, 313), dim=1)
    with torch.no_grad():
        assert torch.allclose(conditioned(l, feature), plain(l), atol=1e-6)


def test_conditioning_changes_the_colours_per_sample() -> None:
    _, conditioned = _pair()
    with torch.no_grad():
        torch.nn.init.normal_(conditioned.params.mlp[-1].weight, std=0.5)
    l = (torch.rand(1, 1, 64, 64) * 2 - 1).expand(2, -1, -1, -1)
    feature = torch.zeros(2, 313)
    feature[0, 40], feature[1, 250] = 1.0, 1.0  # all mass in one bin: two very different colour features
    with torch.no_grad():
        logits = conditioned.net(l, conditioned.params(feature))
        plain_logits = conditioned.net(l)
    # same L, other colour feature: other bin logits (an untrained head's annealed mean is nearly flat)
    assert (logits[0] - logits[1]).abs().mean() > 0.1 * plain_logits.abs().mean()


def test_wrong_feature_shape_is_one_clear_error() -> None:
    _, conditioned = _pair()
    with pytest.raises(ValueError, match=r"colour feature must be \(1, 313\)"):
        conditioned(torch.zeros(1, 1, 64, 64), torch.zeros(1, 10))
