"""cgan: pix2pix-style conditional GAN with every GAN loss, both generators, three discriminators."""

from __future__ import annotations

import pytest
import torch

from fewcolor.losses.gan import GAN_KINDS
from fewcolor.methods.registry import build_method
from fewcolor.nets.discriminators import AutoEncoderDiscriminator, DCGANDiscriminator, PatchDiscriminator
from method_checks import (
    batch_of,
    check_odd_size,
    check_resume,
    check_roundtrip,
    four_emoji,
    grey_psnr,
    overfit,
    psnr_rgb,
)


def _tiny(**kw):
    return build_method("cgan", "tiny", kw)


def _step_once(method, batch, step=0):
    """Drive training_step by hand like the loop does; return the phase names in order."""
    opts = method.configure_optimizers()
    names = []
    for phase in method.training_step(batch, step):
        opt = opts[phase.optimizer]
        opt.zero_grad()
        phase.loss.backward()
        opt.step()
        if phase.after_step:
            phase.after_step()
        assert torch.isfinite(phase.loss)
        names.append(phase.optimizer)
    return names


@pytest.fixture(scope="module")
def batch() -> dict:
    torch.manual_seed(0)
    rgb = torch.rand(2, 3, 32, 32)
    from helpers import TensorColourDataset

    return batch_of(TensorColourDataset(rgb))


@pytest.mark.parametrize("kind", GAN_KINDS)
def test_every_gan_loss_trains_one_step(kind: str, batch: dict) -> None:
    disc = "autoencoder" if kind == "ebgan" else "patch"
    m = _tiny(gan_loss=kind, discriminator=disc, d_steps=2)
    assert _step_once(m, batch) == ["discriminator", "discriminator", "generator"]


def test_wgan_clips_the_critic_after_its_step(batch: dict) -> None:
    m = _tiny(gan_loss="wgan", wgan_clip=0.02)
    _step_once(m, batch)
    assert max(p.abs().max().item() for p in m.discriminator.parameters()) <= 0.02 + 1e-7


def test_wgan_gp_logs_penalty_and_uses_instance_norm(batch: dict) -> None:
    m = _tiny(gan_loss="wgan-gp")
    assert not any(isinstance(x, torch.nn.BatchNorm2d) for x in m.discriminator.modules())
    phases = m.training_step(batch, 0)
    first = next(phases)
    assert first.logs["loss/gp"] >= 0


def test_discriminator_choices_and_generator_choices(batch: dict) -> None:
    assert isinstance(_tiny().discriminator, PatchDiscriminator)
    assert isinstance(_tiny(discriminator="dcgan").discriminator, DCGANDiscriminator)
    assert isinstance(_tiny(gan_loss="ebgan", discriminator="autoencoder").discriminator, AutoEncoderDiscriminator)
    m = _tiny(generator="cic", discriminator="dcgan", gan_loss="lsgan", l1_weight=0.0, l2_weight=10.0)
    assert m.size_multiple == 8
    assert _step_once(m, batch) == ["discriminator", "generator"]
    with pytest.raises(ValueError, match="autoencoder"):
        _tiny(gan_loss="ebgan")
    with pytest.raises(ValueError, match="unet' or 'cic"):
        _tiny(generator="resnet")


def test_generator_loss_sees_the_updated_discriminator(batch: dict) -> None:
    # The G phase must be computed after D's optimiser step: its adversarial term uses the new D.
    m = _tiny(gan_loss="lsgan")
    opts = m.configure_optimizers()
    gen = m.training_step(batch, 0)
    d_phase = next(gen)
    opts["discriminator"].zero_grad()
    d_phase.loss.backward()
    with torch.no_grad():
        for p in m.discriminator.parameters():
            p.add_(0.5)  # a big, visible change of D
    g_phase = next(gen)
    fake = torch.cat([batch["l"], m.generator(batch["l"])], 1)
    expected = m.gan.g_loss(m.discriminator(fake)) + m.pixel(m.generator(batch["l"]), batch["ab"])[0]
    assert g_phase.loss.item() == pytest.approx(expected.item(), rel=1e-4)


def test_overfits_four_fixture_images(emoji_dir, tmp_path) -> None:
    ds = four_emoji(emoji_dir, 32)
    b = batch_of(ds)
    torch.manual_seed(0)
    m = _tiny(image_size=32)
    before = psnr_rgb(m, b)
    start, end = overfit(m, ds, tmp_path, 200, "loss/l1")
    after = psnr_rgb(m, b)
    print(f"cgan l1 {start:.4f} -> {end:.4f}; PSNR {before:.2f} -> {after:.2f} dB (grey {grey_psnr(b):.2f})")
    assert end < 0.4 * start
    assert after > 24.0 and after > grey_psnr(b) + 2.0  # measured 27.2 dB


def test_odd_sizes_roundtrip_and_resume(tmp_path) -> None:
    from helpers import TensorColourDataset, smooth_colour_images

    ds = TensorColourDataset(smooth_colour_images(4, 32))
    torch.manual_seed(0)
    m = _tiny()
    check_odd_size(m, 40, 56)
    check_roundtrip(m, batch_of(ds), tmp_path / "m.safetensors")
    check_resume(lambda: _tiny(dropout=0.5), ds, tmp_path / "resume")
