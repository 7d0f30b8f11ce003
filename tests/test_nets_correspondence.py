"""Coarse-to-fine dense correspondence on synthetic feature pyramids."""

from __future__ import annotations

import pytest
import torch

from fewcolor.nets.correspondence import Pyramid, attend, match


def synthetic(seed: int, size: int = 16) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Random 3-layer maps (strides 1, 2, 4 of a size×size grid) and a random L of the grid's size."""
    g = torch.Generator().manual_seed(seed)
    maps = [torch.rand(1, c, size >> k, size >> k, generator=g) for k, c in enumerate((8, 16, 16))]
    return maps, torch.rand(1, 1, size, size, generator=g) * 2 - 1


def test_an_image_matches_itself_everywhere_and_consistently():
    maps, l = synthetic(0)
    pyr = Pyramid.of_image(maps, l)
    m = match(pyr, pyr, (1.0, 1.0, 1.0), lum_weight=0.2)
    _, y, x = pyr.cells(0)
    assert m.shape == (16, 16)
    assert torch.equal(m.y, y) and torch.equal(m.x, x) and bool(m.consistent.all())
    assert torch.allclose(m.similarity, torch.ones(256), atol=1e-5)


def test_concat_indexes_every_image_and_the_best_support_wins():
    a, la = synthetic(1)
    b, lb = synthetic(2, size=8)
    both = Pyramid.concat([Pyramid.of_image(b, lb), Pyramid.of_image(a, la)])
    assert both.num_images == 2 and both.starts[0].tolist() == [0, 64]
    image, y, x = both.cells(0)
    assert torch.equal(both.index(0, image, y, x), torch.arange(64 + 256))
    m = match(Pyramid.of_image(a, la), both, (1.0, 1.0, 1.0), lum_weight=0.2)
    assert bool((m.image == 1).all())  # the query is image 1 of the supports


def test_a_zero_prior_support_loses_to_an_equal_one():
    maps, l = synthetic(3)
    pyr = Pyramid.of_image(maps, l)
    doubted = pyr.with_prior(torch.zeros(1, 1, 4, 4))
    assert all(bool((p == 0).all()) for p in doubted.prior)
    m = match(pyr, Pyramid.concat([doubted, pyr]), (1.0, 1.0, 1.0), lum_weight=0.2)
    assert bool((m.image == 1).all()) and bool((m.prior == 1).all())


@pytest.mark.parametrize("layer", [0, 1])
def test_attention_puts_most_weight_on_the_cell_itself(layer):
    maps, l = synthetic(4)
    pyr = Pyramid.of_image(maps, l)
    rows, weights = attend(pyr, pyr, (1.0, 1.0, 1.0), 0.2, layer, temperature=0.02, top_k=5)
    n = pyr.feats[layer].shape[0]
    assert rows.shape == weights.shape == (n, 5)
    assert torch.equal(rows[:, 0], torch.arange(n))  # its own cell scores 1, every other cell less
    assert torch.allclose(weights.sum(1), torch.ones(n))
    assert bool((weights[:, :-1] >= weights[:, 1:]).all()) and bool((weights[:, 0] > 0.5).all())


def test_attention_sharpens_as_the_temperature_falls_and_ignores_a_doubted_copy():
    maps, l = synthetic(5)
    pyr = Pyramid.of_image(maps, l)
    _, hot = attend(pyr, pyr, (1.0, 1.0, 1.0), 0.2, 0, temperature=1.0, top_k=8)
    _, cold = attend(pyr, pyr, (1.0, 1.0, 1.0), 0.2, 0, temperature=0.01, top_k=8)
    assert bool((cold[:, 0] > hot[:, 0]).all())
    doubted = pyr.with_prior(torch.zeros(1, 1, 4, 4))
    rows, _ = attend(pyr, Pyramid.concat([doubted, pyr]), (1.0, 1.0, 1.0), 0.2, 0, temperature=0.02, top_k=4)
    n = pyr.feats[0].shape[0]
    assert torch.equal(rows[:, 0], torch.arange(n) + n)  # the trusted copy (image 1) wins every cell
    with pytest.raises(ValueError, match="temperature"):
        attend(pyr, pyr, (1.0, 1.0, 1.0), 0.2, 0, temperature=0.0, top_k=4)
