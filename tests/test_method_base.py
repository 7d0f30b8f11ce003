"""base: fewcolor's base colorizer (pretrained encoder, decoder, 313 bins + L1) and --init warm starts."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import default_collate

from fewcolor.backbones.weights import get_spec, missing_message, package_file
from fewcolor.color.bins import Q
from fewcolor.color.decode import annealed_mean
from fewcolor.color.normalize import normalize_ab
from fewcolor.color.soft_encode import soft_encode_ab_normalized
from fewcolor.io.checkpoint import CheckpointError
from fewcolor.io.warm_start import warm_start
from fewcolor.methods.base import InferenceOptionError
from fewcolor.methods.registry import build_method, save_method
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
    return build_method("base", "tiny", {"encoder_pretrained": False, **kw})


def test_setup_prior_from_a_seeded_subset() -> None:
    ds = TensorColourDataset(smooth_colour_images(6, 32))
    m = _tiny(prior_images=4)
    m.setup(ds)
    assert (m.prior * m.bin_weights).sum().item() == pytest.approx(1.0, abs=1e-4)
    again = _tiny(prior_images=4)
    again.setup(ds)
    torch.testing.assert_close(again.prior, m.prior)  # same seed, same subset
    other = _tiny(prior_images=4, seed=1)
    other.setup(ds)
    assert not torch.equal(other.prior, m.prior)


def test_the_prior_counts_the_colours_at_the_resolution_and_resize_the_loss_sees() -> None:
    # the prior reweights the loss's targets: it must be their distribution (bilinear to the logits' ¼ size),
    # not an area average, which mixes neighbouring colours into duller ones
    from fewcolor.color.prior import bin_prior
    from fewcolor.methods.bin_classifier import ab_at_size

    ds = TensorColourDataset(smooth_colour_images(3, 32))
    m = _tiny(prior_images=3)
    m.setup(ds)
    logits = m.net(batch_of(ds)["l"])
    targets = ab_at_size(batch_of(ds)["ab"], tuple(logits.shape[-2:]))
    g = torch.Generator().manual_seed(m.config.seed)
    order = torch.randperm(3, generator=g).tolist()
    expected = bin_prior((targets[i] for i in order), sigma=m.config.prior_sigma)
    torch.testing.assert_close(m.prior, expected.to(m.prior))


@pytest.mark.weights
def test_overfits_four_fixture_images_with_both_loss_terms(emoji_dir, tmp_path) -> None:
    spec = get_spec("efficientnet_lite0")
    if package_file(spec) is None:
        pytest.skip(missing_message(spec))
    ds = four_emoji(emoji_dir, 32)
    b = batch_of(ds)
    torch.manual_seed(0)
    m = _tiny(encoder_pretrained=True, lr=3e-3)
    start, end = overfit(m, ds, tmp_path, 150, "loss/ce")
    after = psnr_rgb(m, b)
    assert end < 0.5 * start  # measured 4.56 -> 1.24
    assert after > grey_psnr(b) + 5.0  # measured 25.0 dB vs grey 16.9 dB


def test_the_loss_is_the_per_pixel_mean_of_both_terms() -> None:
    """CE and L1 are both means over pixels (the recipe the bundled weights were trained with). A sum over
    pixels, CIC's Eq. 2, would weigh the CE ~1000× the L1 at 128 px: another recipe (it crept in once)."""
    ds = TensorColourDataset(smooth_colour_images(2, 32))
    m = _tiny()
    m.setup(ds)
    m.train()
    batch = default_collate([ds[0], ds[1]])
    phase = next(m.training_step(batch, 0))
    with torch.no_grad():
        logits = m.net(batch["l"]).float()
    c = m.config
    small = F.interpolate(batch["ab"], size=logits.shape[-2:], mode="bilinear", align_corners=False)
    target = soft_encode_ab_normalized(small, k=c.neighbours, sigma=c.encode_sigma)
    per_pixel = -(target * F.log_softmax(logits, dim=1)).sum(dim=1) * m.bin_weights[target.argmax(dim=1)]
    ce = per_pixel.mean()
    l1 = (normalize_ab(annealed_mean(logits, c.temperature)) - small).abs().mean()
    assert phase.logs["loss/ce"] == pytest.approx(float(ce), rel=1e-4)
    assert phase.loss is not None
    assert float(phase.loss.detach()) == pytest.approx(float(ce + c.l1_weight * l1), rel=1e-4)
    assert float(ce) < 2 * math.log(Q)  # per pixel: a sum over the 8×8 logits would be ~64× this


