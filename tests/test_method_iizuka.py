"""iizuka: global+local fusion network, classification side loss (folders or clusters), style transfer."""

from __future__ import annotations

import pytest
import torch

from fewcolor.methods.base import InferenceOptionError
from fewcolor.methods.registry import build_method, load_method, save_method
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
    return build_method("iizuka", "tiny", kw)


def test_overfits_four_fixture_images_with_folder_labels(emoji_dir, tmp_path) -> None:
    ds = four_emoji(emoji_dir, 32)
    b = batch_of(ds)
    torch.manual_seed(0)
    m = _tiny()
    before = psnr_rgb(m, b)
    start, end = overfit(m, ds, tmp_path, 200, "loss/color")
    after = psnr_rgb(m, b)
    print(f"iizuka colour loss {start:.4f} -> {end:.4f}; PSNR {before:.2f} -> {after:.2f} dB (grey {grey_psnr(b):.2f})")
    assert m.extra_metadata()["label_source"] == "folders"
    assert m.net.num_classes == 6  # the fixture's six class folders
    assert end < 0.3 * start
    assert after > 20.0 and after > grey_psnr(b) + 2.0  # measured 21.6 dB (eval-mode BN; 23.2 with the old mean loss)


def test_cluster_labels_when_no_folders(tmp_path) -> None:
    ds = TensorColourDataset(smooth_colour_images(6, 32))
    m = _tiny(num_clusters=3, cluster_backbone="resnet18:layer4", cluster_pretrained=False)
    m.setup(ds)
    meta = m.extra_metadata()
    assert meta["label_source"] == "clusters"
    assert meta["label_backbone"] == "resnet18:layer4 (random weights)"
    assert m.train_labels.shape == (6,) and 2 <= m.net.num_classes <= 3
    # set-up is deterministic (resume re-runs it and loads the state strictly)
    again = _tiny(num_clusters=3, cluster_backbone="resnet18:layer4", cluster_pretrained=False)
    again.setup(ds)
    assert torch.equal(m.train_labels, again.train_labels)
    # the labels drive the side loss; the checkpoint keeps them
    opt = m.configure_optimizers()["net"]
    phase = next(m.training_step(batch_of(ds), 0))
    assert "loss/class" in phase.logs
    opt.zero_grad()
    phase.loss.backward()
    m.eval()
    save_method(m, tmp_path / "m.safetensors")
    loaded = load_method(tmp_path / "m.safetensors")
    assert torch.equal(loaded.train_labels, m.train_labels)
    assert loaded.extra_metadata() == meta


def test_folder_mode_needs_folders_and_none_mode_has_no_head() -> None:
    ds = TensorColourDataset(smooth_colour_images(2, 16))
    with pytest.raises(ValueError, match="class folders"):
        _tiny(labels="folders").setup(ds)
    m = _tiny(labels="none")
    m.setup(ds)
    assert m.net.classifier is None
    phase = next(m.training_step(batch_of(ds), 0))
    assert "loss/class" not in phase.logs


def test_classification_loss_weight_is_alpha() -> None:
    ds = TensorColourDataset(smooth_colour_images(4, 16), labels=[0, 1, 0, 1])
    m = _tiny()
    m.setup(ds)
    assert m.extra_metadata()["label_source"] == "folders"
    phase = next(m.training_step(batch_of(ds), 0))
    expected = phase.logs["loss/color"] + phase.logs["loss/class"] / 300
    assert phase.loss.item() == pytest.approx(expected, rel=1e-5)


def test_colour_loss_is_the_papers_frobenius_norm_on_unit_chrominance(monkeypatch: pytest.MonkeyPatch) -> None:
    # Eq. 2: ‖y − y*‖²_FRO over the colorization net's output (2 × H/2 × W/2, chrominance in [0, 1]). A net that
    # outputs 0.5 everywhere against a target ab/110 = 0.6 (chrominance 0.8) costs 0.3² per output value:
    # 0.09 · 2·16·16 = 46.08 per 32×32 image. The old loss (mean MSE on [−1, 1]) gave 0.36 for the same error.
    m = _tiny(labels="none")
    monkeypatch.setattr(m.net, "chrominance", lambda l, g=None: (torch.full((l.shape[0], 2, 16, 16), 0.5), None))
    monkeypatch.setattr(m.net, "forward", lambda l, g=None: (torch.zeros(l.shape[0], 2, 32, 32), None))
    batch = {"l": torch.zeros(3, 1, 32, 32), "ab": torch.full((3, 2, 32, 32), 0.6)}
    assert next(m.training_step(batch, 0)).loss.item() == pytest.approx(46.08, rel=1e-5)
    old = _tiny(labels="none", color_loss="mse")
    monkeypatch.setattr(old.net, "forward", lambda l, g=None: (torch.zeros(l.shape[0], 2, 32, 32), None))
    assert next(old.training_step(batch, 0)).loss.item() == pytest.approx(0.36, rel=1e-5)
    with pytest.raises(ValueError, match="color_loss"):
        _tiny(color_loss="l1")


