"""cic: Zhang et al.'s 313-bin classification colorizer (prior in setup, rebalancing, annealed mean)."""

from __future__ import annotations

import pytest
import torch

from fewcolor.color.bins import Q
from fewcolor.methods.base import InferenceOptionError
from fewcolor.methods.registry import build_method
from helpers import TensorColourDataset, smooth_colour_images
from method_checks import (
    batch_of,
    check_odd_size,
    check_resume,
    check_roundtrip,
    four_emoji,
    grey_psnr,
    overfit,
    psnr_rgb,
)


def _tiny(**kw):
    return build_method("cic", "tiny", kw)


def test_setup_computes_the_training_prior_and_weights() -> None:
    ds = TensorColourDataset(smooth_colour_images(4, 32))
    m = _tiny()
    assert torch.equal(m.bin_weights, torch.ones(Q))
    m.setup(ds)
    assert m.prior.sum().item() == pytest.approx(1.0, abs=1e-5)
    # E_p[w] = 1 and rare bins weigh more than common ones
    assert (m.prior * m.bin_weights).sum().item() == pytest.approx(1.0, abs=1e-4)
    assert m.bin_weights[m.prior.argmin()] > m.bin_weights[m.prior.argmax()]
    flat = _tiny(lam=1.0)
    flat.setup(ds)
    torch.testing.assert_close(flat.bin_weights, torch.ones(Q))


def test_prior_is_cached_for_folder_datasets(emoji_dir) -> None:
    from fewcolor.data.cache import prior_cache_path
    from fewcolor.methods.cic import _dataset_key

    ds = four_emoji(emoji_dir, 16)
    m = _tiny()
    m.setup(ds)
    key = _dataset_key(ds, 5.0)
    assert key is not None and prior_cache_path(key).is_file()
    again = _tiny()
    again.setup(ds)
    torch.testing.assert_close(again.prior, m.prior)


def test_temperature_option() -> None:
    torch.manual_seed(0)
    m = _tiny().eval()
    l = torch.rand(1, 1, 16, 24) * 2 - 1
    with torch.no_grad():
        mean = m.predict_ab(l, temperature=1.0)
        sharp = m.predict_ab(l, temperature=0.1)
        default = m.predict_ab(l)
        t38 = m.predict_ab(l, temperature=0.38)
    torch.testing.assert_close(default, t38)
    assert (sharp - mean).abs().max() > 1e-4
    assert sharp.abs().max() <= 1.0
    with pytest.raises(InferenceOptionError):
        m.predict_ab(l, temperature=-1)
    with pytest.raises(InferenceOptionError):
        m.predict_ab(l, global_from=l)


def test_overfits_four_fixture_images(emoji_dir, tmp_path) -> None:
    ds = four_emoji(emoji_dir, 32)
    b = batch_of(ds)
    torch.manual_seed(0)
    m = _tiny()
    before = psnr_rgb(m, b)
    start, end = overfit(m, ds, tmp_path, 200, "loss/ce")
    after = psnr_rgb(m, b)
    print(f"cic ce {start:.3f} -> {end:.3f}; PSNR {before:.2f} -> {after:.2f} dB (grey {grey_psnr(b):.2f})")
    assert end < 0.3 * start
    assert after > 20.0 and after > grey_psnr(b) + 2.0  # measured 24.5 dB


def test_regression_option_trains(tmp_path) -> None:
    ds = TensorColourDataset(smooth_colour_images(4, 32))
    torch.manual_seed(0)
    m = _tiny(loss="regression")
    start, end = overfit(m, ds, tmp_path, 30, "loss/l2")
    assert end < 0.5 * start
    check_odd_size(m, 40, 56)


def test_odd_sizes_roundtrip_and_resume(tmp_path) -> None:
    ds = TensorColourDataset(smooth_colour_images(4, 32))
    torch.manual_seed(0)
    m = _tiny()
    m.setup(ds)
    check_odd_size(m, 40, 56)
    loaded = check_roundtrip(m, batch_of(ds), tmp_path / "m.safetensors", temperature=0.2)
    torch.testing.assert_close(loaded.bin_weights, m.bin_weights)  # the prior travels in the checkpoint
    # The lr schedule is a function of the run's total steps: a 3-step run resumed to 6 steps follows another
    # schedule than a 6-step run, so the exact-resume check runs at a constant rate.
    check_resume(lambda: _tiny(lr_milestones=(), lr_drops=()), ds, tmp_path / "resume")


def test_paper_loss_is_summed_over_pixels_and_decay_is_coupled() -> None:
    # Eq. 2 sums over an image's pixels: a 32×32 input has 8×8 logits, so the loss is 64× the per-pixel mean
    # (the old behaviour, kept as loss_reduction="mean"); Adam's weight decay is added to that gradient.
    from fewcolor.losses.cic import rebalanced_cross_entropy

    torch.manual_seed(0)
    ds = TensorColourDataset(smooth_colour_images(2, 32))
    b = {"l": torch.stack([ds[i]["l"] for i in range(2)]), "ab": torch.stack([ds[i]["ab"] for i in range(2)])}
    m = _tiny(weight_decay=1e-3)
    loss = next(m.training_step(b, 0)).loss
    logits = m.net(b["l"])
    target = m.targets(b["ab"], tuple(logits.shape[-2:]))
    per_pixel = rebalanced_cross_entropy(logits, target, m.bin_weights, "mean")
    torch.testing.assert_close(loss, per_pixel * 64, rtol=1e-4, atol=1e-4)
    old = _tiny(loss_reduction="mean")
    old.load_state_dict(m.state_dict())
    torch.testing.assert_close(next(old.training_step(b, 0)).loss, per_pixel, rtol=1e-4, atol=1e-4)
    group = m.configure_optimizers()["net"].param_groups[0]
    assert group["weight_decay"] == 1e-3 and not group.get("decoupled_weight_decay", False)


def test_paper_learning_rate_drops() -> None:
    m = build_method("cic", "paper")
    lr = [m.learning_rates(s, 450_000)["net"] for s in (0, 199_999, 200_000, 374_999, 375_000, 449_999)]
    assert lr == pytest.approx([3e-5, 3e-5, 1e-5, 1e-5, 3e-6, 3e-6])
    assert _tiny(lr_milestones=(), lr_drops=()).learning_rates(99, 100) == {"net": 3e-3}  # constant: the old way
    with pytest.raises(ValueError, match="lr_milestones"):
        _tiny(lr_milestones=(0.5,), lr_drops=())
    assert type(m).default_batch_size(None, 8) == 40 and type(m).default_batch_size("cpu", 8) == 8
