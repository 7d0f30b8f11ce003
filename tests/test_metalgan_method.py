"""MetalGAN (methods/metalgan.py): Algorithm 1's meta-step, test-time adaptation, checkpoints, CLI."""

from __future__ import annotations

import logging
import shutil

import pytest
import torch
from click.testing import CliRunner
from torch.utils.data import default_collate

from fewcolor.methods.metalgan import MetalGAN, _mix
from fewcolor.methods.registry import build_method, load_method, save_method

OVERRIDES = {"n_clusters": 3, "feature_size": 64, "inner_steps": 3}


@pytest.fixture
def emoji32(emoji_dir):
    from fewcolor.data.folder import ImageFolderDataset
    from fewcolor.data.transforms import Resize

    return ImageFolderDataset(emoji_dir, transform=Resize((32, 32)))


def make(dataset, **kw) -> MetalGAN:
    torch.manual_seed(0)
    m = build_method("metalgan", "tiny", {**OVERRIDES, **kw})
    m.setup(dataset)  # clusters are cached under FEWCOLOR_HOME after the first test
    assert isinstance(m, MetalGAN)
    return m


def state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def cluster_l1(gen: torch.nn.Module, dataset, members: list[int]) -> float:
    batch = default_collate([dataset[i] for i in members])
    with torch.no_grad():
        return float((gen(batch["l"]) - batch["ab"]).abs().mean())


def test_meta_step_moves_theta_by_lambda_times_mean_task_delta(emoji32) -> None:
    m = make(emoji32, meta_lr=0.3)
    c = m.config
    opts = m.configure_optimizers()
    m.train()
    step = 5
    queries = m.query_indices(step, 2)  # Algorithm 1's query stream, not the loop's batch
    theta = [p.detach().clone() for p in m.generator.parameters()]
    bufs = {k: v.clone() for k, v in m.generator.named_buffers()}
    d_before = state(m.discriminator)
    # θ̃ of each query's task, recomputed independently with the seeds Algorithm 1 uses for slots 0 and 1
    fasts = [m.inner_loop(emoji32, m.tasks.task_indices(int(m.task_assignments[q])), c.inner_steps,
                          _mix(c.seed, step, slot))[0] for slot, q in enumerate(queries)]
    assert all(torch.equal(a, b) for a, b in zip(theta, m.generator.parameters(), strict=True))  # θ untouched
    phases = m.training_step(default_collate([emoji32[i] for i in (1, 2)]), step)
    meta = next(phases)
    assert meta.optimizer == "meta" and meta.loss is None
    opts["meta"].step()
    for p, t, f1, f2 in zip(m.generator.parameters(), theta, fasts[0].parameters(), fasts[1].parameters(),
                            strict=True):
        expected = t + 0.3 * ((f1.detach() + f2.detach()) / 2 - t)
        torch.testing.assert_close(p.detach(), expected, rtol=1e-5, atol=1e-6)
    assert meta.logs["inner/l1_last"] < meta.logs["inner/l1_first"] * 1.5
    # D is frozen during the inner loops: its parameters and BN statistics are as before
    for k, v in m.discriminator.state_dict().items():
        assert torch.equal(v, d_before[k]), k
    d_phase = next(phases)
    assert d_phase.optimizer == "discriminator" and d_phase.loss is None  # ε_D written into .grad
    assert all(torch.isfinite(p.grad).all() for p in m.discriminator.parameters())
    # G's BN statistics follow θ by the same Reptile interpolation
    fb = [dict(f.named_buffers()) for f in fasts]
    for k, v in m.generator.named_buffers():
        if v.is_floating_point():
            torch.testing.assert_close(v, bufs[k] + 0.3 * ((fb[0][k] + fb[1][k]) / 2 - bufs[k]), rtol=1e-5, atol=1e-6)
    assert next(phases, None) is None


