"""cgan: pix2pix-style conditional GAN with every GAN loss, both generators, three discriminators."""

from __future__ import annotations

import pytest
import torch

from fewcolor.losses.gan import GAN_KINDS, gradient_penalty
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


def _params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _changed(before: list[torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(a, p) for a, p in zip(before, module.parameters(), strict=True))


@pytest.mark.parametrize("kind", GAN_KINDS)
def test_every_gan_loss_trains_one_step(kind: str, batch: dict) -> None:
    # Each phase's loss is the GAN kind's formula on the current nets, and each optimiser moves only its net:
    # the D phases leave G untouched (G's output is detached), the G phase's loss sees the updated D.
    disc = "autoencoder" if kind == "ebgan" else "patch"
    m = _tiny(gan_loss=kind, discriminator=disc, d_steps=2)
    opts = m.configure_optimizers()
    g0, d0 = _params(m.generator), _params(m.discriminator)
    real = torch.cat([batch["l"], batch["ab"]], 1)
    phases = m.training_step(batch, 0)
    for k in range(2):
        phase = next(phases)
        assert phase.optimizer == "discriminator"
        with torch.no_grad():
            fake = torch.cat([batch["l"], m.generator(batch["l"])], 1)
        expected = m.gan.d_loss(m.discriminator(real), m.discriminator(fake))
        if kind == "wgan-gp":
            g = torch.Generator().manual_seed((0 * 1_000_003 + 0) * 16 + k)
            expected = expected + gradient_penalty(m.discriminator, real, fake, m.config.gp_weight, generator=g)
        assert phase.loss.item() == pytest.approx(expected.item(), rel=1e-4, abs=1e-5)
        opts["discriminator"].zero_grad(set_to_none=True)
        opts["generator"].zero_grad(set_to_none=True)
        phase.loss.backward()
        assert all(p.grad is None for p in m.generator.parameters())
        opts["discriminator"].step()
        if phase.after_step:
            phase.after_step()
    assert _changed(d0, m.discriminator) and not _changed(g0, m.generator)
    phase = next(phases)
    assert phase.optimizer == "generator"
    out = m.generator(batch["l"])
    expected = m.gan.g_loss(m.discriminator(torch.cat([batch["l"], out], 1))) + m.pixel(out, batch["ab"])[0]
    assert phase.loss.item() == pytest.approx(expected.item(), rel=1e-4, abs=1e-5)
    d1 = _params(m.discriminator)
    opts["generator"].zero_grad(set_to_none=True)
    phase.loss.backward()
    opts["generator"].step()
    assert _changed(g0, m.generator) and not _changed(d1, m.discriminator)
    assert next(phases, None) is None


def test_wgan_clips_the_critic_after_its_step(batch: dict) -> None:
    m = _tiny(gan_loss="wgan", wgan_clip=0.02)
    _step_once(m, batch)
    assert max(p.abs().max().item() for p in m.discriminator.parameters()) <= 0.02 + 1e-7


def test_wgan_gp_adds_the_seeded_penalty_and_uses_instance_norm(batch: dict) -> None:
    m = _tiny(gan_loss="wgan-gp", seed=3)
    assert not any(isinstance(x, torch.nn.BatchNorm2d) for x in m.discriminator.modules())
    first = next(m.training_step(batch, 5))
    real = torch.cat([batch["l"], batch["ab"]], 1)
    with torch.no_grad():
        fake = torch.cat([batch["l"], m.generator(batch["l"])], 1)
    g = torch.Generator().manual_seed((3 * 1_000_003 + 5) * 16)
    gp = gradient_penalty(m.discriminator, real, fake, 10.0, generator=g)
    assert gp.item() > 0.1  # an untrained critic's gradient norm is far from 1
    assert first.logs["loss/gp"] == pytest.approx(gp.item(), rel=1e-4)
    critic = m.discriminator(fake).mean() - m.discriminator(real).mean()
    assert first.loss.item() == pytest.approx((critic + gp).item(), rel=1e-4, abs=1e-5)


def test_fabbri_presets_generator_alone_has_no_discriminator(batch: dict) -> None:
    # "Col.Col.(G)": the CIC generator trained as a regressor alone — D is not even built, no D phase runs.
    # (The old way, gan_weight=0, still built and trained a discriminator.)
    m = build_method("cgan", "fabbri-g-cpu", {"image_size": 32, "cic_widths": (4, 8, 16, 16, 16, 16, 16, 8)})
    assert m.discriminator is None and list(m.configure_optimizers()) == ["generator"]
    assert not any("discriminator" in k for k in m.state_dict())
    torch.manual_seed(0)  # the same dropout masks for the phase and the check
    phases = list(m.training_step(batch, 0))
    assert [p.optimizer for p in phases] == ["generator"]
    torch.manual_seed(0)
    expected = 100 * (m.generator(batch["l"]) - batch["ab"]).abs().mean()  # λ_L1 = 100, no adversarial term
    assert phases[0].loss.item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(ValueError, match="gan_weight=0"):
        build_method("cgan", "fabbri-g", {"gan_weight": 1.0})
    cls = type(m)
    assert cls.default_batch_size("fabbri", 8) == 32 and cls.default_batch_size("fabbri-g", 8) == 32


def test_cic_generator_noise_is_dropout() -> None:
    # Fabbri & Islam: the generator's noise is dropout (the old CIC generator had none): train mode is random,
    # eval mode deterministic.
    m = build_method("cgan", "fabbri-cpu", {"image_size": 32, "cic_widths": (4, 8, 16, 16, 16, 16, 16, 8)})
    assert sum(isinstance(x, torch.nn.Dropout) for x in m.generator.modules()) == 3
    l = torch.rand(1, 1, 32, 32) * 2 - 1
    m.train()
    assert not torch.equal(m.generator(l), m.generator(l))
    m.eval()
    assert torch.equal(m.generator(l), m.generator(l))


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
