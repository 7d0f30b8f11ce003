"""Held-out scores during training: the evaluation protocol's numbers, a seeded subset, bad files skipped."""

import pytest
import torch

from fewcolor.io.image import as_saved_8bit, write_rgb
from fewcolor.methods.registry import build_method
from fewcolor.metrics.evaluate import EvalConfig, evaluate_pairs
from fewcolor.metrics.held_out import HELD_OUT_METRICS, HeldOutScores
from fewcolor.pipeline import Colorizer
from helpers import smooth_colour_images


def test_the_scores_are_fewcolor_evaluates_means_on_the_same_images(tmp_path):
    images = list(smooth_colour_images(3, 48)) + list(smooth_colour_images(2, 40, seed=1))  # two sizes
    method = build_method("unet", "tiny", {"image_size": 32, "depth": 3})
    scores = HeldOutScores(images, batch_size=2)(method)
    assert set(scores) == set(HELD_OUT_METRICS)
    # evaluate colours the 8-bit truth file and scores the output as saved (8-bit)
    truths = [as_saved_8bit(t) for t in images]
    preds = Colorizer(method, device="cpu", pixel_budget=None).colorize(truths)
    pairs = [(f"{i}.png", as_saved_8bit(p), t) for i, (p, t) in enumerate(zip(preds, truths, strict=True))]
    result = evaluate_pairs(pairs, tmp_path / "eval", EvalConfig(fid=False))
    for name in HELD_OUT_METRICS:
        assert scores[name] == pytest.approx(result["aggregate"][name]["mean"], rel=1e-5, abs=1e-6), name


def test_the_grey_input_scores_zero_colourfulness_error_only_on_grey_truths():
    colour = list(smooth_colour_images(2, 32))
    grey = [img.mean(0, keepdim=True).expand(3, -1, -1).clone() for img in colour]
    method = build_method("grey", "tiny")
    on_colour, on_grey = HeldOutScores(colour)(method), HeldOutScores(grey)(method)
    assert on_grey["delta_e2000"] < 0.5 and on_grey["lpips"] < 0.01 and on_grey["delta_cf_abs"] < 0.5
    assert on_colour["delta_e2000"] > 2.0 and on_colour["delta_cf_abs"] > 1.0


def test_a_folder_gives_a_seeded_subset_and_skips_unreadable_files(tmp_path):
    for i, img in enumerate(smooth_colour_images(6, 32)):
        write_rgb(tmp_path / f"img{i}.png", img)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    first, skipped = HeldOutScores.from_folder(tmp_path, limit=7, seed=3)
    assert len(first) == 6 and len(skipped) == 1 and "broken.png" in skipped[0]
    a, _ = HeldOutScores.from_folder(tmp_path, limit=3, seed=3)
    b, _ = HeldOutScores.from_folder(tmp_path, limit=3, seed=3)
    assert len(a) == 3 and all(torch.equal(x, y) for x, y in zip(a.images, b.images, strict=True))


def test_an_empty_folder_is_refused_with_its_name(tmp_path):
    with pytest.raises(ValueError, match="holds no images"):
        HeldOutScores.from_folder(tmp_path)


def test_choose_is_all_sorted_under_the_limit_and_a_seeded_subset_above():
    paths = [f"d/{c}.png" for c in "edcba"]
    assert HeldOutScores.choose(paths, 9) == sorted(paths)
    three = HeldOutScores.choose(paths, 3, seed=1)
    assert len(three) == 3 and three == sorted(three) and set(three) <= set(paths)
    assert HeldOutScores.choose(list(reversed(paths)), 3, seed=1) == three  # the order given does not matter


def test_images_too_small_for_lpips_are_skipped_when_read_and_refused_when_given(tmp_path):
    write_rgb(tmp_path / "big.png", smooth_colour_images(1, 40)[0])
    write_rgb(tmp_path / "icon.png", smooth_colour_images(1, 20)[0])
    scores, skipped = HeldOutScores.from_folder(tmp_path)
    assert len(scores) == 1 and len(skipped) == 1 and "icon.png" in skipped[0] and "too small" in skipped[0]
    with pytest.raises(ValueError, match="under 32 px"):
        HeldOutScores(list(smooth_colour_images(1, 20)))
    assert len(HeldOutScores(list(smooth_colour_images(1, 20)), size=32)) == 1  # scored resized: allowed
    with pytest.raises(ValueError, match="at least 1"):
        HeldOutScores.from_folder(tmp_path, limit=0)


def test_a_round_shows_a_transient_bar_unless_quiet(tmp_path, capsys):
    images = list(smooth_colour_images(3, 32))
    method = build_method("grey", "tiny")
    scores = HeldOutScores(images, batch_size=2)(method)
    assert "held-out" in capsys.readouterr().err
    assert set(scores) == set(HELD_OUT_METRICS)
    for i, img in enumerate(images):
        write_rgb(tmp_path / f"{i}.png", img)
    quiet, _ = HeldOutScores.from_folder(tmp_path, progress=False)
    assert set(quiet(method)) == set(HELD_OUT_METRICS) and "held-out" not in capsys.readouterr().err