def test_meta_batch_size_one_uses_only_the_first_query_of_the_batch(emoji32) -> None:
    m = make(emoji32, meta_lr=0.5, meta_batch_size=1)
    c = m.config
    opts = m.configure_optimizers()
    m.train()
    step = 2
    (query,) = m.query_indices(step, 1)
    theta = [p.detach().clone() for p in m.generator.parameters()]
    fast = m.inner_loop(emoji32, m.tasks.task_indices(int(m.task_assignments[query])), c.inner_steps,
                        _mix(c.seed, step, 0))[0]
    phases = m.training_step(default_collate([emoji32[i] for i in (3, 20)]), step)
    next(phases)
    opts["meta"].step()
    for p, t, f in zip(m.generator.parameters(), theta, fast.parameters(), strict=True):
        torch.testing.assert_close(p.detach(), t + 0.5 * (f.detach() - t), rtol=1e-5, atol=1e-6)
    # the equal-budget accounting counts one task per step, whatever the loop's batch size
    assert m.images_per_step(16) == c.inner_steps * c.inner_batch_size
    assert build_method("metalgan", "cpu").config.meta_batch_size == 1
    with pytest.raises(ValueError, match="meta_batch_size"):
        build_method("metalgan", "tiny", {"meta_batch_size": 0})


def test_adaptation_lowers_the_cluster_l1_and_is_cached(emoji32) -> None:
    m = make(emoji32).eval()
    k = max(range(m.tasks.k), key=lambda j: len(m.tasks.task_indices(j)))
    members = m.tasks.task_indices(k)
    before = cluster_l1(m.generator, emoji32, members)
    adapted = m.adapted_generator(k, 25)
    after = cluster_l1(adapted, emoji32, members)
    assert after < 0.8 * before, (before, after)
    assert m.adapted_generator(k, 25) is adapted
    assert m.adapted_generator(k, 24) is not adapted


@pytest.mark.parametrize("keep", [True, False])
def test_test_time_adaptation_keeps_the_batch_norm_statistics_unless_told(emoji32, keep: bool) -> None:
    m = make(emoji32, adapt_keep_norm_statistics=keep)
    stats = {k: v for k, v in state(m.generator).items() if "running_" in k}
    assert stats  # the tiny generator has batch norms
    weights = {k: v for k, v in state(m.generator).items() if "running_" not in k and "num_batches" not in k}
    assert m.adapt(emoji32, 3, seed=0)
    after = state(m.generator)
    assert all(torch.equal(after[k], v) for k, v in stats.items()) == keep
    assert any(not torch.equal(after[k], v) for k, v in weights.items())  # the weights adapt either way


def test_prediction_does_not_leak_fast_weights_into_theta(emoji32) -> None:
    m = make(emoji32).eval()
    l = default_collate([emoji32[i] for i in (0, 9, 20)])["l"]
    before = state(m)
    rng = torch.get_rng_state()
    adapted = m.predict_ab(l, adapt_steps=3)
    for k, v in m.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} changed by test-time adaptation"
    assert torch.equal(torch.get_rng_state(), rng)
    assert not m.training and all(not mod.training for mod in m.modules())
    plain = m.predict_ab(l, adapt_steps=0)
    assert adapted.shape == plain.shape == (3, 2, 32, 32)
    assert not torch.allclose(adapted, plain)
    torch.testing.assert_close(plain, m.generator(l))


