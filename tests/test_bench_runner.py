"""Benchmark runner pieces that the smoke runs may not reach."""

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
