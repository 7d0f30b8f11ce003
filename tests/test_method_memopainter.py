"""MemoPainter end to end on the emoji fixture: training, memory round trip, retrieval, palette control,
Res-cGAN, odd sizes. Uses the genuine offline backbone (VGG16 conv5 when ResNet18's weights are absent)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests.method_checks import batch_of, check_odd_size, check_roundtrip, four_emoji, opts

from fewcolor.methods.base import InferenceOptionError
from fewcolor.methods.memopainter import MemoPainter, palette_feature
from fewcolor.methods.registry import build_method, load_method, save_method
from fewcolor.train.loop import train


def emoji_all(emoji_dir: Path, size: int = 32):
    from fewcolor.data.folder import ImageFolderDataset
    from fewcolor.data.transforms import Resize

    return ImageFolderDataset(emoji_dir, transform=Resize((size, size)))


@pytest.fixture(scope="module")
def trained(emoji_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[MemoPainter, object]:
    """The tiny preset trained 80 steps on the four-emoji set (C_RGB feature)."""
    torch.manual_seed(0)
    ds = four_emoji(emoji_dir)
    method = build_method("memopainter", "tiny", {"color_feature": "rgb"})
    result = train(method, ds, opts(tmp_path_factory.mktemp("mp"), 80))
    method.history = result.history
    return method, ds


def test_training_fills_memory_and_fits(trained):
    method, _ = trained
    hist = method.history
    assert method.memory.slots == 5  # ceil(1.2 × 4)
    assert method.memory.num_filled >= 4
    assert sorted(set(method.memory.sources[method.memory.filled].tolist())) == [0, 1, 2, 3]
    first = sum(r["loss/sl1"] for r in hist[:3]) / 3
    last = sum(r["loss/sl1"] for r in hist[-3:]) / 3
    assert last < 0.7 * first
    meta = method.extra_metadata()
    assert meta["backbone"] in ("resnet18", "vgg16") and meta["memory_slots"] == 5


def test_memory_checkpoint_roundtrip_is_bit_exact(trained, tmp_path: Path):
    method, ds = trained
    batch = batch_of(ds)
    loaded = check_roundtrip(method, batch, tmp_path / "m.safetensors")
    for name, buf in method.memory.named_buffers():
        assert torch.equal(buf, getattr(loaded.memory, name)), name
    assert loaded.backbone_choice == method.backbone_choice
    with torch.no_grad():
        torch.testing.assert_close(loaded.predict_variants(batch["l"], 3), method.predict_variants(batch["l"], 3),
                                   rtol=0, atol=0)


def test_training_images_are_stored_under_their_own_queries(trained):
    # A storage check, not a retrieval-accuracy one (an image's nearest key is the one it wrote): retrieval
    # accuracy on held-out images is test_memory_retrieval_on_held_out_emoji_is_above_chance.
    method, ds = trained
    batch = batch_of(ds)
    method.eval()
    with torch.no_grad():
        _, sims, slots = method.retrieve(batch["l"], 1)
    assert method.memory.sources[slots[:, 0]].tolist() == batch["index"].tolist()
    assert (sims > 0.9).all()


def test_variants_are_distinct_colourings(trained):
    method, ds = trained
    l = batch_of(ds)["l"][:1]
    with torch.no_grad():
        v = method.predict_variants(l, 3)
        assert v.shape == (3, 1, 2, 32, 32)
        torch.testing.assert_close(method.predict_ab(l, variant=2), v[1])
    assert (v[0] - v[1]).abs().mean() > 1e-3
    with pytest.raises(InferenceOptionError, match="memory holds"):
        method.predict_ab(l, variant=99)


def test_palette_moves_the_output_colours_towards_it(trained):
    method, ds = trained
    l = batch_of(ds)["l"]
    with torch.no_grad():
        yellow = method.predict_ab(l, palette="#f7d842")
        blue = method.predict_ab(l, palette="#2050e0")
    # The four training emoji span the b* (blue-yellow) axis, so that is what a short training can learn:
    # the yellow palette must give clearly more yellow (b* > 0) output than the blue one, on every image.
    shift = yellow[:, 1].mean(dim=(1, 2)) - blue[:, 1].mean(dim=(1, 2))
    assert (shift > 0.05).all(), shift


def test_reference_image_and_bad_options(trained, emoji_dir: Path):
    method, ds = trained
    l = batch_of(ds)["l"][:2]
    ref = ds[0]["rgb"]
    with torch.no_grad():
        by_ref = method.predict_ab(l, reference=ref)
        by_feat = method.generator(l, method.features_of(ref[None]).expand(2, -1))
    torch.testing.assert_close(by_ref, by_feat)
    with pytest.raises(InferenceOptionError, match="not a hex colour"):
        method.predict_ab(l, palette="#12345g")
    with pytest.raises(InferenceOptionError, match="at most one"):
        method.predict_ab(l, palette="#ff0000", variant=1)
    with pytest.raises(InferenceOptionError, match="does not take"):
        method.predict_ab(l, temperature=0.3)


def test_odd_sizes(trained):
    check_odd_size(trained[0])


def test_palette_feature_dist_puts_mass_on_the_palette_bins():
    from fewcolor.color.features import ab_distribution

    f = palette_feature("#e03c31,#2050e0", "dist")
    assert f.shape == (1, 313) and abs(float(f.sum()) - 1) < 1e-5
    red = ab_distribution(torch.tensor([0.878, 0.235, 0.192])[:, None, None].expand(3, 4, 4)[None])
    assert float(f[0, red[0].argmax()]) == pytest.approx(0.5, abs=1e-5)
    assert palette_feature("#e03c31", "rgb").shape == (1, 30)


def test_res_cgan_is_one_flag_away(emoji_dir: Path, tmp_path: Path):
    ds = four_emoji(emoji_dir)
    method = build_method("res-cgan", "tiny")
    assert not method.config.memory and not hasattr(method, "memory")
    result = train(method, ds, opts(tmp_path / "run", 3))
    assert "loss/triplet" not in result.history[-1] and "memory/valid" not in result.history[-1]
    loaded = check_roundtrip(method, batch_of(ds), tmp_path / "r.safetensors")
    assert loaded.name == "res-cgan"
    with pytest.raises(InferenceOptionError, match="Res-cGAN"):
        loaded.predict_ab(batch_of(ds)["l"], variant=1)
    flag = build_method("memopainter", "tiny", {"memory": False})
    assert set(flag.state_dict()) == set(method.state_dict())


def test_memory_retrieval_on_held_out_emoji_is_above_chance(emoji_dir: Path):
    from fewcolor.bench.retrieval import retrieval_accuracy

    ds = emoji_all(emoji_dir)
    res = {sup: retrieval_accuracy(ds, n_way=6, k_shot=2, n_query=3, episodes=3, steps=20, supervised=sup,
                                   progress=False) for sup in (False, True)}
    assert res[False].chance == pytest.approx(1 / 6)
    assert res[False].queries == 54
    # measured 0.52 unsupervised, 0.57 supervised (chance 0.17); an untrained head also gives 0.57 here
    # (docs/MEMOPAINTER.md): on 30 emoji the frozen backbone does the work. That the triplet training of
    # the query head helps at all is test_trained_query_head_retrieves_better_than_the_untrained_one.
    assert res[False].accuracy > 0.4
    assert res[True].accuracy > 0.4


def test_trained_query_head_retrieves_better_than_the_untrained_one(emoji_dir: Path):
    """The threshold triplet loss (paper §3.1, unsupervised) must teach the query head (W, b) something:
    the same episodes, memory passes and seeded initial head, with the head trained (Adam lr 1e-3) or left
    at its seeded random initialisation (lr 0), on held-out emoji. 6-way 4-shot, one query per class,
    36 episodes = 216 queries, 20 passes. Measured (1 thread, 2026-12-02) untrained → trained: seed 0
    (this test) 0.505 → 0.579 (+0.074); seeds 1, 10, 11, 12, 13: +0.032, +0.074, +0.023, +0.083, +0.065.
    The margin 0.02 is below every measured gap. A small effect: with 2-shot support (the test above)
    training does not help (0.43–0.59 untrained vs 0.41–0.56 trained over seeds 0–3), and at 12 episodes
    the seed-to-seed gap ranges 0.00–0.11."""
    from fewcolor.bench.retrieval import retrieval_accuracy

    ds = emoji_all(emoji_dir)
    acc = {lr: retrieval_accuracy(ds, n_way=6, k_shot=4, n_query=1, episodes=36, steps=20, lr=lr, seed=0,
                                  progress=False) for lr in (0.0, 1e-3)}
    assert acc[0.0].queries == acc[1e-3].queries == 216
    assert acc[1e-3].accuracy > acc[0.0].accuracy + 0.02, (acc[0.0].accuracy, acc[1e-3].accuracy)


def test_empty_memory_prediction_is_a_clear_error():
    method = build_method("memopainter", "tiny", {"memory_slots": 3})
    with pytest.raises(InferenceOptionError, match=r"memory is empty.*palette.*reference"):
        method.predict_ab(torch.zeros(1, 1, 32, 32))
    with pytest.raises(InferenceOptionError, match="memory is empty"):
        method.predict_variants(torch.zeros(1, 1, 32, 32), 2)
    # a palette gives the colour instead: no memory needed
    assert method.predict_ab(torch.zeros(1, 1, 32, 32), palette="#ff0000,#00ff00").shape == (1, 2, 32, 32)


def test_save_load_uses_the_recorded_slot_count(tmp_path: Path):
    method = build_method("memopainter", "tiny", {"color_feature": "rgb"})
    method.memory.resize(7)
    method.memory.write(3, torch.ones(64), torch.full((30,), 0.5), source=9, label=2)
    path = save_method(method, tmp_path / "m.safetensors")
    loaded = load_method(path)
    assert loaded.memory.slots == 7 and loaded.memory.num_filled == 1
    assert int(loaded.memory.sources[3]) == 9 and int(loaded.memory.labels[3]) == 2


def test_cli_variants_palette_and_memory_inspect(trained, emoji_dir: Path, tmp_path: Path):
    from click.testing import CliRunner

    from fewcolor.cli import main

    method, ds = trained
    model = save_method(method, tmp_path / "model.safetensors")
    img = emoji_dir / ds.paths[0]
    runner = CliRunner()
    res = runner.invoke(main, ["colorize", str(model), str(img), "-o", str(tmp_path / "v"), "--variants", "3"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "v").iterdir()) == [f"{img.stem}_v{i}.png" for i in (1, 2, 3)]
    res = runner.invoke(main, ["colorize", str(model), str(img), "-o", str(tmp_path / "p"), "--palette", "#e03c31"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["memory", "inspect", str(model), str(img), "-o", str(tmp_path / "m.html"),
                               "--top-k", "3"])
    assert res.exit_code == 0, res.output
    html = (tmp_path / "m.html").read_text()
    assert "slot" in html and len(list((tmp_path / "m_files").glob("*.png"))) == 2 + 3 * 2


def test_generator_loss_is_adversarial_plus_smooth_l1_on_the_true_colour_feature(emoji_dir: Path):
    # §3.2, Eq. 6–7 as configured: L_G = 1·(−log D(L, G(L, C), C)) + 1·smoothL1(G(L, C), ab), with C the
    # ground truth's colour feature during training (not the retrieved one); the phases come in the order
    # memory → discriminator → generator.
    import torch.nn.functional as F

    torch.manual_seed(0)
    ds = four_emoji(emoji_dir)
    # δ = 1e9: every query confirms its nearest slot, so the update below never writes the true value
    method = build_method("memopainter", "tiny", {"color_feature": "rgb", "gan_weight": 1.0, "sl1_weight": 1.0,
                                                  "threshold": 1e9})
    method.setup(ds)
    batch = batch_of(ds)
    with torch.no_grad():
        c = method.features_of(batch["rgb"])
        # Each image's own key holds ANOTHER image's colour feature: what the memory retrieves is not C.
        q = method.query(method.spatial_features(batch["l"]))
        for i in range(q.shape[0]):
            method.memory.write(i, q[i], c[(i + 1) % q.shape[0]], source=int(batch["index"][i]))
    phases = method.training_step(batch, 0)
    assert [next(phases).optimizer, next(phases).optimizer] == ["memory", "discriminator"]
    g_phase = next(phases)
    assert g_phase.optimizer == "generator" and next(phases, None) is None

    def loss_with(feature: torch.Tensor) -> tuple[float, float]:
        with torch.no_grad():
            fake = method.generator(batch["l"], feature)
            d_out = method.discriminator(batch["l"], fake, feature)
            sl1 = F.smooth_l1_loss(fake, batch["ab"])
            return (F.binary_cross_entropy_with_logits(d_out, torch.ones_like(d_out)) + sl1).item(), sl1.item()

    retrieved = method.retrieve(batch["l"], 1)[0][:, 0].detach()
    assert (retrieved - c).abs().amax(dim=1).min() > 0.1  # the memory (after the step's update) retrieves ≠ C
    expected, expected_sl1 = loss_with(c)
    assert loss_with(retrieved)[0] != pytest.approx(expected, rel=1e-3)  # so the check below can tell them apart
    assert g_phase.loss.item() == pytest.approx(expected, rel=1e-4)
    assert g_phase.logs["loss/sl1"] == pytest.approx(expected_sl1, rel=1e-4)
