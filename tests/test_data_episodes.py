"""Few-shot episodes and training sets over the (smoke-)prepared benchmark datasets."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from fewcolor.color.lab import rgb_to_lab
from fewcolor.data.episodes import SHOTS, episodes, train_paths, train_split
from fewcolor.data.recipes import prepare
from fewcolor.io.image import read_rgb
from test_data_recipes import _fake_tiny  # a tinyimagenet-fs100.tar.gz look-alike holding the smoke files


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("tiny")
    _fake_tiny(tmp / "tinyimagenet-fs100.tar.gz")
    prepare("tinyimagenet-fs", cache_dir=tmp / "cache", source=tmp / "tinyimagenet-fs100.tar.gz", smoke=True)
    return tmp / "cache"


@pytest.fixture(scope="module")
def flowers_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "flowers12.tar.gz"
    if not shared.is_file():
        pytest.skip(f"{shared} is absent")
    cache = tmp_path_factory.mktemp("flowers")
    prepare("flowers12", cache_dir=cache, smoke=True)
    return cache


def _npm_cache(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed (the Pokémon and emoji recipes run `npm pack`)")
    # the session's FEWCOLOR_HOME of tests/conftest.py (module fixtures run before its autouse monkeypatch,
    # so name it): shares the npm download and the smoke folder with test_data_recipes.py
    cache = tmp_path_factory.getbasetemp() / "fewcolor_home"
    prepare(name, smoke=True, cache_dir=cache)
    return cache


@pytest.fixture(scope="module")
def pokemon_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _npm_cache(tmp_path_factory, "pokemon-frames")


@pytest.fixture(scope="module")
def emoji_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _npm_cache(tmp_path_factory, "emoji-xstyle")


def _class_dir(path: Path) -> str:
    return path.parent.name


# ------------------------------------------------------------------------------------ tinyimagenet


@pytest.mark.parametrize("k", SHOTS["tinyimagenet-fs"])
def test_tinyimagenet_episodes_k_support_from_train_val_queries(tiny_cache: Path, k: int) -> None:
    eps = episodes("tinyimagenet-fs", k, smoke=True, cache_dir=tiny_cache)
    assert len(eps) == 2  # the two smoke meta-test classes
    for ep in eps:
        assert len(ep.support) == k and len(set(ep.support)) == k
        assert all(p.parent.parent.name == "train" and _class_dir(p) == ep.label for p in ep.support)
        assert len(ep.queries) == 10 and all(p.parent.parent.name == "val" for p in ep.queries)
        assert ep.truth == ep.queries and all(p.is_file() for p in ep.support + ep.queries)


def test_tinyimagenet_train_set_is_class_disjoint_from_episodes(tiny_cache: Path) -> None:
    train = train_split("tinyimagenet-fs", smoke=True, cache_dir=tiny_cache)
    assert len(train.classes) == 4 and len(train.rel_paths) == 40
    assert [train.classes[i] for i in train.labels] == [p.split("/")[0] for p in train.rel_paths]
    assert all(p.is_file() and p.parent.parent.name == "train" for p in train.paths)
    test_classes = {ep.label for ep in episodes("tinyimagenet-fs", 1, smoke=True, cache_dir=tiny_cache)}
    val_classes = {ep.label for ep in episodes("tinyimagenet-fs", 1, split="val", smoke=True,
                                               cache_dir=tiny_cache)}
    assert not set(train.classes) & test_classes and not set(train.classes) & val_classes
    assert not test_classes & val_classes
    assert train_paths("tinyimagenet-fs", smoke=True, cache_dir=tiny_cache) == train.paths


def test_episodes_are_deterministic_nested_and_seeded(tiny_cache: Path) -> None:
    def supports(k: int, seed: int) -> list[list[Path]]:
        return [ep.support for ep in episodes("tinyimagenet-fs", k, seed=seed, smoke=True, cache_dir=tiny_cache)]

    assert supports(5, 0) == supports(5, 0)
    assert supports(5, 0) != supports(5, 1)
    for s1, s5, s10 in zip(supports(1, 0), supports(5, 0), supports(10, 0), strict=True):
        assert s5[:1] == s1 and s10[:5] == s5  # nested support sets


def test_episode_argument_errors(tiny_cache: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="fewcolor data prepare tinyimagenet-fs --smoke"):
        episodes("tinyimagenet-fs", 1, smoke=True, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="k_shot=11"):
        episodes("tinyimagenet-fs", 11, smoke=True, cache_dir=tiny_cache)
    with pytest.raises(ValueError, match="control"):
        episodes("tinyimagenet-fs", 1, control=True, smoke=True, cache_dir=tiny_cache)
    with pytest.raises(ValueError, match="no folds"):
        episodes("tinyimagenet-fs", 1, fold=0, smoke=True, cache_dir=tiny_cache)
    with pytest.raises(ValueError, match="one-shot"):
        episodes("pokemon-frames", 5)
    with pytest.raises(ValueError, match="fold"):
        episodes("flowers12", 1)
    with pytest.raises(KeyError, match="known"):
        episodes("imagenet", 1)


# --------------------------------------------------------------------------------------- flowers


def test_flowers_folds_hold_out_disjoint_species(flowers_cache: Path) -> None:
    held_all = []
    for fold in range(3):
        eps = episodes("flowers12", 5, fold=fold, smoke=True, cache_dir=flowers_cache)
        train = train_split("flowers12", fold=fold, smoke=True, cache_dir=flowers_cache)
        held = {ep.label for ep in eps}
        held_all += sorted(held)
        assert held and not held & set(train.classes)
        for ep in eps:
            assert len(ep.support) == 5 and all(p.parent.parent.name == "train" for p in ep.support)
            assert len(ep.queries) == 4 and all(p.parent.parent.name == "test" for p in ep.queries)
    assert len(held_all) == len(set(held_all)) == 4  # smoke: 4 species, each held out once


# --------------------------------------------------------------------------------------- pokemon


@pytest.mark.slow
def test_pokemon_one_shot_episodes_and_shiny_control(pokemon_cache: Path) -> None:
    normal = episodes("pokemon-frames", 1, smoke=True, cache_dir=pokemon_cache)
    shiny = episodes("pokemon-frames", 1, control=True, smoke=True, cache_dir=pokemon_cache)
    assert [e.label for e in normal] == [e.label for e in shiny] == ["0494", "0495"]
    train = train_split("pokemon-frames", smoke=True, cache_dir=pokemon_cache)
    assert train.classes == ["0001", "0002"] and len(train.rel_paths) == 24
    for n, s in zip(normal, shiny, strict=True):
        assert [p.name for p in n.support] == ["front_000.png"]
        assert len(n.queries) == 12 and sum(p.name.startswith("back_") for p in n.queries) == 4
        assert "front_000.png" not in [p.name for p in n.queries]
        assert len(s.queries) == 12 and all("/shiny/" in p.as_posix() for p in s.support + s.queries)
        a, b = read_rgb(n.support[0]), read_rgb(s.support[0])
        lab_a, lab_b = rgb_to_lab(a[None]), rgb_to_lab(b[None])
        # same drawing (the lightness is close), other colours (the chroma differs clearly)
        colour_gap = (lab_a[:, 1:] - lab_b[:, 1:]).abs().mean()
        light_gap = (lab_a[:, :1] - lab_b[:, :1]).abs().mean()
        assert colour_gap > 1.0 and colour_gap > light_gap * 0.5
        assert torch.equal(torch.tensor(a.shape), torch.tensor(b.shape))


# ----------------------------------------------------------------------------------------- emoji


@pytest.mark.slow
def test_emoji_support_is_twemoji_query_is_noto(emoji_cache: Path) -> None:
    eps = episodes("emoji-xstyle", 1, smoke=True, cache_dir=emoji_cache)
    train = train_split("emoji-xstyle", smoke=True, cache_dir=emoji_cache)
    assert len(eps) == 12  # 2 test categories x 6 emoji
    for ep in eps:
        (support,), (query,) = ep.support, ep.queries
        assert support.parent.name == "twitter" and query.parent.name == "google"
        assert support.name == query.name and ep.meta["category"] in ("Animals & Nature", "Food & Drink")
        assert read_rgb(query).shape == (3, 64, 64)
    assert not set(train.classes) & {"animals-nature", "food-drink"} and len(train.classes) == 2
