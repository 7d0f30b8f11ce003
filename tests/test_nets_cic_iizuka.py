"""Shapes of Zhang's CIC network and Iizuka's global+local network."""

from __future__ import annotations

import pytest
import torch

from fewcolor.nets.cic import CICNet, CICRegressor
from fewcolor.nets.iizuka import IizukaNet

TINY = (4, 4, 8, 8, 8, 8, 8, 4)


def test_cic_logits_at_quarter_resolution() -> None:
    net = CICNet(1, 313, TINY)
    assert net(torch.randn(2, 1, 40, 56)).shape == (2, 313, 10, 14)


def test_cic_has_dilated_middle_and_no_pooling() -> None:
    net = CICNet(1, 313, TINY)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert sum(1 for c in convs if c.dilation == (2, 2)) == 6  # conv5 and conv6, 3 convs each
    assert not any(isinstance(m, (torch.nn.MaxPool2d, torch.nn.AvgPool2d)) for m in net.modules())
    assert sum(1 for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)) == 7


def test_cic_rejects_sizes_not_multiple_of_8() -> None:
    with pytest.raises(ValueError, match="divisible by 8"):
        CICNet(1, 313, TINY)(torch.randn(1, 1, 36, 40))


def test_cic_regressor_full_size_in_range() -> None:
    out = CICRegressor(1, TINY)(torch.randn(2, 1, 32, 48))
    assert out.shape == (2, 2, 32, 48)
    assert out.abs().max() <= 1


def test_iizuka_paper_shapes() -> None:
    net = IizukaNet(width=1 / 16, global_size=224, num_classes=5).eval()
    l = torch.randn(2, 1, 64, 96)
    assert net.mid(net.low(l)).shape[-2:] == (8, 12)  # H/8 × W/8
    ab, logits = net(l)
    assert ab.shape == (2, 2, 64, 96)
    assert logits is not None and logits.shape == (2, 5)
    assert ab.abs().max() <= 1


def test_iizuka_global_from_changes_output_and_broadcasts() -> None:
    torch.manual_seed(0)
    net = IizukaNet(width=1 / 16, global_size=64).eval()
    l = torch.randn(3, 1, 32, 40)
    other = torch.randn(1, 1, 48, 24)
    with torch.no_grad():
        own, _ = net(l)
        moved, logits = net(l, global_from=other)
    assert logits is None and moved.shape == own.shape
    assert (moved - own).abs().max() > 1e-4


def test_iizuka_fusion_sigmoid_option_and_errors() -> None:
    net = IizukaNet(width=1 / 16, global_size=64, fusion_activation="sigmoid").eval()
    assert net(torch.randn(1, 1, 16, 16))[0].shape == (1, 2, 16, 16)
    with pytest.raises(ValueError, match="multiple of 32"):
        IizukaNet(global_size=100)
    with pytest.raises(ValueError, match="relu or sigmoid"):
        IizukaNet(fusion_activation="tanh")


def test_any_batch_norm_matches_batch_norm_and_takes_a_single_value_per_channel() -> None:
    from fewcolor.nets.norm import BatchNorm1dAnyBatch, BatchNorm2dAnyBatch

    torch.manual_seed(0)
    for ours, ref, shape in ((BatchNorm1dAnyBatch(4), torch.nn.BatchNorm1d(4), (5, 4)),
                             (BatchNorm2dAnyBatch(4), torch.nn.BatchNorm2d(4), (2, 4, 3, 3))):
        ref.load_state_dict(ours.state_dict())
        x = torch.randn(shape)
        torch.testing.assert_close(ours(x), ref(x))  # a real batch: identical, running stats included
        torch.testing.assert_close(ours.running_mean, ref.running_mean)
        one = torch.randn(1, 4, *([1, 1] if len(shape) == 4 else []))
        stats = ours.running_mean.clone(), ours.running_var.clone()
        out = ours(one)  # plain BatchNorm raises here
        expected = (one - stats[0].view(1, 4, *[1] * (one.dim() - 2))) / torch.sqrt(
            stats[1].view(1, 4, *[1] * (one.dim() - 2)) + ours.eps)
        torch.testing.assert_close(out, expected)
        assert torch.equal(ours.running_mean, stats[0]) and torch.equal(ours.running_var, stats[1])