def test_checkpoint_round_trip_keeps_clusters_and_data_location(emoji32, tmp_path, caplog) -> None:
    m = make(emoji32).eval()
    path = save_method(m, tmp_path / "m.safetensors", step=3)
    loaded = load_method(path)
    assert isinstance(loaded, MetalGAN)
    for k, v in m.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    assert loaded.tasks.k == 3 and loaded.task_info["backbone"] == m.task_info["backbone"]
    assert loaded.data_paths == emoji32.paths
    l = default_collate([emoji32[i] for i in (1, 2)])["l"]
    torch.testing.assert_close(loaded.predict_ab(l, adapt_steps=0), m.predict_ab(l, adapt_steps=0))
    torch.testing.assert_close(loaded.nearest_clusters(l), m.nearest_clusters(l))
    if m.task_info.get("int8"):  # the tasks' int8 calibration travels with the checkpoint
        assert loaded.task_info["int8_qparams"] == m.task_info["int8_qparams"]
    m.set_tasks(m.tasks, emoji32)  # new tasks: the query embedding is rebuilt from their descriptor
    assert m.auxiliary("extractor", lambda: "rebuilt") == "rebuilt"  # the old embedding network was dropped
    with caplog.at_level(logging.WARNING):
        adapted = loaded.predict_ab(l, adapt_steps=2)  # re-reads the cluster's images from the stored paths
    assert "not reachable" not in caplog.text
    assert not torch.allclose(adapted, loaded.predict_ab(l, adapt_steps=0))
    # Training images gone: fall back to the meta-trained G with a warning.
    loaded.data_root = str(tmp_path / "moved")
    loaded.clear_adaptation_cache()
    with caplog.at_level(logging.WARNING):
        out = loaded.predict_ab(l, adapt_steps=2)
    assert "not reachable" in caplog.text
    torch.testing.assert_close(out, loaded.predict_ab(l, adapt_steps=0))


def test_train_loop_checkpoint_colorizes_any_size(emoji32, tmp_path) -> None:
    from fewcolor.pipeline import Colorizer
    from fewcolor.train.loop import TrainOptions, train

    m = make(emoji32)
    res = train(m, emoji32, TrainOptions(out_dir=tmp_path / "run", steps=2, batch_size=2, sample_every=0,
                                         progress=False, tensorboard=False, log_every=1))
    assert {"meta/lr", "inner/l1_last", "loss/d"} <= set(res.history[-1])
    colorizer = Colorizer.from_checkpoint(res.checkpoint)
    out = colorizer.colorize(torch.rand(3, 37, 45), adapt_steps=1)
    assert out.shape == (3, 37, 45) and torch.isfinite(out).all()


