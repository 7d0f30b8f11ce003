"""The grey and lut baselines: zero chroma; a hand-computed table; train, adapt, save/load."""

from __future__ import annotations

import torch

from fewcolor.color.lab import rgb_to_lab
from fewcolor.color.normalize import normalize_ab, normalize_l
from fewcolor.methods.lut import l_bins, nearest_filled
from fewcolor.methods.registry import build_method, load_method, save_method
from fewcolor.pipeline import Colorizer
from fewcolor.train.adapt import adapt
from fewcolor.train.loop import TrainOptions, train
from helpers import TensorColourDataset, smooth_colour_images


def test_grey_gives_zero_chroma_and_the_input_lightness() -> None:
    grey = build_method("grey", "tiny")
    assert grey.predict_ab(torch.rand(2, 1, 8, 12)).abs().max() == 0
    img = smooth_colour_images(1, 24, seed=1)[0]
    out = Colorizer(grey, device="cpu").colorize(img)
    lab_out, lab_in = rgb_to_lab(out), rgb_to_lab(img)
    assert lab_out[1:].abs().max() < 0.5  # a, b ≈ 0 (8-bit-free float output; kornia round trip)
    torch.testing.assert_close(lab_out[0], lab_in[0], atol=0.5, rtol=0)
    adapted, how = adapt(grey, TensorColourDataset(img[None]), steps=3)
    assert how == "own" and adapted.state_dict() == {}


def test_lut_reproduces_a_hand_computed_table() -> None:
    # bins = 4 over L in [0, 100] (width 25). Image 1: L 10 → (10, 20), L 20 → (30, 0).
    # Image 2: L 15 → (-10, -20), L 80 → (0, 50), L 100 → (4, 6) (L = 100 falls into the last bin).
    lut = build_method("lut", None, {"bins": 4})
    lut.accumulate(torch.tensor([[[10.0, 20.0]]]), torch.tensor([[[10.0, 30.0]], [[20.0, 0.0]]]))
    lut.accumulate(torch.tensor([[[15.0, 80.0, 100.0]]]),
                   torch.tensor([[[-10.0, 0.0, 4.0]], [[-20.0, 50.0, 6.0]]]))
    # bin 0: mean of (10,20), (30,0), (-10,-20) = (10, 0); bin 3: mean of (0,50), (4,6) = (2, 28);
    # bin 1 (empty): nearest filled is bin 0 (distance 1); bin 2 (empty): bin 3 (distance 1).
    expected = torch.tensor([[10.0, 0.0], [10.0, 0.0], [2.0, 28.0], [2.0, 28.0]], dtype=torch.float64)
    torch.testing.assert_close(lut.table(), expected)
    assert lut.count.tolist() == [3, 0, 0, 2]
    l = normalize_l(torch.tensor([5.0, 30.0, 60.0, 99.0]).reshape(1, 1, 2, 2))
    ab = lut.predict_ab(l)
    torch.testing.assert_close(ab, normalize_ab(expected.float().t().reshape(1, 2, 2, 2)))


def test_lut_ties_go_to_the_darker_bin_and_an_empty_table_is_grey() -> None:
    assert nearest_filled(torch.tensor([1.0, 0.0, 1.0])).tolist() == [0, 0, 2]
    assert l_bins(torch.tensor([0.0, 24.99, 25.0, 100.0]), 4).tolist() == [0, 0, 1, 3]
    assert build_method("lut", None, {"bins": 4}).predict_ab(torch.zeros(1, 1, 2, 2)).abs().max() == 0


def test_lut_adapt_builds_the_table_of_two_flat_images_alone() -> None:
    colours = torch.tensor([[0.8, 0.2, 0.1], [0.1, 0.3, 0.9]])
    images = colours[:, :, None, None].expand(2, 3, 8, 8).contiguous()
    lab = rgb_to_lab(colours[:, :, None, None])[:, :, 0, 0].double()
    lut = build_method("lut", None, {"bins": 10})
    lut.accumulate(torch.full((1, 1, 1), 95.0), torch.ones(2, 1, 1) * 40)  # a previous table: discarded
    adapted, how = adapt(lut, TensorColourDataset(images), steps=1)
    assert how == "own"
    bins = l_bins(lab[:, 0], 10).tolist()
    assert bins[0] != bins[1]
    table = adapted.table()
    for i, b in enumerate(bins):
        torch.testing.assert_close(table[b], lab[i, 1:], atol=1e-4, rtol=0)
    assert adapted.count.sum() == 2 * 64  # every pixel of the two images, nothing from before


def test_lut_trains_on_a_folder_and_round_trips_through_a_checkpoint(tmp_path) -> None:
    data = TensorColourDataset(smooth_colour_images(4, 16, seed=2))
    lut = build_method("lut", "tiny")
    res = train(lut, data, TrainOptions(out_dir=tmp_path / "run", steps=3, batch_size=2, sample_every=0,
                                        progress=False, tensorboard=False))
    assert lut.count.sum() == 3 * 2 * 16 * 16  # every pixel of every batch
    loaded = load_method(res.checkpoint)
    torch.testing.assert_close(loaded.table(), lut.table())
    again = load_method(save_method(loaded, tmp_path / "again.safetensors"))
    l = torch.rand(1, 1, 8, 8) * 2 - 1
    torch.testing.assert_close(again.predict_ab(l), lut.predict_ab(l))


def test_a_training_free_method_ends_its_run_at_once_without_reading_a_batch(tmp_path) -> None:
    class CountingDataset(TensorColourDataset):
        reads = 0

        def __getitem__(self, i: int):  # type: ignore[no-untyped-def]
            CountingDataset.reads += 1
            return super().__getitem__(i)

    data = CountingDataset(smooth_colour_images(4, 16, seed=2))
    grey = build_method("grey", "tiny")
    assert not grey.learns_in_steps and build_method("lut", "tiny").learns_in_steps
    res = train(grey, data, TrainOptions(out_dir=tmp_path / "run", steps=500, batch_size=2, sample_every=0,
                                         progress=False, tensorboard=False))
    assert res.step == 500 and load_method(res.checkpoint).checkpoint_step == 500  # a finished run for bench's cache
    assert CountingDataset.reads == 0  # no empty step decoded a batch
