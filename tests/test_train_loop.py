import json
import logging
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from fewcolor.methods.base import Phase
from fewcolor.methods.registry import build_method, load_method
from fewcolor.methods.unet import UNetRegression
from fewcolor.train.loop import (
    TrainOptions,
    TrainStep,
    _epoch_permutation,
    batch_indices,
    collate_samples,
    keep_norm_statistics,
    train,
    write_sample_grid,
)
from helpers import TensorColourDataset, smooth_colour_images

REPO = Path(__file__).resolve().parents[1]


def _dataset(n=6, size=16):
    return TensorColourDataset(smooth_colour_images(n, size))


def _opts(tmp_path, **kw):
    base = dict(
        out_dir=tmp_path,
        steps=6,
        batch_size=2,
        seed=3,
        checkpoint_every=3,
        sample_every=0,
        progress=False,
        tensorboard=False,
    )
    base.update(kw)
    return TrainOptions(**base)


def test_batch_indices_cover_each_epoch_and_split_ranks():
    n, b = 10, 3
    stream = [i for s in range(10) for i in batch_indices(n, s, b, seed=1)]
    assert sorted(stream[:10]) == list(range(10)) and sorted(stream[10:20]) == list(range(10))
    r0 = batch_indices(n, 0, 2, seed=1, rank=0, world=2)
    r1 = batch_indices(n, 0, 2, seed=1, rank=1, world=2)
    assert not set(r0) & set(r1)
    assert batch_indices(n, 4, b, seed=1) == batch_indices(n, 4, b, seed=1)


def test_batch_indices_equal_the_uncached_permutations_drawn_once_per_epoch():
    n, b, seed, world = 10, 3, 4, 2
    # the stream written out without any memo: one seeded randperm per epoch, read in order
    uncached = [i for epoch in range(4)
                for i in torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch)).tolist()]
    _epoch_permutation.cache_clear()
    steps = range(6)  # 6 steps × 2 ranks × 3 = 36 positions, epochs 0-3, batches straddling epoch ends
    got = [batch_indices(n, s, b, seed, rank, world) for s in steps for rank in range(world)]
    assert [i for batch in got for i in batch] == uncached[: 6 * world * b]
    assert _epoch_permutation.cache_info().misses == 4  # each epoch's permutation drawn once, not per step


def test_collate_samples_sets_the_epoch_then_uses_the_datasets_own_collate():
    class Recording(TensorColourDataset):
        def __init__(self, images):
            super().__init__(images)
            self.calls = []

        def set_epoch(self, epoch):
            self.calls.append(("epoch", epoch))

        def collate(self, indices):
            self.calls.append(("collate", list(indices)))
            return {"index": torch.tensor(list(indices))}

    ds = Recording(smooth_colour_images(4, 8))
    assert collate_samples(ds, [2, 1], 5)["index"].tolist() == [2, 1]
    assert ds.calls == [("epoch", 5), ("collate", [2, 1])]
    plain = _dataset(4, 8)  # no collate: default_collate of its samples
    assert collate_samples(plain, [3, 0], 0)["l"].shape == (2, 1, 8, 8)


def test_training_reduces_loss_and_writes_run(tmp_path):
    torch.manual_seed(0)
    m = build_method("unet", "tiny", {"image_size": 16, "depth": 3})
    result = train(m, _dataset(), _opts(tmp_path, steps=40, log_every=5, sample_every=20, tensorboard=True))
    assert result.step == 40
    losses = [h["loss/l1"] for h in result.history]
    assert losses[-1] < 0.6 * losses[0]
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "checkpoints" / "last.safetensors").exists()
    assert (tmp_path / "log.csv").read_text().startswith("step,loss/l1")
    assert (tmp_path / "samples" / "step_000020.png").exists()
    assert list((tmp_path / "events").iterdir()), "no TensorBoard event file"
    assert load_method(result.checkpoint).name == "unet"