def test_cli_cluster_then_adapt_then_colorize(emoji_dir, emoji32, tmp_path) -> None:
    from fewcolor.cli import main

    runner = CliRunner()
    r = runner.invoke(main, ["cluster", str(emoji_dir), "--k", "3", "--feature-size", "64", "--per-row", "2",
                             "-o", str(tmp_path / "clusters")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "clusters" / "index.html").is_file() and (tmp_path / "clusters" / "assignments.csv").is_file()

    model = save_method(make(emoji32), tmp_path / "meta.safetensors")
    few = tmp_path / "few"
    few.mkdir()
    for p in sorted((emoji_dir / "heart").glob("*.png"))[:3]:
        shutil.copy(p, few / p.name)
    r = runner.invoke(main, ["adapt", str(model), "--data", str(few), "-o", str(tmp_path / "new.safetensors"),
                             "--steps", "4"])
    assert r.exit_code == 0, r.output
    assert "in 4 steps" in r.output
    new = load_method(tmp_path / "new.safetensors")
    assert new.name == "metalgan" and new.config.adapt_steps == 0 and new.adapted_to["images"] == 3
    old = load_method(model)
    assert any(not torch.equal(a, b) for a, b in zip(new.generator.state_dict().values(),
                                                    old.generator.state_dict().values(), strict=True))
    r = runner.invoke(main, ["colorize", str(tmp_path / "new.safetensors"), str(few), "-o", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert len(list((tmp_path / "out").glob("*.png"))) == 3


def test_cgan_metalgan_preset_has_the_same_networks_and_hyper_parameters() -> None:
    cg = build_method("cgan", "metalgan-cpu")
    mg = build_method("metalgan", "cpu")
    for a, b in ((cg.generator, mg.generator), (cg.discriminator, mg.discriminator)):
        sa, sb = a.state_dict(), b.state_dict()
        assert list(sa) == list(sb) and all(sa[k].shape == sb[k].shape for k in sa)
    assert cg.config.lr == mg.config.inner_lr == mg.config.d_lr
    assert (cg.config.gan_weight, cg.config.l1_weight, cg.config.gan_loss) == (mg.config.gan_weight,
                                                                               mg.config.l1_weight, "vanilla")
    assert cg.config.image_size == mg.config.image_size and cg.config.dropout == mg.config.dropout


def test_cluster_adaptation_is_cached_on_disk_across_loads(emoji32, tmp_path, monkeypatch) -> None:
    from fewcolor.home import fewcolor_home

    path = save_method(make(emoji32).eval(), tmp_path / "m.safetensors")
    l = default_collate([emoji32[i] for i in (3, 4)])["l"]
    cache = fewcolor_home() / "adapted"
    old = set(cache.glob("*.safetensors")) if cache.is_dir() else set()
    first = load_method(path).predict_ab(l, adapt_steps=4)
    new = set(cache.glob("*.safetensors")) - old
    assert new  # one entry per cluster the queries fell into
    real_inner_loop = MetalGAN.inner_loop
    calls: list[int] = []

    def counting(self, *args, **kwargs):
        calls.append(1)
        return real_inner_loop(self, *args, **kwargs)

    monkeypatch.setattr(MetalGAN, "inner_loop", counting)
    again = load_method(path)  # a new process would see exactly this: a fresh model, the same file
    torch.testing.assert_close(again.predict_ab(l, adapt_steps=4), first)
    assert calls == []  # read from disk, not adapted again
    again.clear_adaptation_cache()
    with torch.no_grad():
        next(again.generator.parameters()).add_(0.01)  # other weights: another key
    again.predict_ab(l, adapt_steps=4)
    assert calls


# ----- paper fidelity (issue 14): Algorithm 1's SGD inner loop, §3.4's discriminator step, query sets --------
class _TwoParams(torch.nn.Module):
    """A 2-parameter "generator": ab = (w·L + b, w·L − b)."""

    size_multiple = 1

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(0.3))
        self.b = torch.nn.Parameter(torch.tensor(-0.2))

    def forward(self, l: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.w * l + self.b, self.w * l - self.b], dim=1)


def _one_task_method(n: int = 4, **kw):
    """MetalGAN (tiny) on n smooth images forming ONE task, its generator replaced by _TwoParams."""
    from fewcolor.data.tasks import ClusterTasks
    from helpers import TensorColourDataset, smooth_colour_images

    ds = TensorColourDataset(smooth_colour_images(n, 16, seed=2))
    tasks = ClusterTasks(torch.zeros(1, 3), torch.zeros(3), torch.zeros(3, 3), torch.zeros(n, dtype=torch.long),
                         {"backbone": "alexnet", "layer": "features.11", "pretrained": False, "feature_size": 64})
    torch.manual_seed(0)
    m = build_method("metalgan", "tiny", {"image_size": 16, "inner_batch_size": n, "meta_batch_size": 1, **kw})
    m.set_tasks(tasks, ds)
    m.generator = _TwoParams()
    return m, ds


def test_meta_step_is_a_hand_written_reptile_step_with_an_sgd_inner_loop() -> None:
    # Algorithm 1: θ̃ ← θ̃ − λ_G ∇(w_L1·L1) (SGD) N times, then θ ← θ + λ_ML(θ̃ − θ). The task is the whole
    # batch (4 images, inner_batch_size 4), so every inner batch is those 4 images (the mean is order-free).
    # With the old fresh-Adam inner loop the parameters land elsewhere.
    m, ds = _one_task_method(gan_weight=0.0, l1_weight=100.0, inner_lr=1e-3, inner_steps=3, meta_lr=0.5,
                             inner_optimizer="sgd")
    batch = default_collate([ds[i] for i in range(4)])
    w, b = 0.3, -0.2
    wt, bt = torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)
    for _ in range(3):
        loss = 100 * (torch.cat([wt * batch["l"] + bt, wt * batch["l"] - bt], 1) - batch["ab"]).abs().mean()
        gw, gb = torch.autograd.grad(loss, [wt, bt])
        wt, bt = (wt - 1e-3 * gw).detach().requires_grad_(), (bt - 1e-3 * gb).detach().requires_grad_()
    expected = (w + 0.5 * (float(wt.detach()) - w), b + 0.5 * (float(bt.detach()) - b))
    opts = m.configure_optimizers()
    phases = m.training_step(batch, 0)
    assert next(phases).optimizer == "meta"
    opts["meta"].step()
    assert (m.generator.w.item(), m.generator.b.item()) == pytest.approx(expected, rel=1e-5, abs=1e-7)
    assert (w, b) != pytest.approx(expected, abs=1e-4)  # the step moved θ
    adam, _ = _one_task_method(gan_weight=0.0, inner_lr=1e-3, inner_steps=3, meta_lr=0.5, inner_optimizer="adam")
    adam_opts = adam.configure_optimizers()
    next(adam.training_step(batch, 0))
    adam_opts["meta"].step()
    assert (adam.generator.w.item(), adam.generator.b.item()) != pytest.approx(expected, rel=1e-3)


