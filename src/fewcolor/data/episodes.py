"""Few-shot episodes and training sets of the benchmark datasets (the protocols of docs/DATASETS.md).

An :class:`Episode` is one test task: a few colour ``support`` images of one class (the reference a
method may adapt to or retrieve from) and ``queries`` of the same class to colourise from their
lightness alone, scored against ``truth`` (the queries' own colours unless ``query_truth`` says
otherwise). :func:`train_split` gives the one training set every method of a protocol trains on,
class-disjoint from the episodes' classes. Everything is a pure function of the committed split files
and the seed, so two runs (or two methods) see exactly the same tasks.

Support sets are nested: the K = 1 support is the first image of the K = 5 one, which is the first five
of the K = 10 one, so results across K differ by the added images only.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path

from fewcolor.data.recipes import dataset_dir, get_recipe, is_prepared, recipe_splits
from fewcolor.data.recipes import emoji as emoji_recipe
from fewcolor.data.recipes import flowers as flowers_recipe
from fewcolor.data.recipes import pokemon as pokemon_recipe
from fewcolor.data.recipes import tinyimagenet as tiny_recipe

__all__ = ["SHOTS", "Episode", "TrainSplit", "episodes", "train_paths", "train_split"]

# The support sizes each protocol reports (issue 7); other K are allowed where the data has them.
SHOTS: dict[str, tuple[int, ...]] = {
    "tinyimagenet-fs": (1, 5, 10),
    "pokemon-frames": (1,),
    "flowers12": (1, 5),
    "emoji-xstyle": (1,),
}
FOLDS: dict[str, int] = {"flowers12": flowers_recipe.N_FOLDS}

CacheDir = str | os.PathLike[str] | None


@dataclass(frozen=True)
class Episode:
    """One few-shot task. Paths are absolute (inside the prepared dataset folder).

    ``query_truth`` is ``None`` when each query is its own ground truth (a method sees only its
    lightness); otherwise it lists the colour image each query is scored against.
    """

    name: str
    support: list[Path]
    queries: list[Path]
    query_truth: list[Path] | None
    label: str
    meta: dict[str, object] = field(default_factory=dict)

    @property
    def truth(self) -> list[Path]:
        """The colour image each query is scored against."""
        return self.query_truth if self.query_truth is not None else self.queries


@dataclass(frozen=True)
class TrainSplit:
    """The training images of a protocol.

    ``root`` is chosen so that the first folder of every ``rel_paths`` entry is its class, as
    ``ImageFolderDataset(root, paths=rel_paths)`` reads labels; ``labels[i]`` indexes ``classes``
    (the training classes only, sorted).
    """

    root: Path
    rel_paths: list[str]
    labels: list[int]
    classes: list[str]

    @property
    def paths(self) -> list[Path]:
        return [self.root / p for p in self.rel_paths]


def _prepared(name: str, smoke: bool, cache_dir: CacheDir) -> Path:
    get_recipe(name)  # unknown names fail with the list of known ones
    if not is_prepared(name, smoke, cache_dir):
        flag = " --smoke" if smoke else ""
        raise FileNotFoundError(
            f"dataset {name!r} is not prepared in {dataset_dir(name, smoke, cache_dir)}: "
            f"run `fewcolor data prepare {name}{flag}` first"
        )
    return dataset_dir(name, smoke, cache_dir)


def _nested_choice(paths: list[str], k: int, seed: int, key: str) -> list[str]:
    """``k`` of ``paths``: a seeded shuffle of the sorted list (one generator per class, so adding a
    class changes no other class's support), cut to its first ``k``."""
    if k < 1:
        raise ValueError(f"k_shot must be at least 1, got {k}")
    if k > len(paths):
        raise ValueError(f"{key}: k_shot={k} but only {len(paths)} support candidates")
    order = sorted(paths)
    random.Random(f"{seed}:{key}").shuffle(order)
    return order[:k]


def _check(name: str, k_shot: int, fold: int | None, control: bool) -> None:
    if fold is not None and name not in FOLDS:
        raise ValueError(f"{name} has no folds; leave fold=None")
    if name in FOLDS and fold is None:
        raise ValueError(f"{name} needs fold= one of 0..{FOLDS[name] - 1}")
    if control and name != "pokemon-frames":
        raise ValueError(f"control episodes exist for pokemon-frames only, not {name}")
    if name in ("pokemon-frames", "emoji-xstyle") and k_shot != 1:
        raise ValueError(f"{name} is one-shot: k_shot must be 1, got {k_shot}")


def episodes(
    dataset_name: str,
    k_shot: int,
    fold: int | None = None,
    seed: int = 0,
    control: bool = False,
    split: str = "test",
    smoke: bool = False,
    cache_dir: CacheDir = None,
) -> list[Episode]:
    """The test episodes of a protocol, one per test class (per emoji for ``emoji-xstyle``), sorted.

    * ``tinyimagenet-fs``: per meta-test class, ``k_shot`` seeded images of its train folder as support,
      its non-grey val images as queries; ``split="val"`` gives the meta-val classes instead.
    * ``pokemon-frames`` (one-shot): per test species, front frame 0 as support, 8 more front frames and
      4 back frames as queries; ``control=True``: the same from the shiny GIFs.
    * ``flowers12`` (``fold`` 0–2): per held-out species, ``k_shot`` seeded train images, its 20 test images.
    * ``emoji-xstyle`` (one-shot): per test emoji, the Twemoji image as support, the Noto image as query.
    """
    _check(dataset_name, k_shot, fold, control)
    root = _prepared(dataset_name, smoke, cache_dir)
    splits = recipe_splits(dataset_name, smoke)
    tag = f"k{k_shot}-seed{seed}" + (f"-fold{fold}" if fold is not None else "")
    out: list[Episode] = []
    if dataset_name == "tinyimagenet-fs":
        if split not in ("test", "val"):
            raise ValueError(f"tinyimagenet-fs episodes: split must be 'test' or 'val', got {split!r}")
        files = splits["meta_test" if split == "test" else "meta_val"]
        for wnid in sorted({tiny_recipe.class_of(p) for p in files}):
            train = [p for p in files if p.startswith(f"train/{wnid}/")]
            queries = sorted(p for p in files if p.startswith(f"val/{wnid}/"))
            support = _nested_choice(train, k_shot, seed, wnid)
            out.append(Episode(f"{dataset_name}/{wnid}/{tag}", [root / p for p in support],
                               [root / p for p in queries], None, wnid, {"split": split, "k_shot": k_shot}))
    elif dataset_name == "pokemon-frames":
        files = splits["control" if control else "test"]
        for dex in sorted({pokemon_recipe.species_of(p) for p in files}):
            mine = sorted(p for p in files if pokemon_recipe.species_of(p) == dex)
            support = [p for p in mine if p.endswith("/front_000.png")]
            queries = [p for p in mine if p not in support]
            variant = "shiny" if control else "normal"
            out.append(Episode(f"{dataset_name}/{variant}/{dex}", [root / p for p in support],
                               [root / p for p in queries], None, dex,
                               {"variant": variant, "k_shot": 1, "control": control}))
    elif dataset_name == "flowers12":
        assert fold is not None  # checked above
        species = sorted({flowers_recipe.species_of(p) for p in splits["train"]})
        _, held_out = flowers_recipe.fold_species(species, fold)
        for s in held_out:
            train = [p for p in splits["train"] if flowers_recipe.species_of(p) == s]
            queries = sorted(p for p in splits["test"] if flowers_recipe.species_of(p) == s)
            support = _nested_choice(train, k_shot, seed, s)
            out.append(Episode(f"{dataset_name}/{s}/{tag}", [root / p for p in support],
                               [root / p for p in queries], None, s, {"fold": fold, "k_shot": k_shot}))
    elif dataset_name == "emoji-xstyle":
        info = _emoji_info(root)
        test_files = set(splits["test"])
        for rel in sorted(p for p in test_files if emoji_recipe.vendor_of(p) == emoji_recipe.QUERY_VENDOR):
            category, _, image = rel.split("/")
            support_rel = f"{category}/{emoji_recipe.SUPPORT_VENDOR}/{image}"
            stem = image.rsplit(".", 1)[0]
            meta: dict[str, object] = {"k_shot": 1, **info.get(image, {"category": category})}
            out.append(Episode(f"{dataset_name}/{stem}", [root / support_rel], [root / rel], None, stem, meta))
    return out


def _emoji_info(root: Path) -> dict[str, dict[str, object]]:
    rows = (root / "emoji.tsv").read_text(encoding="utf-8").splitlines()[1:]
    out: dict[str, dict[str, object]] = {}
    for row in rows:
        image, category, subcategory, name = [*row.split("\t"), "", "", ""][:4]
        out[image] = {"category": category, "subcategory": subcategory, "emoji_name": name}
    return out


def train_split(
    dataset_name: str, fold: int | None = None, smoke: bool = False, cache_dir: CacheDir = None
) -> TrainSplit:
    """The training set of a protocol (class-disjoint from its episodes):

    * ``tinyimagenet-fs``: the train-folder images of the 128 meta-train classes (root ``train/``);
    * ``pokemon-frames``: 12 frames of each of species 1–493, normal colours (root ``normal/``);
    * ``flowers12``: the train images of the 8 species not held out by ``fold`` (root ``train/``);
    * ``emoji-xstyle``: both styles of every non-test category (root: the dataset; class = category).
    """
    _check(dataset_name, 1, fold, False)
    root = _prepared(dataset_name, smoke, cache_dir)
    splits = recipe_splits(dataset_name, smoke)
    if dataset_name == "tinyimagenet-fs":
        sub, rel = "train", [p for p in splits["meta_train"] if p.startswith("train/")]
    elif dataset_name == "pokemon-frames":
        sub, rel = "normal", splits["train"]
    elif dataset_name == "flowers12":
        assert fold is not None  # checked above
        species = sorted({flowers_recipe.species_of(p) for p in splits["train"]})
        keep, _ = flowers_recipe.fold_species(species, fold)
        sub, rel = "train", [p for p in splits["train"] if flowers_recipe.species_of(p) in keep]
    else:
        sub, rel = "", splits["train"]
    if sub:
        rel = [p[len(sub) + 1:] for p in rel]
    classes = sorted({p.split("/")[0] for p in rel})
    index = {c: i for i, c in enumerate(classes)}
    rel = sorted(rel)
    return TrainSplit(root / sub if sub else root, rel, [index[p.split("/")[0]] for p in rel], classes)


def train_paths(
    dataset_name: str, fold: int | None = None, smoke: bool = False, cache_dir: CacheDir = None
) -> list[Path]:
    """Absolute paths of :func:`train_split`'s images."""
    return train_split(dataset_name, fold, smoke, cache_dir).paths
