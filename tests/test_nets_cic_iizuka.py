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


def _convs(module: torch.nn.Module) -> list[tuple[int, int, int]]:
    """(in, out, stride) of every conv, in order."""
    return [(m.in_channels, m.out_channels, m.stride[0]) for m in module.modules() if isinstance(m, torch.nn.Conv2d)]


def test_iizuka_layers_at_the_papers_widths() -> None:
    # Iizuka et al. 2016, Table 1 / Fig. 2 at width 1.0, built on the meta device (no memory, no compute).
    with torch.device("meta"):
        net = IizukaNet(width=1.0, global_size=224, num_classes=205)
    assert _convs(net.low) == [(1, 64, 2), (64, 128, 1), (128, 128, 2), (128, 256, 1), (256, 256, 2), (256, 512, 1)]
    assert _convs(net.mid) == [(512, 512, 1), (512, 256, 1)]
    assert _convs(net.global_conv) == [(512, 512, 2), (512, 512, 1), (512, 512, 2), (512, 512, 1)]
    fcs = [(m.in_features, m.out_features) for m in net.modules() if isinstance(m, torch.nn.Linear)]
    # global FC: 7·7·512 → 1024 → 512 → 256; classification: 512 → 256 → classes
    assert fcs == [(7 * 7 * 512, 1024), (1024, 512), (512, 256), (512, 256), (256, 205)]
    assert (net.fusion.in_channels, net.fusion.out_channels, net.fusion.kernel_size) == (512, 256, (1, 1))
    assert _convs(net.colorize) == [(256, 128, 1), (128, 64, 1), (64, 64, 1), (64, 32, 1), (32, 2, 1)]
    ups = [m.scale_factor for m in net.colorize if isinstance(m, torch.nn.Upsample)]
    assert ups == [2.0, 2.0]  # output at H/2 (H/8 · 4)


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
