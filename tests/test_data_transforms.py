"""fewcolor.data.transforms: shapes, determinism from the generator, flips and crops."""

from __future__ import annotations

import pytest
import torch

from fewcolor.data.transforms import (
    CenterCrop,
    Compose,
    RandomCrop,
    RandomHorizontalFlip,
    RandomScale,
    Resize,
    eval_transform,
    few_shot_transform,
    generator_for,
    train_transform,
)


def _img(h: int = 20, w: int = 30) -> torch.Tensor:
    return torch.rand(3, h, w, generator=torch.Generator().manual_seed(0))


def test_resize_shorter_side_keeps_aspect() -> None:
    assert Resize(10)(_img(20, 30)).shape == (3, 10, 15)
    assert Resize(10)(_img(30, 20)).shape == (3, 15, 10)
    assert Resize((7, 9))(_img()).shape == (3, 7, 9)
    assert Resize(4)(torch.rand(2, 3, 8, 12)).shape == (2, 3, 4, 6)  # batches too


def test_resize_is_antialiased_and_stays_in_range() -> None:
    stripes = torch.zeros(3, 64, 64)
    stripes[..., ::2] = 1.0  # one-pixel stripes: plain bilinear sampling would alias
    small = Resize(8)(stripes)
    assert small.min() >= 0 and small.max() <= 1
    assert torch.allclose(small, torch.full_like(small, 0.5), atol=0.05)


def test_center_crop_takes_the_middle() -> None:
    img = torch.arange(5 * 7, dtype=torch.float32).view(1, 5, 7).expand(3, 5, 7)
    out = CenterCrop(3)(img)
    assert out.shape == (3, 3, 3) and torch.equal(out, img[:, 1:4, 2:5])
    with pytest.raises(ValueError, match="larger than"):
        CenterCrop(6)(img)


def test_random_crop_in_bounds_and_deterministic() -> None:
    img = torch.arange(20 * 30, dtype=torch.float32).view(1, 20, 30).expand(3, 20, 30)
    crop = RandomCrop((8, 10))
    seen = set()
    for i in range(50):
        out = crop(img, generator_for(0, 0, i))
        assert out.shape == (3, 8, 10)
        top, left = divmod(int(out[0, 0, 0]), 30)
        assert 0 <= top <= 12 and 0 <= left <= 20
        assert torch.equal(out, img[:, top:top + 8, left:left + 10])
        assert torch.equal(out, crop(img, generator_for(0, 0, i)))
        seen.add((top, left))
    assert len(seen) > 20  # positions really vary
    with pytest.raises(ValueError, match="Generator"):
        crop(img)


def test_flip_actually_flips() -> None:
    img = _img()
    assert torch.equal(RandomHorizontalFlip(1.0)(img, torch.Generator()), img.flip(-1))
    assert torch.equal(RandomHorizontalFlip(0.0)(img, torch.Generator()), img)
    flips = [not torch.equal(RandomHorizontalFlip()(img, generator_for(1, 0, i)), img) for i in range(200)]
    assert 70 < sum(flips) < 130


def test_generator_for_depends_on_every_part_of_the_triple() -> None:
    draws = {tuple(torch.rand(2, generator=generator_for(*k)).tolist())
             for k in [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1)]}
    assert len(draws) == 4
    assert torch.equal(torch.rand(3, generator=generator_for(5, 2, 9)),
                       torch.rand(3, generator=generator_for(5, 2, 9)))


def test_factories() -> None:
    img = _img(40, 50)
    t = train_transform(16)
    assert t.random and not eval_transform(16).random
    a = t(img, generator_for(0, 3, 7))
    assert a.shape == (3, 16, 16) and torch.equal(a, t(img, generator_for(0, 3, 7)))
    outs = {t(img, generator_for(0, e, 7)).sum().item() for e in range(10)}
    assert len(outs) > 1  # epochs differ
    e = eval_transform(16)(img)
    assert e.shape == (3, 16, 16) and torch.equal(e, CenterCrop(16)(Resize(16)(img)))
    assert not any(isinstance(s, RandomHorizontalFlip) for s in train_transform(16, flip=False).transforms)
    assert isinstance(t, Compose)


def test_few_shot_transform_is_seeded_and_jitters_scale_crop_and_flip() -> None:
    img = torch.rand(3, 40, 50)
    t = few_shot_transform(32, max_scale=1.5)
    outs = [t(img, generator_for(0, 0, i)) for i in range(12)]
    assert all(o.shape == (3, 32, 32) for o in outs)
    torch.testing.assert_close(t(img, generator_for(0, 0, 3)), outs[3])  # same generator, same crop
    assert len({o.sum().item() for o in outs}) == len(outs)  # every draw a different view
    # scale jitter: the shorter side is resized to 32..48 before the crop
    scale = RandomScale(32, 1.5)
    sides = {min(scale(img, generator_for(1, 0, i)).shape[-2:]) for i in range(20)}
    assert min(sides) >= 32 and max(sides) <= 48 and len(sides) > 3
    # a flip is among the draws: some view equals a mirrored crop of the scale-jittered image
    no_flip = Compose([RandomScale(32, 1.5), RandomCrop(32)])
    flipped = [not torch.equal(t(img, generator_for(0, 0, i)), no_flip(img, generator_for(0, 0, i)))
               for i in range(12)]
    assert any(flipped) and not all(flipped)
    with pytest.raises(ValueError, match="max_scale"):
        RandomScale(32, 0.9)


def test_split_deterministic_reproduces_the_transform() -> None:
    from fewcolor.data.transforms import Compose, RandomCrop, Resize, generator_for, split_deterministic

    img = torch.rand(3, 20, 30)
    t = train_transform(12)
    head, tail = split_deterministic(t)
    assert isinstance(head, Compose) and [type(x) for x in head.transforms] == [Resize]
    assert tail is not None and tail.random
    assert torch.equal(tail(head(img), generator_for(0, 1, 2)), t(img, generator_for(0, 1, 2)))
    assert split_deterministic(RandomCrop(4))[0] is None
    assert split_deterministic(eval_transform(8))[1] is None
    assert split_deterministic(None) == (None, None)
