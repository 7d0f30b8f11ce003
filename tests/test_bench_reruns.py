"""Rerunning `fewcolor bench`: another --image-size, budget or --set never reuses or overwrites what the
first run left; the same command again still reuses it; after each training run the time left is said."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import fewcolor.metrics.evaluate as evaluate_module
import fewcolor.train.loop as loop
from fewcolor.bench.protocols import PROTOCOLS, folder_protocols, get_budget
from fewcolor.bench.runner import (
    TrainedRun,
    _build,
    _run_dir,
    _steps_still_to_train,
    _train_or_reuse,
    run_benchmark,
    time_left_line,
)
from fewcolor.cli import main
from fewcolor.io.image import write_rgb


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """Two classes of four small colourful pictures."""
    root = tmp_path / "mine"
    g = torch.Generator().manual_seed(0)
    for cls in ("alice", "bob"):
        for i in range(4):
            low = torch.rand(1, 3, 3, 3, generator=g)
            write_rgb(root / cls / f"{i}.png", torch.nn.functional.interpolate(low, size=(20, 20), mode="bilinear")[0])
    return root


@pytest.fixture()
def fake_training(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Training that takes 0.5 s per step on paper and scoring that reads no image; returns the steps of
    each training run started."""
    started: list[int] = []

    def train(method, dataset, opts):
        started.append(opts.steps)
        return loop.TrainResult(opts.steps, None, wall_seconds=0.01, total_seconds=0.5 * opts.steps)

    def evaluate_pairs(pairs, out_dir, config=None, total=None, extra_protocol=None, **kwargs):
        return {"per_image": [{"name": "q", "lpips": 0.25}], "set": {}}

    monkeypatch.setattr(loop, "train", train)
    monkeypatch.setattr(evaluate_module, "evaluate_pairs", evaluate_pairs)
    return started


# --- (3) --image-size: its own protocol names and runs; a run trained otherwise is never reused --------------


def test_a_folder_protocol_at_another_image_size_gets_its_own_name_and_data_key(folder: Path) -> None:
    (default,) = folder_protocols(folder, [1])
    (at64,) = folder_protocols(folder, [1], 64)
    (at32,) = folder_protocols(folder, [1], 32)
    # the default size keeps the names it always had: earlier run and results folders stay valid
    assert (default.name, default.dataset) == (at64.name, at64.dataset)
    assert default.name == "folder-mine-k1" and default.dataset.endswith("-k1")
    assert at32.name == "folder-mine-k1-32px" and at32.dataset == default.dataset + "-32px"
    assert at32.image_size == 32


def test_the_built_in_protocols_keep_their_names_and_run_folders() -> None:
    # a benchmark in progress resumes runs/flowers/runs/flowers12/memopainter-cpu-40000/seed0/fold1
    flowers = PROTOCOLS["flowers12-k5"]
    assert (flowers.name, flowers.dataset, flowers.image_size) == ("flowers12-k5", "flowers12", 128)
    budget = get_budget("cpu", train_images=40000)
    out_dir = Path("runs/flowers") / flowers.name
    assert _run_dir(out_dir, flowers, False, "memopainter", "cpu", budget, "", None, 0, 1) == Path(
        "runs/flowers/runs/flowers12/memopainter-cpu-40000/seed0/fold1")
    tiny = PROTOCOLS["tinyimagenet-fs-k5"]
    assert _run_dir(Path("r") / tiny.name, tiny, True, "res-cgan", None, budget, "-b2", {"encoder": "x"}, 1,
                    None) == Path("r/runs/tinyimagenet-fs-smoke/res-cgan-default-40000-b2/seed1-encoderx")


