"""The luminance-matched mean colour (the exemplar method's fallback)."""

from __future__ import annotations

import pytest
import torch

from fewcolor.color.luminance_lut import apply_luminance_lut, luminance_lut


def test_each_band_gets_the_weighted_mean_and_empty_bands_copy_the_nearest():
    l = torch.tensor([-0.95, -0.9, 0.9, 0.95])  # dark pixels and bright pixels only
    ab = torch.tensor([[0.2, 0.0], [0.4, 0.0], [0.0, -0.5], [0.0, -0.5]])
    table = luminance_lut(l, ab, weight=torch.tensor([1.0, 3.0, 1.0, 1.0]), bins=10)
    assert torch.allclose(table[0], torch.tensor([0.35, 0.0]))
    assert torch.allclose(table[9], torch.tensor([0.0, -0.5]))
    assert torch.equal(table[3], table[0]) and torch.equal(table[6], table[9])


def test_lookup_interpolates_between_band_centres():
    table = torch.tensor([[0.0, 0.0], [1.0, -1.0]])  # two bands: centres at L_norm = -0.5 and 0.5
    l = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0]).view(1, 1, 1, 5)
    ab = apply_luminance_lut(l, table)
    assert ab.shape == (1, 2, 1, 5)
    assert torch.allclose(ab[0, 0, 0], torch.tensor([0.0, 0.0, 0.5, 1.0, 1.0]))


def test_no_weighted_pixel_gives_grey_and_bad_shapes_raise():
    table = luminance_lut(torch.zeros(3), torch.ones(3, 2), weight=torch.zeros(3), bins=4)
    assert torch.equal(table, torch.zeros(4, 2))
    with pytest.raises(ValueError, match="luminance_lut"):
        luminance_lut(torch.zeros(3), torch.ones(3, 3))