def test_inner_loss_weights_and_discriminator_step_over_every_image_of_the_task() -> None:
    # Inner loss = w_adv·(−log D(L, G(L))) + w_L1·|G(L) − ab|; §3.4: ε_D sums ∇_θD L_adv over EVERY image of
    # τ (6 here, with inner batches of 2; the old step used one inner batch, averaged) against θ̃_G's fakes.
    import torch.nn.functional as F

    m, ds = _one_task_method(6, inner_batch_size=2, inner_steps=2, d_chunk=6, gan_weight=0.7, l1_weight=30.0)
    batch = default_collate([ds[i] for i in range(6)])
    fake = m.generator(batch["l"])
    d_out = m.discriminator(torch.cat([batch["l"], fake], 1))
    loss, logs = m._generator_loss(m.generator, batch)
    expected = 0.7 * F.binary_cross_entropy_with_logits(d_out, torch.ones_like(d_out)) + 30 * (
        fake - batch["ab"]).abs().mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert logs["l1"] == pytest.approx((fake - batch["ab"]).abs().mean().item(), rel=1e-5)

    m.configure_optimizers()
    d0 = state(m.discriminator)
    seed = _mix(m.config.seed, 0, 0)
    fast, _ = m.inner_loop(ds, list(range(6)), 2, seed)
    phases = m.training_step(batch, 0)
    next(phases)
    d_phase = next(phases)
    got = [p.grad.clone() for p in m.discriminator.parameters()]
    assert d_phase.loss is None and d_phase.logs["d/images"] == 6
    ref = build_method("metalgan", "tiny", {"image_size": 16}).discriminator
    ref.load_state_dict(d0)
    with torch.no_grad():
        fakes = fast(batch["l"])
    real_out = ref(torch.cat([batch["l"], batch["ab"]], 1))
    fake_out = ref(torch.cat([batch["l"], fakes], 1))
    total = 6 * (F.binary_cross_entropy_with_logits(real_out, torch.ones_like(real_out))
                 + F.binary_cross_entropy_with_logits(fake_out, torch.zeros_like(fake_out)))
    want = torch.autograd.grad(total, list(ref.parameters()))
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-6)
    assert d_phase.logs["loss/d"] == pytest.approx(total.item(), rel=1e-4)


