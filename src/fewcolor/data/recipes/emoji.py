"""``emoji-xstyle``: the same emoji drawn by two vendors (Noto = google, Twemoji = twitter), 64².

From ``emoji-datasource-google@16.0.0`` and ``emoji-datasource-twitter@16.0.0``: the base emoji of
``package/emoji.json`` (skin-tone variations left out) whose 64 px PNG exists in both styles,
composited on white and written as ``<category-slug>/<vendor>/<image>.png`` (first-level folders
are the classes, as :class:`~fewcolor.data.folder.ImageFolderDataset` reads them); ``emoji.tsv`` keeps each
image's category, subcategory and name. Split by category: ``test`` = "Animals & Nature" and
"Food & Drink" (both styles), ``train`` = every other category (both styles).
"""

from __future__ import annotations

import json
import re

from fewcolor.data.recipes._common import BuildContext, PrepareError, Recipe, Splits
from fewcolor.data.recipes._sources import npm_tarball
from fewcolor.data.recipes._tar import iter_tar
from fewcolor.io.atomic import write_text_atomic
from fewcolor.io.image import read_rgb, write_rgb

NAME = "emoji-xstyle"
VERSION = "16.0.0"
VENDORS = ("google", "twitter")  # google = Noto (query style), twitter = Twemoji (support style)
SUPPORT_VENDOR, QUERY_VENDOR = "twitter", "google"
TEST_CATEGORIES = ("Animals & Nature", "Food & Drink")
SPLIT_NAMES = ("train", "test")
SMOKE_CATEGORIES, SMOKE_PER_CATEGORY = 2, 6  # per split


def slug(category: str) -> str:
    """``"Animals & Nature"`` → ``"animals-nature"``."""
    return re.sub(r"[^a-z0-9]+", "-", category.lower()).strip("-")


TEST_SLUGS = tuple(slug(c) for c in TEST_CATEGORIES)


def vendor_of(rel: str) -> str:
    """``animals-nature/google/1f400.png`` → ``google``."""
    return rel.split("/")[1]


def category_of(rel: str) -> str:
    """``animals-nature/google/1f400.png`` → ``animals-nature``."""
    return rel.split("/")[0]


def build(ctx: BuildContext) -> Splits:
    wanted = {p for paths in ctx.wanted.values() for p in paths} if ctx.smoke and ctx.wanted else None
    images: dict[str, dict[str, bytes]] = {}
    catalogue: list[dict[str, object]] | None = None
    for vendor in VENDORS:
        tarball = npm_tarball(f"emoji-datasource-{vendor}", VERSION, ctx.source, ctx.downloads)
        prefix = f"package/img/{vendor}/64/"
        images[vendor] = {}
        # keep every 64 px PNG (~12 MB) in memory: no reliance on emoji.json coming first
        for member, read in iter_tar(tarball, desc=f"{NAME}: {tarball.name}"):
            if member.startswith(prefix) and member.endswith(".png") and "/" not in member[len(prefix):]:
                images[vendor][member[len(prefix):]] = read()
            elif member == "package/emoji.json" and catalogue is None:
                catalogue = json.loads(read().decode("utf-8"))
    if catalogue is None:
        raise PrepareError(f"package/emoji.json is missing from the emoji-datasource-*@{VERSION} tarballs")

    produced: Splits = {s: [] for s in SPLIT_NAMES}
    rows = []
    for entry in sorted(catalogue, key=lambda e: str(e["image"])):
        image, category = str(entry["image"]), str(entry["category"])
        if not all(image in images[v] for v in VENDORS):
            continue
        split = "test" if category in TEST_CATEGORIES else "train"
        rels = [f"{slug(category)}/{v}/{image}" for v in VENDORS]
        if wanted is not None and not any(r in wanted for r in rels):
            continue
        rows.append(f"{image}\t{category}\t{entry.get('subcategory', '')}\t{entry.get('name', '')}\n")
        for vendor, rel in zip(VENDORS, rels, strict=True):
            path = ctx.out_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(images[vendor][image])
            write_rgb(path, read_rgb(path))  # RGBA composited on white, as an RGB PNG
            produced[split].append(rel)
    write_text_atomic(ctx.out_dir / "emoji.tsv", "image\tcategory\tsubcategory\tname\n" + "".join(rows))
    ctx.stats.update(emoji=len(rows), images=2 * len(rows),
                     catalogue_entries=len(catalogue), **{f"png_{v}": len(images[v]) for v in VENDORS})
    return {s: sorted(v) for s, v in produced.items()}


def smoke_subset(splits: Splits) -> Splits:
    out: Splits = {}
    for split, paths in splits.items():
        cats = sorted({category_of(p) for p in paths})[:SMOKE_CATEGORIES]
        keep: set[tuple[str, str]] = set()
        for c in cats:
            names = sorted({p.rsplit("/", 1)[1] for p in paths if category_of(p) == c})
            keep.update((c, n) for n in names[:SMOKE_PER_CATEGORY])
        out[split] = [p for p in paths if (category_of(p), p.rsplit("/", 1)[1]) in keep]
    return out


def split_header(split: str) -> str:
    what = ("categories " + " and ".join(TEST_CATEGORIES)) if split == "test" else \
        "every category except " + " and ".join(TEST_CATEGORIES)
    return (f"{NAME} {split}: {what}, both styles (emoji-datasource-google/twitter@{VERSION}, 64 px, "
            "on white).\nOnly base emoji present in both styles. Paths are relative to the prepared folder.")


RECIPE = Recipe(NAME, "Noto vs Twemoji emoji, test on Animals & Nature and Food & Drink", SPLIT_NAMES, build,
                smoke_subset, split_header)
