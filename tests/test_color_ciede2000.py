"""CIEDE2000 against the 34 published test pairs of Sharma, Wu & Dalal (2005), Table 1."""

from __future__ import annotations

import pytest
import torch

from fewcolor.color.ciede2000 import delta_e_2000, palette_distance
from fewcolor.color.lab import rgb_to_lab

# L1, a1, b1, L2, a2, b2, ΔE00 — G. Sharma, W. Wu, E. N. Dalal, Color Res. Appl. 30(1):21-30, 2005, Table 1
SHARMA_PAIRS = [
    (50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425),
    (50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615),
    (50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412),
    (50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669),
    (50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461),
    (50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065),
    (50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492),
    (50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977),
    (50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030),
    (50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000),
    (60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644),
    (63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630),
    (61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731),
    (35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645),
    (22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373),
    (36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146),
    (90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441),
    (90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381),
    (6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377),
    (2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082),
]


def _table() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    t = torch.tensor(SHARMA_PAIRS, dtype=torch.float64)
    return t[:, :3], t[:, 3:6], t[:, 6]


def test_matches_sharma_table() -> None:
    lab1, lab2, expected = _table()
    assert len(SHARMA_PAIRS) == 34
    got = delta_e_2000(lab1, lab2)
    # the table is printed to 4 decimals: agreement to its rounding (±5e-5) plus float64 noise
    assert (got - expected).abs().max() < 1e-4
    # symmetric in its arguments
    assert (delta_e_2000(lab2, lab1) - expected).abs().max() < 1e-4


def test_agrees_with_skimage_on_random_colours() -> None:
    skcolor = pytest.importorskip("skimage.color", reason="scikit-image (dev extra) gives reference values")
    g = torch.Generator().manual_seed(0)
    rgb = torch.rand(2, 3, 20, 20, generator=g)
    lab = rgb_to_lab(rgb).movedim(1, -1).double()
    lab1, lab2 = lab[0], lab[1]
    ref = torch.from_numpy(skcolor.deltaE_ciede2000(lab1.numpy(), lab2.numpy()))
    assert (delta_e_2000(lab1, lab2) - ref).abs().max() < 1e-6


def test_batched_broadcast_dtype_and_zero() -> None:
    lab1, lab2, expected = _table()
    got = delta_e_2000(lab1.float().reshape(2, 17, 3), lab2.float().reshape(2, 17, 3))
    assert got.shape == (2, 17) and got.dtype == torch.float32
    assert (got.flatten().double() - expected).abs().max() < 1e-3
    assert delta_e_2000(lab1, lab1).abs().max() == 0
    assert delta_e_2000(lab1[:, None], lab2[None]).shape == (34, 34)


def test_gradients_are_finite_even_at_zero_chroma_and_equality() -> None:
    lab1, lab2, _ = _table()
    lab1 = lab1.clone().requires_grad_(True)
    (delta_e_2000(lab1, lab2).sum() + delta_e_2000(lab1, lab1.detach()).sum()).backward()
    assert lab1.grad is not None and torch.isfinite(lab1.grad).all()


def test_palette_distance_ordered_and_nearest() -> None:
    g = torch.Generator().manual_seed(1)
    pal = torch.rand(3, 10, 3, generator=g)
    shuffled = pal[:, torch.randperm(10, generator=g)]
    assert torch.allclose(palette_distance(pal, pal), torch.zeros(3), atol=1e-5)
    # order matters in the MemoPainter-style "ordered" mode, not in "nearest"
    assert (palette_distance(pal, shuffled) > 1.0).all()
    assert torch.allclose(palette_distance(pal, shuffled, match="nearest"), torch.zeros(3), atol=1e-5)
    lab = rgb_to_lab(pal.movedim(-1, -2).unsqueeze(-1)).squeeze(-1).movedim(-2, -1)
    other = torch.rand(3, 10, 3, generator=g)
    lab_o = rgb_to_lab(other.movedim(-1, -2).unsqueeze(-1)).squeeze(-1).movedim(-2, -1)
    assert torch.allclose(palette_distance(pal, other), delta_e_2000(lab, lab_o).mean(dim=-1), atol=1e-5)
    shares = torch.zeros(3, 10)
    shares[:, 0] = 1.0
    assert torch.allclose(palette_distance(pal, other, weights=shares), delta_e_2000(lab, lab_o)[:, 0], atol=1e-5)
    with pytest.raises(ValueError, match="same length"):
        palette_distance(pal, other[:, :5])
    with pytest.raises(ValueError, match="match"):
        palette_distance(pal, other, match="hungarian")  # type: ignore[arg-type]