def test_resume_continues_exactly(tmp_path):
    ds = _dataset()
    torch.manual_seed(0)
    full = build_method("unet", "tiny", {"image_size": 16, "depth": 3, "dropout": 0.5})
    train(full, ds, _opts(tmp_path / "full"))
    torch.manual_seed(0)
    part = build_method("unet", "tiny", {"image_size": 16, "depth": 3, "dropout": 0.5})
    train(part, ds, _opts(tmp_path / "part", steps=3))
    resumed = build_method("unet", "tiny", {"image_size": 16, "depth": 3, "dropout": 0.5})
    torch.manual_seed(12345)  # resume must not depend on the caller's RNG state
    result = train(resumed, ds, _opts(tmp_path / "part", steps=6, resume=True))
    assert result.step == 6
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    # the CSV keeps one row per logged step, no duplicates after resuming
    steps = [line.split(",")[0] for line in (tmp_path / "part" / "log.csv").read_text().splitlines()[1:]]
    assert steps == ["3", "6"]


def test_training_time_adds_up_over_resumed_runs(tmp_path):
    from fewcolor.io.checkpoint import read_metadata

    ds = _dataset()
    first = train(build_method("unet", "tiny", {"image_size": 16, "depth": 3}), ds, _opts(tmp_path, steps=3))
    assert first.total_seconds == pytest.approx(first.wall_seconds)
    recorded = read_metadata(tmp_path / "checkpoints" / "last.safetensors")["trained_seconds"]
    assert recorded == pytest.approx(first.wall_seconds, abs=0.1)
    second = train(build_method("unet", "tiny", {"image_size": 16, "depth": 3}), ds,
                   _opts(tmp_path, steps=6, resume=True))
    assert second.total_seconds == pytest.approx(recorded + second.wall_seconds)
    assert read_metadata(tmp_path / "checkpoints" / "last.safetensors")["trained_seconds"] == pytest.approx(
        second.total_seconds, abs=0.1)


def test_refuses_to_overwrite_a_run_and_to_resume_nothing(tmp_path):
    train(build_method("unet", "tiny", {"depth": 3}), _dataset(), _opts(tmp_path, steps=1))
    with pytest.raises(FileExistsError, match="--resume"):
        train(build_method("unet", "tiny", {"depth": 3}), _dataset(), _opts(tmp_path, steps=1))
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(build_method("unet", "tiny", {"depth": 3}), _dataset(), _opts(tmp_path / "new", resume=True))


class _Flaky(UNetRegression):
    """Produces a NaN loss at chosen steps (and an inf gradient at others)."""

    nan_steps: frozenset = frozenset()
    inf_grad_steps: frozenset = frozenset()

    def training_step(self, batch, step):
        pred = self.generator(batch["l"])
        loss = torch.nn.functional.l1_loss(pred, batch["ab"])
        if step in self.nan_steps:
            loss = loss * float("nan")
        if step in self.inf_grad_steps:
            loss = loss + 0.0 * torch.sqrt(pred.abs().min() * 0)  # d sqrt(x)/dx at 0 = inf, loss stays finite
        yield Phase("generator", loss, {"loss/l1": loss.item()})


def test_non_finite_steps_are_skipped_then_rolled_back(tmp_path, caplog):
    m = _Flaky(UNetRegression.make_config("tiny", {"depth": 3}))
    m.nan_steps = frozenset({3, 4, 5})
    m.inf_grad_steps = frozenset({7})
    with caplog.at_level(logging.WARNING, logger="fewcolor.train.loop"):
        result = train(m, _dataset(), _opts(tmp_path, steps=9, checkpoint_every=2))
    assert result.skipped_steps == 4 and result.rollbacks == 1
    assert "rolled back" in caplog.text
    assert all(torch.isfinite(p).all() for p in m.parameters())


