"""Dataset recipes: ``fewcolor data prepare NAME`` turns a public archive into a cached image folder.

Every recipe writes into ``$FEWCOLOR_HOME/datasets/<name>`` (default ``~/.cache/fewcolor``), never into
the repository; its split files are committed in ``fewcolor/data/splits/<name>/`` and a prepared folder
must reproduce them exactly (:class:`PrepareError` otherwise). ``smoke=True`` prepares a tiny prefix of
the splits into ``<name>-smoke`` for end-to-end CI runs. See docs/DATASETS.md for each dataset.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from fewcolor.data.recipes import emoji, flowers, pokemon, tinyimagenet
from fewcolor.data.recipes._common import (
    DONE_MARKER,
    RECIPE_FORMAT,
    SPLITS_DIR,
    BuildContext,
    PrepareError,
    Recipe,
    Splits,
    cache_root,
    check_against_splits,
    committed_splits,
    dataset_dir,
    read_done,
    splits_digest,
    write_done,
)
from fewcolor.data.splits import write_split

__all__ = [
    "DONE_MARKER",
    "RECIPES",
    "PrepareError",
    "cache_root",
    "dataset_dir",
    "get_recipe",
    "is_prepared",
    "prepare",
    "read_done",
    "recipe_splits",
]

RECIPES: dict[str, Recipe] = {
    r.name: r for r in (tinyimagenet.RECIPE, pokemon.RECIPE, flowers.RECIPE, emoji.RECIPE)
}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(RECIPES))}")
    return RECIPES[name]


def recipe_splits(name: str, smoke: bool = False) -> Splits:
    """The committed splits of ``name`` (their smoke prefix when ``smoke``): relative paths per split."""
    recipe = get_recipe(name)
    splits = committed_splits(name, recipe.split_names)
    return recipe.smoke_subset(splits) if smoke else splits


def is_prepared(name: str, smoke: bool = False, cache_dir: str | os.PathLike[str] | None = None) -> bool:
    """True when the cached folder is complete and was made from the current committed splits."""
    done = read_done(dataset_dir(name, smoke, cache_dir))
    return (done is not None and done.get("format") == RECIPE_FORMAT
            and done.get("splits_sha256") == splits_digest(recipe_splits(name, smoke)))


def prepare(
    name: str,
    cache_dir: str | os.PathLike[str] | None = None,
    source: str | os.PathLike[str] | None = None,
    force: bool = False,
    smoke: bool = False,
    write_splits: bool = False,
) -> Path:
    """Prepare dataset ``name`` in the cache and return its folder (idempotent: a complete folder, marked
    by ``.done.json`` with the digest of the committed splits, is returned untouched unless ``force``).

    ``source``: the archive (or a folder holding it) when it is not at its default place.
    ``write_splits`` (maintainers): build from the whole archive, then (re)write the committed split files
    in ``fewcolor/data/splits/<name>/`` from what was produced, deterministically.
    """
    recipe = get_recipe(name)
    if write_splits and smoke:
        raise ValueError("write_splits=True needs the full dataset; drop smoke=True")
    out_dir = dataset_dir(name, smoke, cache_dir)
    wanted = None if write_splits else recipe_splits(name, smoke)
    if not (force or write_splits) and is_prepared(name, smoke, cache_dir):
        return out_dir
    # build beside the target and swap it in at the end: a failed or interrupted build (missing source,
    # mismatching archive) leaves any previous folder as it was
    work = out_dir.with_name(out_dir.name + ".partial")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    ctx = BuildContext(name=name, out_dir=work, downloads=cache_root(cache_dir) / "downloads",
                       source=Path(source).expanduser() if source is not None else None,
                       wanted=wanted, smoke=smoke)
    start = time.perf_counter()
    produced = recipe.build(ctx)
    if wanted is None:
        for split, paths in produced.items():
            write_split(SPLITS_DIR / name / f"{split}.txt", paths, header=recipe.split_header(split))
        wanted = committed_splits(name, recipe.split_names)
    check_against_splits(name, work, produced, wanted)
    write_done(work, {
        "name": name, "smoke": smoke, "format": RECIPE_FORMAT, "splits_sha256": splits_digest(wanted),
        "counts": {split: len(paths) for split, paths in wanted.items()}, "stats": ctx.stats,
        "seconds": round(time.perf_counter() - start, 1),
    })
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(work, out_dir)
    return out_dir
