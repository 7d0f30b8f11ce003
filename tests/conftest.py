"""Shared test fixtures. Tests that need ../shared data or weight packages skip with a reason."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
SHARED = Path(os.environ.get("FEWCOLOR_SHARED", REPO.parent / "shared"))  # override: worktrees elsewhere

# Two pytest-xdist workers on two cores: one thread each avoids oversubscription.
torch.set_num_threads(int(os.environ.get("FEWCOLOR_TEST_THREADS", "1")))


@pytest.fixture(scope="session")
def emoji_dir() -> Path:
    """The committed fixture: 30 Noto emoji, 6 subcategories × 5, 64×64 on white."""
    path = FIXTURES / "emoji"
    if not path.is_dir():
        pytest.skip("tests/fixtures/emoji is missing (build it with scripts/build_emoji_fixture.py)")
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent (real data and fixtures live beside the repo)")
    return SHARED


@pytest.fixture
def lpips_weights() -> None:
    """Skip (saying which package installs them) unless the LPIPS AlexNet weights are installed."""
    from fewcolor.backbones.weights import get_spec, missing_message, package_file

    for name in ("alexnet", "lpips_alex_lin"):
        if package_file(get_spec(name)) is None:
            pytest.skip(missing_message(get_spec(name)))


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # Keep tests from writing into a user's cache; converted weights are cached per session.
    home = tmp_path_factory.getbasetemp() / "fewcolor_home"
    monkeypatch.setenv("FEWCOLOR_HOME", str(home))