def test_a_finished_run_trained_at_another_size_is_refused_not_reused(folder: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit's case: a model trained at 32 px in the folder a 48 px benchmark looks in was reused, as its
    step count matched; now the recorded config is compared and the difference said in one line."""
    (protocol,) = folder_protocols(folder, [1])
    budget = replace(get_budget("smoke"), train_images=2, batch_size=2)  # one step
    run_dir = tmp_path / "runs" / "seed0"
    at32 = replace(protocol, image_size=32)
    first = _train_or_reuse(_build("unet", "tiny", 32, 0)[0], at32, budget, None, 0, run_dir, False, "cpu")
    assert not first.reused and first.steps == 1 and (run_dir / "model.safetensors").is_file()
    assert _steps_still_to_train(run_dir, 1) == 0 and _steps_still_to_train(tmp_path / "no-run", 5) == 5

    monkeypatch.setattr(loop, "train", lambda *a, **k: pytest.fail("trained again"))
    again = _train_or_reuse(_build("unet", "tiny", 32, 0)[0], at32, budget, None, 0, run_dir, False, "cpu")
    assert again.reused and again.steps == 1
    assert again.seconds_per_step is not None  # recorded by the checkpoint when it was trained

    at48 = replace(protocol, image_size=48)
    with pytest.raises(ValueError, match="other settings") as refused:
        _train_or_reuse(_build("unet", "tiny", 48, 0)[0], at48, budget, None, 0, run_dir, False, "cpu")
    message = str(refused.value)
    assert "image_size 32 -> 48" in message and str(run_dir) in message and "another -o" in message
    assert "\n" not in message

    # an unfinished run: the same line, not the training loop's `--resume ... --size` advice (bench has neither)
    (run_dir / "model.safetensors").unlink()
    with pytest.raises(ValueError, match="image_size 32 -> 48") as unfinished:
        _train_or_reuse(_build("unet", "tiny", 48, 0)[0], at48, budget, None, 0, run_dir, False, "cpu")
    assert "--resume" not in str(unfinished.value)


# --- (6) results keyed by label: a rerun with other runs is refused unless --overwrite ------------------------


def _bench(protocol, budget, out_root: Path, **kwargs):
    return run_benchmark(protocol, ["grey"], budget, "smoke", out_root=out_root, results_md=None, fid=False,
                         **kwargs)


def test_results_record_their_runs_and_a_rerun_with_others_is_refused_before_training(
        folder: Path, tmp_path: Path, fake_training: list[int], caplog: pytest.LogCaptureFixture) -> None:
    (protocol,) = folder_protocols(folder, [1])
    out_root = tmp_path / "results"
    small = replace(get_budget("smoke"), train_images=4)
    _bench(protocol, small, out_root)
    results = out_root / protocol.name / "grey.json"
    identity = json.loads(results.read_text())["identity"]
    assert identity["budget"]["train_images"] == 4 and identity["image_size"] == 64
    assert set(identity) == {"budget", "preset", "image_size", "overrides", "batch_tag", "init"}

    _bench(protocol, small, out_root)  # the same command again: allowed (its runs are reused)
    runs_so_far = len(fake_training)

    bigger = replace(small, train_images=8)
    with pytest.raises(FileExistsError) as refused:
        _bench(protocol, bigger, out_root)
    message = str(refused.value)
    assert str(results) in message and "--overwrite" in message and "another -o" in message
    assert "budget.train_images 4 -> 8" in message and "\n" not in message
    assert len(fake_training) == runs_so_far  # refused before any training
    assert json.loads(results.read_text())["identity"]["budget"]["train_images"] == 4

    _bench(protocol, bigger, out_root, overwrite=True)
    assert json.loads(results.read_text())["identity"]["budget"]["train_images"] == 8

    # a results file written before identities were recorded: replaced, said at info level
    summary = json.loads(results.read_text())
    del summary["identity"]
    results.write_text(json.dumps(summary))
    with caplog.at_level(logging.INFO, logger="fewcolor.bench.runner"):
        _bench(protocol, small, out_root)
    assert "records no identity" in caplog.text


def test_bench_overwrite_flag_and_every_protocol_checked_up_front(folder: Path, tmp_path: Path,
                                                                   fake_training: list[int]) -> None:
    args = ["bench", "--data", str(folder), "--methods", "grey", "--size", "smoke", "--no-fid",
            "-o", str(tmp_path / "results"), "--results-md", str(tmp_path / "R.md")]
    first = CliRunner().invoke(main, [*args, "--shots", "2"])
    assert first.exit_code == 0, first.output
    started = len(fake_training)
    # K = 1 has no results yet, K = 2's come from another budget: refused before K = 1 trains
    refused = CliRunner().invoke(main, [*args, "--shots", "1,2", "--train-images", "8"])
    assert refused.exit_code == 1, refused.output
    error = [line for line in refused.output.splitlines() if line.startswith("Error")]
    assert len(error) == 1 and "folder-mine-k2/grey.json" in error[0] and "--overwrite" in error[0]
    assert len(fake_training) == started
    replaced = CliRunner().invoke(main, [*args, "--shots", "1,2", "--train-images", "8", "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    summary = json.loads((tmp_path / "results" / "folder-mine-k2" / "grey.json").read_text())
    assert summary["identity"]["budget"]["train_images"] == 8


# --- (8) the time left, from measured rates only -----------------------------------------------------------


def test_each_training_run_says_its_rate_and_the_training_time_left(
        folder: Path, tmp_path: Path, fake_training: list[int], caplog: pytest.LogCaptureFixture) -> None:
    (protocol,) = folder_protocols(folder, [1])
    budget = replace(get_budget("smoke"), train_images=8, batch_size=4)  # grey and lut: 2 steps a run
    with caplog.at_level(logging.INFO, logger="fewcolor.bench.runner"):
        run_benchmark(protocol, ["grey", "lut"], budget, "smoke", seeds=(0, 1, 2), out_root=tmp_path / "results",
                      results_md=None, fid=False)
    lines = [r.getMessage() for r in caplog.records if "per training step" in r.getMessage()]
    assert len(lines) == 6  # one per training run
    first = lines[0]
    assert first.startswith("grey seed0: 0.5 s per training step (measured over its 2 steps)")
    # 2 more grey runs × 2 steps × 0.5 s; lut has not run: no number for it
    assert "grey about 2 s (4 steps in 2 more run(s))" in first and "lut: unknown until its first run" in first
    assert "lut about 1 s (2 steps in 1 more run(s))" in lines[4] and "unknown" not in lines[4]
    assert lines[-1].endswith(f"no training left in {protocol.name}")


def test_a_run_without_recorded_time_gives_no_number() -> None:
    run = TrainedRun(method=None, steps=100, session_seconds=0.0, seconds_per_step=None, reused=True)
    line = time_left_line("p", "cgan", "seed0", run, runs_left=2, steps_left=200, later_methods=["lut"])
    assert "records no training time" in line and "cgan 200 steps in 2 more run(s), time unknown" in line
    assert "lut: unknown until its first run" in line
    assert not any(ch.isdigit() for ch in line.replace("seed0", "").replace("200 steps in 2 more", ""))


# --- (9) inference options: scored beside the plain results, on the same training ---------------------------


def test_inference_options_score_beside_the_plain_results_on_the_same_training(
        folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from fewcolor.pipeline import Colorizer

    given: list[dict] = []
    colorize = Colorizer.colorize

    def recording_colorize(self, image, **options):
        given.append(options)
        return colorize(self, image, **options)

    def evaluate_pairs(pairs, out_dir, config=None, total=None, extra_protocol=None, **kwargs):
        chroma = [float(pred.std()) for _, pred, _ in pairs]  # colours every query
        return {"per_image": [{"name": f"q{i}", "lpips": c} for i, c in enumerate(chroma)], "set": {}}

    monkeypatch.setattr(Colorizer, "colorize", recording_colorize)
    monkeypatch.setattr(evaluate_module, "evaluate_pairs", evaluate_pairs)
    out = tmp_path / "results"
    args = ["bench", "--data", str(folder), "--shots", "1", "--size", "smoke", "--methods", "cic@tiny", "--no-fid",
            "--train-images", "8", "--batch-size", "4", "--adapt-steps", "0", "-o", str(out),
            "--results-md", str(tmp_path / "R.md")]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    plain_count = len(given)
    assert plain_count > 0 and all(options == {} for options in given)
    with caplog.at_level(logging.INFO, logger="fewcolor.bench.runner"):
        second = CliRunner().invoke(main, [*args, "--chroma", "0.5"])
    assert second.exit_code == 0, second.output
    assert "reusing finished run" in caplog.text  # the options change no training
    assert given[plain_count:] == [{"chroma": 0.5}] * plain_count
    results = out / "folder-mine-k1"
    plain = json.loads((results / "cic@tiny.json").read_text())
    halved = json.loads((results / "cic@tiny[chroma=0.5].json").read_text())
    assert "options" not in plain["identity"] and halved["identity"]["options"] == {"chroma": "0.5"}
    assert halved["method"] == "cic@tiny[chroma=0.5]" and "cic@tiny[chroma=0.5]" in (tmp_path / "R.md").read_text()


def test_bench_refuses_bad_or_unused_options_before_any_work(folder: Path, tmp_path: Path) -> None:
    args = ["bench", "--data", str(folder), "--shots", "1", "--size", "smoke", "--no-fid",
            "-o", str(tmp_path / "results"), "--results-md", str(tmp_path / "R.md")]
    picture = next(folder.rglob("*.png"))
    for extra, words in ((["--methods", "grey,lut", "--temperature", "1"], ["--temperature", "grey, lut", "cic"]),
                         (["--methods", "cic", "--temperature", "nan"], ["--temperature", "finite"]),
                         (["--methods", "memopainter", "--palette", "zzz"], ["--palette", "zzz"]),
                         (["--methods", "memopainter", "--reference", str(picture)], ["--reference", "supports"]),
                         (["--methods", "memopainter", "--variants", "2"], ["--variants", "one colouring"])):
        res = CliRunner().invoke(main, [*args, *extra])
        error = [line for line in res.output.splitlines() if line.startswith("Error")]
        assert res.exit_code == 2 and len(error) == 1, res.output
        assert all(word in error[0] for word in words), error[0]
    assert not (tmp_path / "results").exists()  # refused before any work


def test_option_values_in_results_names(tmp_path: Path) -> None:
    from fewcolor.bench.runner import options_label

    a, b = tmp_path / "a" / "model.safetensors", tmp_path / "b" / "model.safetensors"
    for path, text in ((a, "one"), (b, "two")):
        path.parent.mkdir()
        path.write_text(text)
    assert options_label(None) == options_label({"chroma": None}) == ""
    assert options_label({"temperature": 1.0, "chroma": 0.5}) == "[chroma=0.5,temperature=1.0]"
    # two checkpoints of one file name stay apart; one file named two ways is one result
    assert options_label({"fallback": str(a)}) != options_label({"fallback": str(b)})
    assert options_label({"fallback": str(a)}).startswith("[fallback=model-")
    assert options_label({"fallback": str(a)}) == options_label({"fallback": str(a.parent / "." / a.name)})
    spaced = options_label({"palette": "#e03c31, #f7d842"})  # a space: not in a file name
    assert spaced.startswith("[palette=sha") and " " not in spaced
    assert options_label({"palette": "#e03c31,#f7d842"}) == "[palette=#e03c31,#f7d842]"
    with pytest.raises(TypeError, match="number or text"):
        options_label({"reference": torch.zeros(3, 4, 4)})


def test_run_benchmark_refuses_options_for_no_listed_method(folder: Path, tmp_path: Path) -> None:
    (protocol,) = folder_protocols(folder, [1])
    with pytest.raises(ValueError, match="cic@tiny: not a method name"):
        run_benchmark(protocol, ["cic@tiny"], get_budget("smoke"), "smoke", out_root=tmp_path / "results",
                      results_md=None, fid=False, options={"cic@tiny": {"chroma": 0.5}})
    assert not (tmp_path / "results").exists()
