"""fewcolor.bench.speed.synthetic: seeded smooth random colour images."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fewcolor.bench.speed.synthetic import smooth_images


def test_shape_range_and_recipe() -> None:
    images = smooth_images(3, (24, 32), (4, 5), 7)
    assert images.shape == (3, 3, 24, 32) and images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1
    low = torch.rand(3, 3, 4, 5, generator=torch.Generator().manual_seed(7))
    expected = F.interpolate(low, size=(24, 32), mode="bicubic", align_corners=False).clamp(0, 1)
    assert torch.equal(images, expected)


def test_seeds_and_generators() -> None:
    assert torch.equal(smooth_images(2, (16, 16), (4, 4), 1), smooth_images(2, (16, 16), (4, 4), 1))
    assert not torch.equal(smooth_images(2, (16, 16), (4, 4), 1), smooth_images(2, (16, 16), (4, 4), 2))
    g = torch.Generator().manual_seed(1)
    first, second = smooth_images(1, (16, 16), (4, 4), g), smooth_images(1, (16, 16), (4, 4), g)
    assert torch.equal(first, smooth_images(1, (16, 16), (4, 4), 1))  # an int seeds a fresh generator
    assert not torch.equal(first, second)  # a generator is drawn from in place


def test_grain_is_small_noise_on_the_same_fields() -> None:
    plain = smooth_images(2, (48, 64), (12, 16), 0)
    grainy = smooth_images(2, (48, 64), (12, 16), 0, grain=0.02)
    noise = grainy - plain  # the coarse fields are drawn first, so both share them
    assert 0.01 < float(noise.std()) < 0.03 and grainy.min() >= 0 and grainy.max() <= 1
