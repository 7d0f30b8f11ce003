"""Coarse-to-fine dense correspondence on synthetic feature pyramids."""

from __future__ import annotations

import torch

from fewcolor.nets.correspondence import Pyramid, match


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