@pytest.mark.slow
def test_two_process_data_parallel_ranks_stay_identical(tmp_path):
    script = tmp_path / "ddp_run.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys, torch
        sys.path.insert(0, {str(REPO / "tests")!r})
        import torch.distributed as dist
        from helpers import TensorColourDataset, smooth_colour_images
        from fewcolor.methods.registry import build_method
        from fewcolor.train.loop import TrainOptions, train
        torch.manual_seed(int(__import__("os").environ["RANK"]))  # different init per rank on purpose
        m = build_method("unet", "tiny", {{"image_size": 16, "depth": 3}})
        ds = TensorColourDataset(smooth_colour_images(8, 16))
        train(m, ds, TrainOptions(out_dir={str(tmp_path / "run")!r}, steps=4, batch_size=2, sample_every=0,
                                  progress=False, tensorboard=False))
        torch.save(m.state_dict(), {str(tmp_path)!r} + f"/rank{{dist.get_rank()}}.pt")
        dist.destroy_process_group()
    """)
    )
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-port",
        "29517",
        str(script),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a = torch.load(tmp_path / "rank0.pt")
    b = torch.load(tmp_path / "rank1.pt")
    start = build_method("unet", "tiny", {"image_size": 16, "depth": 3}).state_dict()
    moved = False
    for k in a:
        assert torch.equal(a[k], b[k]), f"ranks differ at {k}"
        moved |= a[k].is_floating_point() and not torch.equal(a[k], start[k])
    assert moved


def test_bf16_autocast_trains_and_saves_float32_weights(tmp_path):
    torch.manual_seed(0)
    m = build_method("unet", "tiny", {"image_size": 16, "depth": 3})
    result = train(m, _dataset(), _opts(tmp_path, steps=20, log_every=5, precision="bf16"))
    losses = [h["loss/l1"] for h in result.history]
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]
    assert all(p.dtype == torch.float32 for p in load_method(result.checkpoint).parameters())


@pytest.mark.parametrize("lr_factor", [1.0, 3.0])
def test_the_loop_follows_the_methods_learning_rate_schedule(tmp_path, lr_factor):
    # CIC's §3 schedule: lr 3e-3 (tiny) × 1, 1/3, 1/10 from 4/9 and 5/6 of the run; the loop sets it each step,
    # scaled by the run's lr_factor (`fewcolor adapt --lr-factor`), which the schedule must not undo.
    m = build_method("cic", "tiny", {"lr": 3e-3, "prior_cache": False})
    seen: list[float] = []
    step_fn = m.training_step

    def spy(batch, step):
        seen.append(m._spy_opt.param_groups[0]["lr"])
        yield from step_fn(batch, step)

    make_opts = m.configure_optimizers

    def keep():
        opts = make_opts()
        m._spy_opt = opts["net"]
        return opts

    m.training_step, m.configure_optimizers = spy, keep
    train(m, _dataset(4, 16), _opts(tmp_path, steps=9, batch_size=2, lr_factor=lr_factor))
    expected = [3e-3] * 4 + [1e-3] * 4 + [3e-4]  # drops at steps 4 (4/9·9) and 8 (≥ 7.5)
    assert seen == pytest.approx([lr * lr_factor for lr in expected])


def test_train_step_matches_a_plain_optimiser_step():
    """The loop's fused Adam gives the weights of PyTorch's per-tensor default up to rounding."""
    batch = {"l": torch.rand(4, 1, 16, 16) * 2 - 1, "ab": torch.rand(4, 2, 16, 16) * 2 - 1}
    torch.manual_seed(0)
    fast = build_method("unet", "tiny")
    slow = build_method("unet", "tiny")
    slow.load_state_dict(fast.state_dict())
    start = [p.detach().clone() for p in fast.parameters()]
    fast_opts, slow_opts = fast.configure_optimizers(), slow.configure_optimizers()
    step = TrainStep(fast, fast_opts, bf16=False, device=torch.device("cpu"))
    assert all(g["fused"] and not g["foreach"] for g in fast_opts["generator"].param_groups)
    for i in range(3):
        torch.manual_seed(i)
        logs = step(batch, i, 3)
        torch.manual_seed(i)
        for phase in slow.training_step(batch, i):
            slow_opts[phase.optimizer].zero_grad()
            phase.loss.backward()
            slow_opts[phase.optimizer].step()
        assert logs is not None and set(logs) == {"loss/l1"}
    for a, b in zip(fast.parameters(), slow.parameters(), strict=True):
        # fused and plain Adam round differently per CPU ISA (1.05e-6 seen on AVX2), far below one Adam update
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    assert not any(torch.equal(a, b) for a, b in zip(fast.parameters(), start, strict=True))


def test_grads_finite_is_exact_even_when_a_sum_overflows():
    from fewcolor.train.loop import _grads_finite

    p, q = torch.nn.Parameter(torch.zeros(4)), torch.nn.Parameter(torch.zeros(3))
    p.grad, q.grad = torch.ones(4), torch.full((3,), 3e38)  # finite, but their sum overflows
    assert _grads_finite([p, q])
    for bad in (float("nan"), float("inf"), -float("inf")):
        q.grad = torch.tensor([1.0, bad, 2.0])
        assert not _grads_finite([p, q])
    q.grad = None
    assert _grads_finite([p, q]) and _grads_finite([q])


def test_sample_grid_gives_each_module_its_own_mode_back(tmp_path):
    method = build_method("unet", "tiny", {"image_size": 16, "depth": 3})
    method.train()
    keep_norm_statistics(method)
    norms = [m for m in method.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and not any(m.training for m in norms) and method.training
    batch = collate_samples(_dataset(2, 16), [0, 1], 0)
    write_sample_grid(method, batch, tmp_path / "grid.png")
    assert (tmp_path / "grid.png").is_file()
    assert method.training and not any(m.training for m in norms)


def test_held_out_scores_every_n_steps_and_at_the_end_in_eval_mode(tmp_path):
    seen = []

    def validate(method):
        assert not method.training and not torch.is_grad_enabled()
        seen.append(method.training)
        return {"score": float(len(seen))}

    torch.manual_seed(0)
    m = build_method("unet", "tiny", {"image_size": 16, "depth": 3})
    result = train(m, _dataset(), _opts(tmp_path, steps=7, validate_every=3), validate)
    assert [r["step"] for r in result.validation] == [3, 6, 7]  # every 3 steps, and the last
    assert [r["score"] for r in result.validation] == [1.0, 2.0, 3.0]
    lines = (tmp_path / "validation.csv").read_text().splitlines()
    assert lines[0] == "step,score" and [line.split(",")[0] for line in lines[1:]] == ["3", "6", "7"]


def test_a_held_out_rounds_cost_is_said_once_and_kept_out_of_the_step_rate(tmp_path, caplog):
    import time as time_module

    from fewcolor.train.loop import ESTIMATE_STEPS

    def slow_validate(method):
        time_module.sleep(0.6)
        return {"score": 1.0}

    steps = ESTIMATE_STEPS + 4
    with caplog.at_level(logging.INFO, logger="fewcolor.train.loop"):
        train(build_method("unet", "tiny", {"image_size": 16, "depth": 3}), _dataset(),
              _opts(tmp_path, steps=steps, validate_every=2), slow_validate)
    said = [m for m in caplog.messages if m.startswith("a held-out round takes")]
    # rounds at 2, 4, 6, 8 and the last step 9: after the first, 4 to come
    assert len(said) == 1 and "the 4 round(s) still to come add about" in said[0], said
    rate = next(m for m in caplog.messages if m.startswith("expected: about"))
    seconds_per_step = float(rate.split("(")[1].split(" s/step")[0])
    assert seconds_per_step < 0.6 / 2, f"the rounds' pauses were counted as training steps: {rate}"


def test_held_out_rows_after_the_checkpoint_are_dropped_on_resume(tmp_path):
    def validate(method):
        return {"score": 1.0}

    ds = _dataset()
    train(build_method("unet", "tiny", {"image_size": 16, "depth": 3}), ds,
          _opts(tmp_path, steps=4, validate_every=2), validate)
    csv_path = tmp_path / "validation.csv"
    assert [line.split(",")[0] for line in csv_path.read_text().splitlines()[1:]] == ["2", "4"]
    with csv_path.open("a") as f:  # a row written after the step-4 checkpoint, before a kill
        f.write("5,9.0\n")
    resumed = train(build_method("unet", "tiny", {"image_size": 16, "depth": 3}), ds,
                    _opts(tmp_path, steps=6, validate_every=2, resume=True), validate)
    assert resumed.step == 6 and [r["step"] for r in resumed.validation] == [6]
    steps = [line.split(",")[0] for line in csv_path.read_text().splitlines()[1:]]
    assert steps == ["2", "4", "6"]


def test_validate_every_without_a_validation_is_refused(tmp_path):
    with pytest.raises(ValueError, match="validate_every"):
        train(build_method("unet", "tiny", {"depth": 3}), _dataset(), _opts(tmp_path, validate_every=2))


def test_evaluating_gives_each_module_its_own_mode_back_even_after_an_error():
    from fewcolor.train.loop import evaluating

    method = build_method("unet", "tiny", {"image_size": 16, "depth": 3})
    method.train()
    keep_norm_statistics(method)
    before = [m.training for m in method.modules()]
    with pytest.raises(RuntimeError, match="boom"), evaluating(method):
        assert not any(m.training for m in method.modules()) and not torch.is_grad_enabled()
        raise RuntimeError("boom")
    assert [m.training for m in method.modules()] == before and torch.is_grad_enabled()


def test_a_failing_held_out_round_is_a_warning_and_the_checkpoint_comes_first(tmp_path, caplog):
    calls = []

    def validate(method):
        calls.append(1)
        if len(calls) == 1:
            assert (tmp_path / "checkpoints" / "last.safetensors").exists()
            from fewcolor.io.checkpoint import read_metadata

            assert read_metadata(tmp_path / "checkpoints" / "last.safetensors")["step"] == 3  # saved before scoring
            raise RuntimeError("an image too small for LPIPS")
        return {"score": 1.0}

    with caplog.at_level(logging.WARNING):
        result = train(build_method("unet", "tiny", {"image_size": 16, "depth": 3}), _dataset(),
                       _opts(tmp_path, steps=6, validate_every=3), validate)
    assert result.step == 6 and [r["step"] for r in result.validation] == [6]
    assert any("held-out scores failed" in m and "too small" in m for m in caplog.messages)


class _Scores:
    def __init__(self, name):
        self.identity = {"set": name}

    def __call__(self, method):
        return {"score": 1.0}


def test_resuming_on_another_held_out_set_restarts_the_curve_and_keeps_the_old_one(tmp_path, caplog):
    ds = _dataset()
    train(build_method("unet", "tiny", {"image_size": 16, "depth": 3}), ds,
          _opts(tmp_path, steps=4, validate_every=2), _Scores("a"))
    train(build_method("unet", "tiny", {"image_size": 16, "depth": 3}), ds,
          _opts(tmp_path, steps=5, validate_every=2, resume=True), _Scores("a"))  # same set: the curve goes on
    steps = [line.split(",")[0] for line in (tmp_path / "validation.csv").read_text().splitlines()[1:]]
    assert steps == ["2", "4", "5"]
    with caplog.at_level(logging.WARNING):
        train(build_method("unet", "tiny", {"image_size": 16, "depth": 3}), ds,
              _opts(tmp_path, steps=6, validate_every=2, resume=True), _Scores("b"))
    old = tmp_path / "validation-until-step5.csv"
    assert [line.split(",")[0] for line in old.read_text().splitlines()[1:]] == ["2", "4", "5"]
    assert [line.split(",")[0] for line in (tmp_path / "validation.csv").read_text().splitlines()[1:]] == ["6"]
    assert any("held-out set differs" in m for m in caplog.messages)
    assert json.loads((tmp_path / "run.json").read_text())["held_out"] == {"set": "b"}


def test_the_expected_time_of_the_rest_is_said_once_after_the_first_timed_steps(tmp_path, caplog):
    from fewcolor.train.loop import ESTIMATE_STEPS, duration_text

    with caplog.at_level(logging.INFO, logger="fewcolor.train.loop"):
        train(build_method("unet", "tiny", {"image_size": 16, "depth": 3}), _dataset(),
              _opts(tmp_path / "long", steps=ESTIMATE_STEPS + 4))
        train(build_method("unet", "tiny", {"image_size": 16, "depth": 3}), _dataset(),
              _opts(tmp_path / "short", steps=ESTIMATE_STEPS + 1))  # nothing left to estimate
    said = [m for m in caplog.messages if m.startswith("expected: about")]
    assert len(said) == 1 and "for the 3 steps left" in said[0] and f"steps 2-{ESTIMATE_STEPS + 1}" in said[0]
    assert (duration_text(0.2), duration_text(42), duration_text(17 * 60), duration_text(185 * 60)) == (
        "0.2 s", "42 s", "17 min", "3 h 05 min")


@pytest.mark.parametrize("seconds, text", [(0.25, "0.25 s"), (42, "42 s"), (17 * 60, "17 min"),
                                           (185 * 60, "3 h 05 min")])
def test_the_expected_time_reads_right_for_every_duration(seconds, text, caplog):
    import time

    from fewcolor.train.loop import _say_expected_time, _say_held_out_cost

    with caplog.at_level(logging.INFO, logger="fewcolor.train.loop"):
        _say_expected_time(5, 7, seconds / 2, None, time.time())  # 2 steps left
        _say_held_out_cost(seconds, 1)
        _say_expected_time(5, 7, seconds, seconds, time.time())  # --minutes stops it half-way
    expected, held_out, stopped = caplog.messages
    assert expected.startswith(f"expected: about {text} for the 2 steps left"), expected
    assert stopped.endswith(f"; --minutes stops it in about {text}"), stopped
    assert held_out.startswith(f"a held-out round takes {text}; the 1 round(s) still to come add about {text} "), \
        held_out
    assert "about under" not in expected + held_out


def test_the_precision_line_says_who_chose_it(tmp_path, caplog):
    from fewcolor.train.adapt import adapt

    def said() -> list[str]:
        lines = [m for m in caplog.messages if m.startswith("precision:")]
        caplog.clear()
        return lines

    with caplog.at_level(logging.INFO, logger="fewcolor.train.loop"):
        adapt(build_method("unet", "tiny", {"image_size": 16, "depth": 3}), _dataset(2), steps=1, seed=0)
        assert said() == ["precision: fp32 (fine-tuning runs in fp32)"]  # `fewcolor adapt` has no --precision
        train(build_method("unet", "tiny", {"image_size": 16, "depth": 3}), _dataset(), _opts(tmp_path / "a", steps=1))
        assert said() == ["precision: fp32 (the default when no precision is given; `fewcolor train --precision "
                          "auto` uses bf16 where it is native)"]
        train(build_method("unet", "tiny", {"image_size": 16, "depth": 3}), _dataset(),
              _opts(tmp_path / "b", steps=1, precision="fp32"))
        assert said() == ["precision: fp32 as asked"]  # `fewcolor train --precision fp32`
    assert json.loads((tmp_path / "a" / "run.json").read_text())["precision"] == "fp32"


def test_resume_accepts_a_config_field_added_since_at_its_default(tmp_path):
    from fewcolor.train.loop import check_resume_identity, config_defaults

    method = build_method("cic", "tiny")
    defaults = config_defaults(method)
    assert defaults["chroma"] == 1.0 and defaults["temperature"] == 0.38
    current = {"method": "cic", "config": {"lam": 0.5, "chroma": 1.0}}
    older = {"method": "cic", "config": {"lam": 0.5}}  # a run from before the field existed
    check_resume_identity(tmp_path, older, current, defaults)
    with pytest.raises(ValueError, match=r"config chroma None -> 0.5"):  # not at its default: a real change
        check_resume_identity(tmp_path, older, {"method": "cic", "config": {"lam": 0.5, "chroma": 0.5}}, defaults)
    with pytest.raises(ValueError, match=r"config lam 0.5 -> 0.75"):
        check_resume_identity(tmp_path, older, {"method": "cic", "config": {"lam": 0.75, "chroma": 1.0}}, defaults)


def test_a_cpu_run_keeps_the_memory_its_steps_free(tmp_path, monkeypatch):
    from fewcolor.train import loop

    calls = []
    monkeypatch.setattr(loop, "retain_freed_memory", lambda: calls.append("retain") or True)
    train(build_method("unet", "tiny", {"image_size": 16, "depth": 3}), _dataset(), _opts(tmp_path, steps=1))
    assert calls == ["retain"]