def test_training_crops_224_of_256_and_the_paper_batch() -> None:
    # §4.1: random 224 crops of images resized to 256 — two draws on a square image differ (the old transform
    # resized to the crop size, so a square image had one possible crop).
    from fewcolor.data.transforms import generator_for

    m = _tiny()
    t = m.train_transform(224, flip=False)
    img = torch.rand(3, 300, 300, generator=torch.Generator().manual_seed(0))
    crops = [t(img, generator_for(0, 0, i)) for i in range(4)]
    assert all(c.shape == (3, 224, 224) for c in crops)
    assert any(not torch.equal(crops[0], c) for c in crops[1:])
    assert repr(t) == "Compose([Resize(256), RandomCrop((224, 224))])"
    assert type(m).default_batch_size(None, 8) == 128 and type(m).default_batch_size("cpu", 8) == 8


def test_global_from_changes_the_output_and_is_validated(tmp_path) -> None:
    ds = TensorColourDataset(smooth_colour_images(4, 32, seed=1))
    torch.manual_seed(0)
    m = _tiny()
    # a few steps so the fused global features carry information
    opt = m.configure_optimizers()["net"]
    for step in range(5):
        phase = next(m.training_step(batch_of(ds), step))
        opt.zero_grad()
        phase.loss.backward()
        opt.step()
    m.eval()
    l = batch_of(ds)["l"][:1]
    other = torch.linspace(-1, 1, 48 * 40).view(1, 1, 48, 40)  # another image, another size
    with torch.no_grad():
        own = m.predict_ab(l)
        moved = m.predict_ab(l, global_from=other)
        same = m.predict_ab(l, global_from=l)
    torch.testing.assert_close(own, same)
    assert (moved - own).abs().max() > 1e-3
    with pytest.raises(InferenceOptionError, match="global_from"):
        m.predict_ab(l, global_from=torch.zeros(2, 3, 8, 8))
    with pytest.raises(InferenceOptionError):
        m.predict_ab(l, temperature=0.5)
    loaded = check_roundtrip(m, batch_of(ds), tmp_path / "m.safetensors", global_from=other)
    assert loaded.config.global_size == 32


def test_non_square_odd_sizes_and_resume(tmp_path) -> None:
    torch.manual_seed(0)
    m = _tiny()
    check_odd_size(m, 40, 56)
    check_odd_size(m, 24, 72)
    ds = TensorColourDataset(smooth_colour_images(4, 32), labels=[0, 1, 2, 0])
    check_resume(_tiny, ds, tmp_path)


def test_paper_defaults() -> None:
    from fewcolor.methods.iizuka import Iizuka

    c = Iizuka.make_config("paper")
    assert (c.global_size, c.alpha, c.fusion_activation, c.optimizer) == (224, 1 / 300, "relu", "adadelta")


def test_without_global_features_the_global_net_has_no_influence(emoji_dir) -> None:
    ds = four_emoji(emoji_dir, 32)
    l = batch_of(ds)["l"]
    for use_global in (True, False):
        torch.manual_seed(0)
        m = _tiny(global_features=use_global)
        m.setup(ds)
        assert (m.net.classifier is not None) == use_global  # the side loss reads the global net
        m.eval()
        with torch.no_grad():
            before = m.predict_ab(l)
            for p in m.net.global_fc2.parameters():
                p.add_(torch.randn_like(p))
            changed = not torch.allclose(before, m.predict_ab(l))
        assert changed == use_global
    with pytest.raises(InferenceOptionError, match="global_from"):
        m.predict_ab(l, global_from=l[:1])
