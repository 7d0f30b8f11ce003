"""Benchmark runner pieces that the smoke runs may not reach."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fewcolor.bench.runner import _paths_dataset


def test_a_grey_looking_support_image_is_kept_but_a_training_split_skips_it(tmp_path) -> None:
    # a black-and-white sprite on white (Pokémon 522, Blitzle, made the pokemon-frames benchmark fail)
    rgb = np.full((24, 24, 3), 255, np.uint8)
    rgb[6:18, 6:18] = 40
    path = tmp_path / "0522" / "front_000.png"
    path.parent.mkdir()
    Image.fromarray(rgb).save(path)
    support = _paths_dataset([path], 16, seed=0, skip_grey=False)
    assert len(support) == 1 and support[0]["l"].shape[-2:] == (16, 16)
    with pytest.raises(ValueError, match="grey"):
        _paths_dataset([path], 16, seed=0, skip_grey=True)


def test_the_recorded_commit_is_dirty_for_code_edits_not_for_docs(tmp_path) -> None:
    import shutil
    import subprocess

    from fewcolor.bench.provenance import git_commit as _git_commit

    if shutil.which("git") is None:
        pytest.skip("git is not installed")

    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    (tmp_path / "docs").mkdir()
    (tmp_path / "src").mkdir()
    (tmp_path / "docs" / "RESULTS.md").write_text("# Results\n")
    (tmp_path / "src" / "code.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "start")
    clean = _git_commit(tmp_path / "src")
    assert clean and "+dirty" not in clean and clean != "unknown"
    (tmp_path / "docs" / "RESULTS.md").write_text("# Results\n\na table\n")
    assert _git_commit(tmp_path / "src") == clean  # the benchmark's own table does not count
    (tmp_path / "src" / "code.py").write_text("x = 2\n")
    assert _git_commit(tmp_path / "src") == clean + "+dirty"
    assert _git_commit(tmp_path.parent / "no-such-dir") == "unknown"


@pytest.mark.weights
def test_bench_init_labels_only_initialised_methods_and_finds_runs_under_their_init_folders(
        emoji_dir, tmp_path, lpips_weights) -> None:
    """``bench --init``: the label gets "+init" only where the checkpoint loaded; run folders are
    ``<method>-<preset>-<train images>-init<sha256[:8]>/seed0`` and a second run reuses them."""
    import hashlib
    import json
    import shutil

    from click.testing import CliRunner

    from fewcolor.cli import main
    from fewcolor.methods.registry import build_method, save_method

    data = tmp_path / "emoji2"
    for cls in ("heart", "plant-flower"):
        shutil.copytree(emoji_dir / cls, data / cls)
    init = tmp_path / "unet-start.safetensors"  # a unet checkpoint: it initialises unet, not lut
    save_method(build_method("unet", "tiny", {"image_size": 32}), init)
    digest = hashlib.sha256(init.read_bytes()).hexdigest()[:8]
    results = tmp_path / "results"
    args = ["bench", "--data", str(data), "--shots", "1", "--methods", "unet,lut", "--preset", "tiny",
            "--image-size", "32", "--init", str(init), "--size", "smoke", "--no-fid", "-o", str(results),
            "--results-md", str(tmp_path / "R.md")]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    out = results / "folder-emoji2-k1-32px"  # --image-size 32: not the default 64, so in the name
    assert sorted(p.name for p in out.glob("*.json")) == ["lut.json", "unet+init.json"]
    assert json.loads((out / "unet+init.json").read_text())["method"] == "unet+init"
    assert json.loads((out / "lut.json").read_text())["method"] == "lut"
    assert (out / "unet+init" / "seed0" / "metrics.json").is_file() and (out / "lut" / "seed0").is_dir()
    (dataset,) = (results / "runs").iterdir()  # smoke budget: 16 training images
    assert sorted(p.name for p in dataset.iterdir()) == [f"lut-tiny-16-init{digest}", f"unet-tiny-16-init{digest}"]
    model = dataset / f"unet-tiny-16-init{digest}" / "seed0" / "model.safetensors"
    written = model.stat().st_mtime_ns
    second = CliRunner().invoke(main, args)
    assert second.exit_code == 0, second.output
    assert model.stat().st_mtime_ns == written  # the finished run was found and reused, not trained again


def test_the_plan_is_said_up_front() -> None:
    from fewcolor.bench.protocols import PROTOCOLS, SIZES
    from fewcolor.bench.runner import plan_line

    flowers = PROTOCOLS["flowers12-k5"]
    line = plan_line(flowers, ["cgan", "lut"], SIZES["cpu"], [0, 1])
    assert f"2 method(s) × 2 seed(s) × {len(flowers.folds)} folds = {4 * len(flowers.folds)} training run(s)" in line
    assert f"{SIZES['cpu'].train_images:,} image-gradients" in line and "reused" in line
    one = plan_line(PROTOCOLS["pokemon-frames"], ["unet"], SIZES["cpu"], [0])
    assert "folds" not in one and "= 1 training run(s)" in one


def test_an_interrupted_benchmark_says_to_rerun_the_same_command_not_to_add_resume(
        emoji_dir, tmp_path, monkeypatch) -> None:
    """``bench`` has no ``--resume``: it resumes interrupted runs by itself, and its message says so."""
    import shutil
    import signal

    from click.testing import CliRunner

    import fewcolor.train.loop as loop
    from fewcolor.cli import main

    def interrupted(method, dataset, opts):  # what SIGTERM during training raises, after saving
        raise loop.TrainingInterrupted(3, opts.out_dir / "checkpoints" / "last.safetensors", signal.SIGTERM)

    monkeypatch.setattr(loop, "train", interrupted)
    data = tmp_path / "emoji1"
    shutil.copytree(emoji_dir / "heart", data / "heart")
    args = ["bench", "--data", str(data), "--shots", "1", "--methods", "unet", "--preset", "tiny",
            "--image-size", "32", "--size", "smoke", "--no-fid", "-o", str(tmp_path / "results"),
            "--results-md", str(tmp_path / "R.md")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 128 + signal.SIGTERM, result.output
    assert "interrupted by SIGTERM at step 3" in result.output
    assert "run the same command again" in result.output and "--resume" not in result.output


def test_the_run_seed_reaches_the_methods_own_seed_unless_set_explicitly(tmp_path) -> None:
    # --seed / bench --seeds must vary the method's own random choices (cGAN's GP ε, MetalGAN's K-means and task
    # batches, MemoPainter's memory...), not only the initial weights; `--set M.seed=N` still wins
    import json

    from click.testing import CliRunner

    from fewcolor.bench.runner import _build
    from fewcolor.cli import main
    from fewcolor.methods.registry import with_run_seed

    assert _build("cgan", "tiny", 32, 3)[0].config.seed == 3
    assert _build("cgan", "tiny", 32, 3, {"seed": 7})[0].config.seed == 7
    assert _build("memopainter", "tiny", 32, 0)[0].config.seed == 0  # seed 0: the runs recorded before the fix
    assert with_run_seed("cgan", {"lambda_gp": 1.0}, 5) == {"lambda_gp": 1.0, "seed": 5}
    emoji = Path(__file__).parent / "fixtures" / "emoji"
    res = CliRunner().invoke(main, ["train", "--method", "cgan", "--preset", "tiny", "--data", str(emoji), "-o",
                                    str(tmp_path / "run"), "--steps", "1", "--seed", "5"])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "run" / "run.json").read_text())["config"]["seed"] == 5