def test_query_sets_are_a_random_tenth_per_epoch_and_set_the_run_length(emoji32) -> None:
    m = make(emoji32, query_fraction=0.1, meta_epochs=5, meta_batch_size=1)
    assert m.queries_per_epoch(30) == 3
    epoch0 = [q for s in range(3) for q in m.query_indices(s, 1)]
    epoch1 = [q for s in range(3, 6) for q in m.query_indices(s, 1)]
    assert len(set(epoch0)) == 3 and epoch0 != epoch1  # distinct queries within an epoch, a new draw after
    assert m.query_indices(4, 1) == m.query_indices(4, 1)  # a pure function of the step: resumable
    # two ranks with one query each ≡ one process with two queries per step
    assert m.query_indices(3, 2) == m.query_indices(3, 1, rank=0, world=2) + m.query_indices(3, 1, rank=1, world=2)
    assert m.suggested_steps(30, batch_size=8) == 15  # 5 epochs × 3 queries, one per step
    assert make(emoji32).suggested_steps(30, 8) is None  # meta_epochs = 0: the CLI's --steps decide
    with pytest.raises(ValueError, match="query_fraction"):
        build_method("metalgan", "tiny", {"query_fraction": 0.0})


def test_discriminator_modules_are_conv_bn_relu() -> None:
    m = build_method("metalgan", "paper")
    acts = {type(x) for x in m.discriminator.modules() if isinstance(x, (torch.nn.ReLU, torch.nn.LeakyReLU))}
    assert acts == {torch.nn.ReLU}  # §3.4 (the old D was LeakyReLU)
    assert m.config.inner_optimizer == "sgd" and m.config.d_images == "task"
    old = build_method("metalgan", "paper", {"d_activation": "leaky"})
    assert {type(x) for x in old.discriminator.modules() if isinstance(x, torch.nn.LeakyReLU)} == {torch.nn.LeakyReLU}
    cg = build_method("cgan", "metalgan")  # the comparison baseline has the same D
    assert {type(x) for x in cg.discriminator.modules() if isinstance(x, (torch.nn.ReLU, torch.nn.LeakyReLU))} == {
        torch.nn.ReLU}


def test_paper_preset_carries_the_papers_constants() -> None:
    """The ``paper`` preset's constants are the paper's (docs/METALGAN.md, "Paper says | we do | why"): a
    changed default would silently stop the preset being the paper's method."""
    c = MetalGAN.make_config("paper")
    # §3.1 tasks: MAC (ResNet50 layer4.0, else the VGG16 fallback) at the paper's 224 px → PCA 512 → K-means, k = 64
    assert (c.n_clusters, c.pca_dim, c.backbone, c.feature_size) == (64, 512, "auto", 224)
    # Algorithm 1: a random 10 % of the images as queries each epoch, one query per iteration
    assert (c.query_fraction, c.meta_batch_size) == (0.1, 1)
    # inner loop: N_meta-iter = 100 plain SGD steps, λ_G = 1e-4, on w_adv·L_adv + w_L1·L_L1 with w = 1, 100
    assert (c.inner_steps, c.inner_optimizer, c.inner_lr) == (100, "sgd", 1e-4)
    assert (c.gan_weight, c.l1_weight) == (1.0, 100.0)
    # Reptile: θ ← θ + λ_ML(θ̃ − θ), λ_ML = 1e-3, plain and constant
    assert (c.meta_optimizer, c.meta_lr, c.meta_lr_end) == ("sgd", 1e-3, None)
    # §3.4: one D update per query, ε_D over every image of τ, λ_D = 1e-4, Conv-BN-ReLU modules
    assert (c.d_steps, c.d_images, c.d_lr, c.d_activation) == (1, "task", 1e-4, "relu")
    # pix2pix's 256 px U-Net (base 64, 8 down-samplings) and a single-logit D
    assert (c.image_size, c.base_channels, c.depth, c.encoder, c.discriminator) == (256, 64, 8, "none", "dcgan")
    # §3.3 test time: the meta-trained G, no adaptation to the query's cluster (that is our extension)
    assert c.adapt_steps == 0


