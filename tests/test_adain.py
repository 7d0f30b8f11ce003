"""AdaIN layer and the AdaIN U-Net generator of MemoPainter."""

from __future__ import annotations

import pytest
import torch

from fewcolor.nets.adain import AdaIN, AdaINUNet


def test_adain_sets_the_channel_statistics():
    x = torch.randn(2, 3, 8, 8) * 5 + 2
    gamma = torch.tensor([[0.0, 1.0, -0.5], [2.0, 0.0, 0.0]])
    beta = torch.tensor([[1.0, -2.0, 0.0], [0.0, 0.0, 3.0]])
    y = AdaIN(3)(x, gamma, beta)
    torch.testing.assert_close(y.mean(dim=(2, 3)), beta, atol=1e-5, rtol=0)
    torch.testing.assert_close(y.std(dim=(2, 3), unbiased=False), (1 + gamma).abs(), atol=1e-3, rtol=0)


def test_generator_shapes_odd_sizes_and_feature_dependence():
    torch.manual_seed(0)
    net = AdaINUNet(feature_dim=5, base=8, depth=3, mlp_hidden=16)
    l = torch.rand(2, 1, 24, 40) * 2 - 1
    f1, f2 = torch.zeros(2, 5), torch.ones(2, 5)
    out = net(l, f1)
    assert out.shape == (2, 2, 24, 40) and out.abs().max() <= 1
    # zero-initialised last MLP layer: the feature has no effect until trained ...
    torch.testing.assert_close(net(l, f2), out)
    # ... and a few steps towards a feature-dependent target make it matter
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(30):
        loss = (net(l, f1) - 0.5).pow(2).mean() + (net(l, f2) + 0.5).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert (net(l, f1) - net(l, f2)).mean().item() > 0.3


def test_generator_rejects_bad_sizes():
    net = AdaINUNet(feature_dim=5, base=4, depth=3, mlp_hidden=8)
    with pytest.raises(ValueError, match="divisible by 8"):
        net(torch.zeros(1, 1, 20, 16), torch.zeros(1, 5))
    with pytest.raises(ValueError, match="colour feature"):
        net(torch.zeros(1, 1, 16, 16), torch.zeros(1, 4))
