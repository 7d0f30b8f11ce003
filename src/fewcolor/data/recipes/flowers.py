"""``flowers12``: 12 species of the Oxford 17-category flowers (224², 60 train + 20 test per species).

The archive's fixed train/test split is kept: ``train/<species>/<file>`` and ``test/<species>/<file>``
(JPEG bytes copied unchanged). Folds are defined on the sorted species names: fold ``f`` holds out
``species[f::3]`` (4 species) and trains on the other 8 (:func:`fold_species`).
"""

from __future__ import annotations

from fewcolor.data.grey import is_grey
from fewcolor.data.recipes._common import BuildContext, Recipe, Splits
from fewcolor.data.recipes._sources import shared_tarball
from fewcolor.data.recipes._tar import iter_tar
from fewcolor.io.image import read_rgb

NAME = "flowers12"
TARBALL = "flowers12.tar.gz"
SPLIT_NAMES = ("train", "test")
N_FOLDS = 3
SMOKE_SPECIES, SMOKE_TRAIN, SMOKE_TEST = 4, 6, 4


def species_of(rel: str) -> str:
    """``train/<species>/<file>`` → ``<species>``."""
    return rel.split("/")[1]


def fold_species(species: list[str], fold: int) -> tuple[list[str], list[str]]:
    """``(training species, held-out species)`` of ``fold``; held out: ``sorted(species)[fold::3]``."""
    if not 0 <= fold < N_FOLDS:
        raise ValueError(f"{NAME}: fold must be 0, 1 or 2, got {fold}")
    ordered = sorted(species)
    held = ordered[fold::N_FOLDS]
    return [s for s in ordered if s not in held], held


def build(ctx: BuildContext) -> Splits:
    tarball = shared_tarball(TARBALL, ctx.source)
    wanted = {p for paths in ctx.wanted.values() for p in paths} if ctx.smoke and ctx.wanted else None
    produced: Splits = {s: [] for s in SPLIT_NAMES}
    grey = 0
    for member, read in iter_tar(tarball, desc=f"{NAME}: {tarball.name}"):
        parts = member.split("/")
        if len(parts) != 4 or parts[0] != "flowers17-subset12" or parts[1] not in SPLIT_NAMES:
            continue
        rel = "/".join(parts[1:])
        if wanted is not None and rel not in wanted:
            continue
        path = ctx.out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(read())
        grey += bool(is_grey(read_rgb(path)))  # counted, not removed: the split is the dataset's own
        produced[parts[1]].append(rel)
    ctx.stats.update(images=sum(len(v) for v in produced.values()), grey_kept=grey,
                     species=len({species_of(p) for v in produced.values() for p in v}))
    return {s: sorted(v) for s, v in produced.items()}


def smoke_subset(splits: Splits) -> Splits:
    species = sorted({species_of(p) for p in splits["train"]})[:SMOKE_SPECIES]
    out: Splits = {}
    for split, per in (("train", SMOKE_TRAIN), ("test", SMOKE_TEST)):
        for s in species:
            out.setdefault(split, []).extend(sorted(q for q in splits[split] if species_of(q) == s)[:per])
    return {s: sorted(v) for s, v in out.items()}


def split_header(split: str) -> str:
    return (f"{NAME} {split}: the archive's fixed {split} split ({TARBALL}), all images kept.\n"
            "Fold f holds out sorted(species)[f::3]. Paths are relative to the prepared folder.")


RECIPE = Recipe(NAME, "Oxford flowers, 12 species, 3 folds of 4 held-out species", SPLIT_NAMES, build,
                smoke_subset, split_header)