def test_l1_only_ablation_trains_without_the_cross_entropy(tmp_path) -> None:
    ds = TensorColourDataset(smooth_colour_images(4, 32))
    torch.manual_seed(0)
    m = _tiny(ce_weight=0.0, lr=3e-3)
    start, end = overfit(m, ds, tmp_path, 40, "loss/l1")
    assert end < 0.8 * start


def test_temperature_odd_sizes_roundtrip_resume(tmp_path) -> None:
    ds = TensorColourDataset(smooth_colour_images(4, 32))
    torch.manual_seed(0)
    m = _tiny()
    m.setup(ds)
    check_odd_size(m, 40, 70)
    l = torch.rand(1, 1, 32, 64) * 2 - 1
    with torch.no_grad():
        assert (m.predict_ab(l, temperature=1.0) - m.predict_ab(l, temperature=0.05)).abs().max() > 1e-4
    with pytest.raises(InferenceOptionError):
        m.predict_ab(l, temperature=-0.5)
    loaded = check_roundtrip(m, batch_of(ds), tmp_path / "m.safetensors", temperature=0.2)
    torch.testing.assert_close(loaded.bin_weights, m.bin_weights)
    check_resume(_tiny, ds, tmp_path / "resume", steps=4)


def test_unfreeze_at_trains_the_encoder_from_that_step(tmp_path) -> None:
    ds = TensorColourDataset(smooth_colour_images(4, 32))
    torch.manual_seed(0)
    m = _tiny(unfreeze_at=2)
    w0 = m.net.encoder.net._conv_stem.weight.clone()
    overfit(m, ds, tmp_path / "a", 2, "loss/ce")
    assert torch.equal(m.net.encoder.net._conv_stem.weight, w0)  # steps 0, 1: frozen
    torch.manual_seed(0)
    m = _tiny(unfreeze_at=2)
    overfit(m, ds, tmp_path / "b", 4, "loss/ce")
    assert not torch.equal(m.net.encoder.net._conv_stem.weight, w0)


def test_warm_start_loads_matching_tensors_and_reports_the_rest(tmp_path) -> None:
    torch.manual_seed(0)
    source = _tiny()
    source.set_prior(torch.linspace(1, 2, Q))
    path = save_method(source, tmp_path / "src.safetensors")
    torch.manual_seed(1)
    target = _tiny(widths=(32, 24, 16, 8))  # the last decoder level and the head change shape
    report = warm_start(target, path)
    assert "generator.net.encoder.net._conv_stem.weight" in report.loaded
    assert torch.equal(target.prior, source.prior)
    assert "generator.net.head.weight" in report.shape_mismatch
    assert not torch.equal(target.state_dict()["generator.net.head.weight"][:, :8],
                           source.state_dict()["generator.net.head.weight"][:, :8])
    assert report.summary().startswith(f"--init {path}: loaded {len(report.loaded)} of ")


def test_warm_start_refuses_a_checkpoint_that_shares_nothing(tmp_path) -> None:
    other = build_method("unet", "tiny")
    path = save_method(other, tmp_path / "unet.safetensors")
    with pytest.raises(CheckpointError, match=r"unet\.safetensors.*shares no tensor"):
        warm_start(_tiny(), path)
