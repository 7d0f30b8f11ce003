"""Sign and gradient direction of every GAN loss; WGAN-GP penalty value; EBGAN margin; pixel losses."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fewcolor.losses.gan import GAN_KINDS, GanLoss, gradient_penalty
from fewcolor.losses.pixel import PixelLoss


def _scores(kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    if kind == "ebgan":  # energies: low = real-looking
        return torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])
    # inside (0, 1): the region where every loss still separates (LSGAN targets are 1 and 0)
    return torch.tensor([0.6, 0.3]), torch.tensor([0.4, 0.2])


def _realer(kind: str, x: torch.Tensor, amount: float = 0.5) -> torch.Tensor:
    """Move scores towards 'real' by amount (down for EBGAN energies, up otherwise)."""
    return x - amount if kind == "ebgan" else x + amount


@pytest.mark.parametrize("kind", GAN_KINDS)
def test_d_loss_falls_when_real_looks_realer_and_fake_faker(kind: str) -> None:
    loss = GanLoss(kind)
    real, fake = _scores(kind)
    base = loss.d_loss(real, fake)
    assert loss.d_loss(_realer(kind, real), fake) < base
    assert loss.d_loss(real, _realer(kind, fake, -0.1)) < base


@pytest.mark.parametrize("kind", GAN_KINDS)
def test_g_loss_gradient_pushes_fake_scores_towards_real(kind: str) -> None:
    loss = GanLoss(kind)
    _, fake = _scores(kind)
    fake = fake.clone().requires_grad_(True)
    loss.g_loss(fake).backward()
    # Gradient descent step -grad must move scores towards "real".
    if kind == "ebgan":
        assert (fake.grad > 0).all()  # descent lowers the energy
    else:
        assert (fake.grad < 0).all()  # descent raises the score
    assert loss.g_loss(_realer(kind, fake.detach())) < loss.g_loss(fake.detach())


@pytest.mark.parametrize("kind", GAN_KINDS)
def test_d_loss_gradient_direction(kind: str) -> None:
    loss = GanLoss(kind)
    real, fake = (t.clone().requires_grad_(True) for t in _scores(kind))
    loss.d_loss(real, fake).backward()
    if kind == "ebgan":
        assert (real.grad > 0).all() and (fake.grad < 0).all()
    else:
        assert (real.grad < 0).all() and (fake.grad > 0).all()


def test_known_values() -> None:
    r, f = torch.tensor([2.0]), torch.tensor([-1.0])
    assert GanLoss("lsgan").d_loss(r, f).item() == pytest.approx(0.5 * (1 + 1))
    assert GanLoss("wgan").d_loss(r, f).item() == pytest.approx(-3.0)
    assert GanLoss("hinge").d_loss(r, f).item() == pytest.approx(0.0)
    assert GanLoss("hinge").d_loss(torch.tensor([0.5]), torch.tensor([0.0])).item() == pytest.approx(1.5)
    expected = -torch.log(torch.sigmoid(torch.tensor(2.0))) - torch.log(1 - torch.sigmoid(torch.tensor(-1.0)))
    assert GanLoss("vanilla").d_loss(r, f).item() == pytest.approx(expected.item(), rel=1e-6)


def test_ebgan_margin() -> None:
    loss = GanLoss("ebgan", margin=2.0)
    real = torch.tensor([0.5])
    # Fake energy beyond the margin: only D(x) counts, and its gradient w.r.t. the fake energy is 0.
    far = torch.tensor([3.0], requires_grad=True)
    out = loss.d_loss(real, far)
    out.backward()
    assert out.item() == pytest.approx(0.5) and far.grad.item() == 0.0
    # Within the margin: m - D(G(z)) is added.
    assert loss.d_loss(real, torch.tensor([1.5])).item() == pytest.approx(0.5 + 0.5)
    assert loss.g_loss(torch.tensor([1.5])).item() == pytest.approx(1.5)
    with pytest.raises(ValueError, match="positive margin"):
        GanLoss("ebgan", margin=0)


def test_requirements_flags_and_clipping() -> None:
    assert GanLoss("ebgan").needs_autoencoder and not GanLoss("vanilla").needs_autoencoder
    assert GanLoss("wgan").needs_clipping and not GanLoss("wgan-gp").needs_clipping
    assert GanLoss("wgan-gp").needs_gradient_penalty and not GanLoss("wgan-gp").batchnorm_ok
    net = nn.Linear(4, 4)
    with torch.no_grad():
        net.weight.fill_(3.0)
    GanLoss("wgan", clip=0.05).clip_(net)
    assert net.weight.abs().max().item() == pytest.approx(0.05)
    with pytest.raises(ValueError, match="choose one of"):
        GanLoss("bogus")


class _Linear(nn.Module):
    """Critic D(x) = <w, x> per sample: its input gradient is w everywhere."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1) * self.w.flatten()).sum(1)


def test_wgan_gp_penalty_value_on_a_linear_critic() -> None:
    w = torch.zeros(1, 2, 2)
    w[0, 0, 0], w[0, 1, 1] = 3.0, 4.0  # ||w|| = 5 -> penalty = λ (5 - 1)^2 = 160
    critic = _Linear(w)
    real, fake = torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2)
    gp = gradient_penalty(critic, real, fake, weight=10.0, generator=torch.Generator().manual_seed(0))
    assert gp.item() == pytest.approx(160.0, rel=1e-5)
    gp.backward()  # differentiable w.r.t. the critic: d/dw 10(||w||-1)^2 = 20(||w||-1) w/||w||
    torch.testing.assert_close(critic.w.grad, 20 * 4 * w / 5)
    with torch.no_grad():
        critic.w.mul_(1 / 5)  # unit-norm gradient: zero penalty
    assert gradient_penalty(critic, real, fake).item() == pytest.approx(0.0, abs=1e-8)


def test_pixel_loss_weights() -> None:
    pred, target = torch.zeros(1, 2, 2, 2), torch.full((1, 2, 2, 2), 0.5)
    total, logs = PixelLoss()(pred, target)
    assert total.item() == pytest.approx(100 * 0.5) and logs["l2"] == pytest.approx(0.25)
    total, _ = PixelLoss(l1=1.0, l2=2.0)(pred, target)
    assert total.item() == pytest.approx(0.5 + 0.5)
    with pytest.raises(ValueError):
        PixelLoss(l1=-1)
    with pytest.raises(ValueError, match="differ"):
        PixelLoss()(pred, target[:, :1])
