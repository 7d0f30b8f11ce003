"""fewcolor.data.grey: grey when ≤ 1 % of pixels have RGB spread > 12/255."""

from __future__ import annotations

import pytest
import torch

from fewcolor.data.grey import colour_fraction, is_grey


def _with_coloured(n_coloured: int, spread: float, side: int = 100) -> torch.Tensor:
    img = torch.full((3, side, side), 0.5)
    flat = img.view(3, -1)
    flat[0, :n_coloured] += spread
    return img


def test_pure_grey_and_pure_colour() -> None:
    assert is_grey(torch.full((3, 8, 8), 0.3)) is True
    red = torch.zeros(3, 8, 8)
    red[0] = 1
    assert is_grey(red) is False


def test_threshold_on_spread_is_12_of_255() -> None:
    # every pixel tinted by just under 12/255 is still grey; just over is colour
    assert is_grey(_with_coloured(10_000, 11.5 / 255))
    assert not is_grey(_with_coloured(10_000, 12.5 / 255))


def test_threshold_on_fraction_is_one_percent_inclusive() -> None:
    assert is_grey(_with_coloured(100, 0.3))  # exactly 1 % of 10 000 pixels
    assert not is_grey(_with_coloured(101, 0.3))
    assert float(colour_fraction(_with_coloured(101, 0.3))) == pytest.approx(0.0101)


def test_batch_gives_bool_tensor() -> None:
    batch = torch.stack([_with_coloured(0, 0.3), _with_coloured(5000, 0.3)])
    out = is_grey(batch)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.bool and out.tolist() == [True, False]


def test_bad_shape_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        is_grey(torch.zeros(1, 8, 8))
