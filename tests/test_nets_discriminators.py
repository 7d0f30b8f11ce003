"""Shapes, receptive field and size handling of the GAN discriminators."""

from __future__ import annotations

import pytest
import torch

from fewcolor.nets.discriminators import (
    AutoEncoderDiscriminator,
    DCGANDiscriminator,
    PatchDiscriminator,
    build_discriminator,
)


def test_patchgan_70x70_receptive_field_and_shape() -> None:
    d = PatchDiscriminator(3, base=8, n_layers=3)
    assert d.receptive_field == 70
    out = d(torch.randn(2, 3, 64, 64))
    # 64 -> 32 -> 16 -> 8 (stride-2 convs), -> 7 (C512 s1), -> 6 (final 4x4 s1)
    assert out.shape == (2, 1, 6, 6)


def test_patchgan_receptive_field_is_measured() -> None:
    # One output logit must depend on exactly a 70x70 window of the input (gradient support).
    d = PatchDiscriminator(1, base=4, n_layers=3, norm="none")
    x = torch.randn(1, 1, 128, 128, requires_grad=True)
    out = d(x)
    out[0, 0, 7, 7].backward()
    support = (x.grad[0, 0].abs() > 0).nonzero()
    span = support.max(0).values - support.min(0).values + 1
    assert span.tolist() == [70, 70]


@pytest.mark.parametrize("size", [32, 64, 48])
def test_dcgan_single_logit_any_size(size: int) -> None:
    d = DCGANDiscriminator(3, image_size=size, base=8)
    assert d(torch.randn(3, 3, size, size)).shape == (3,)


def test_dcgan_wrong_size_names_the_fix() -> None:
    d = DCGANDiscriminator(3, image_size=32, base=8)
    with pytest.raises(ValueError, match="image_size=64"):
        d(torch.randn(1, 3, 64, 64))


def test_autoencoder_energy_is_reconstruction_mse() -> None:
    d = AutoEncoderDiscriminator(3, base=8, depth=2)
    x = torch.randn(2, 3, 16, 16)
    energy = d(x)
    assert energy.shape == (2,)
    expected = (d.reconstruct(x) - x).pow(2).mean(dim=(1, 2, 3))
    torch.testing.assert_close(energy, expected)
    assert (energy >= 0).all()


def test_build_discriminator_by_name() -> None:
    assert isinstance(build_discriminator("patch", 3, 32, base=4), PatchDiscriminator)
    assert isinstance(build_discriminator("dcgan", 3, 32, base=4), DCGANDiscriminator)
    assert isinstance(build_discriminator("autoencoder", 3, 32, base=4), AutoEncoderDiscriminator)
    with pytest.raises(ValueError, match="patch, dcgan or autoencoder"):
        build_discriminator("nope", 3, 32)