class _PrecisionProbe(torch.nn.Module):
    """A stand-in descriptor net, (B,1,H,W) -> (B,4), that records the dtype its linear layer computed in."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(4, 4)
        self.dtypes: list[torch.dtype] = []

    def forward(self, l: torch.Tensor) -> torch.Tensor:
        out = self.fc(torch.nn.functional.adaptive_avg_pool2d(l, 2).flatten(1))
        self.dtypes.append(out.dtype)
        return out


@pytest.mark.parametrize(("built_bf16", "native_at_query", "expected"), [
    (True, True, torch.bfloat16),  # bf16 clusters: queries embedded under bf16 autocast like them
    (False, True, torch.float32),  # fp32 clusters stay fp32 even where the hardware has bf16
    (True, False, torch.float32),  # bf16 clusters, but this device would only emulate bf16
])
def test_query_descriptors_take_the_precision_the_clusters_were_built_with(
        monkeypatch, tmp_path, built_bf16: bool, native_at_query: bool, expected: torch.dtype) -> None:
    from fewcolor.backbones import clustering
    from fewcolor.methods import metalgan
    from helpers import TensorColourDataset, smooth_colour_images

    probe = _PrecisionProbe()
    monkeypatch.setattr(clustering, "build_extractor", lambda *args: probe)
    monkeypatch.setattr(metalgan, "descriptor_precision", lambda: "bf16" if built_bf16 else "fp32")
    native = [built_bf16]  # what hardware.native_bf16 answers, on any CPU
    monkeypatch.setattr(metalgan, "native_bf16", lambda device="cpu": native[0])
    ds = TensorColourDataset(smooth_colour_images(6, 32, seed=1))  # in memory: no descriptor cache involved
    torch.manual_seed(0)
    m = build_method("metalgan", "tiny", {"n_clusters": 3, "feature_size": 32, "backbone": "vgg16:features.29"})
    m.setup(ds)
    assert bool(m.task_info.get("bf16")) is built_bf16
    assert set(probe.dtypes) == {torch.bfloat16 if built_bf16 else torch.float32}  # the clusters' descriptors
    native[0] = native_at_query
    path = tmp_path / "m.safetensors"
    save_method(m, path)
    for model in (m, load_method(path)):  # the precision travels with the clusters in the checkpoint
        probe.dtypes.clear()
        model.nearest_clusters(ds.l[:2])
        assert probe.dtypes == [expected]


def test_a_deep_copy_shares_the_training_data_and_helpers_and_no_adapted_generators(emoji32) -> None:
    # fewcolor.train.adapt copies the method per episode: the data (with its decoded-image cache) and the frozen
    # helpers are shared, the adapted generators (derived from θ_G, about to change) are not carried over.
    import copy

    m = make(emoji32).eval()
    m.adapted_generator(0, 1)
    probe = m.auxiliary("probe", lambda: torch.nn.Linear(2, 2))
    c = copy.deepcopy(m)
    assert c._dataset is m._dataset and c.auxiliary("probe", lambda: None) is probe
    c.drop_auxiliary("probe")
    assert m.auxiliary("probe", lambda: None) is probe  # dropping in the copy leaves the original's
    assert len(c._adapted) == 0 and len(m._adapted) == 1
    for (name, a), b in zip(c.state_dict().items(), m.state_dict().values(), strict=True):
        assert torch.equal(a, b) and a.data_ptr() != b.data_ptr(), name
    with torch.no_grad():
        next(c.generator.parameters()).add_(1.0)
    assert not torch.equal(next(c.generator.parameters()), next(m.generator.parameters()))
    assert c.config == m.config and c.task_info == m.task_info and c.task_info is not m.task_info


def test_cached_adapted_generators_follow_the_mode_and_are_dropped_by_a_state_load(emoji32) -> None:
    m = make(emoji32).eval()
    fast = m.adapted_generator(0, 1)
    assert not fast.training
    m.train()
    assert m.adapted_generator(0, 1) is fast and fast.training
    m.load_state_dict(m.state_dict())
    assert len(m._adapted) == 0
