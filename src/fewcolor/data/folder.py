"""``ImageFolderDataset``: every image under a folder (or listed in a split file) as a colourisation sample.

Layout: ``root/<class>/.../<image>`` gives class labels (first-level subfolders, sorted, label = index);
images directly in ``root`` get label −1. On opening, every candidate file is read once to find
unreadable files (skipped, with a warning naming each) and grey images (skipped by default, counted
in ``num_grey``); that scan is cached under ``FEWCOLOR_HOME`` keyed by the folder and each file's size
and modification time, so re-opening a large folder only reads new or changed files.

A file that stops being readable after the scan (changed in place, deleted or moved while training runs)
is warned about once, by name, and never drawn again: its sample is replaced by that of the first
readable image of an order drawn with a generator seeded from ``(seed, epoch, index)``, so a given seed
and set of bad files give the same batches whichever failed first; only when no image can be read any
more does reading fail (one line). Per process: each DataLoader worker finds and warns on its own.

Memory stays bounded whatever the files hold: images above ``pixel_budget`` (default 4 megapixels,
far above any training crop) are reduced on decode, and strips whose longer side is more than
``MAX_ASPECT`` times the shorter are skipped like unreadable files (resizing the shorter side to the
crop would turn a 1×200000 strip into a 64×12800000 image at a 64-pixel crop).

A sample is the dict fixed in docs/ARCHITECTURE.md::

    {"rgb": (3,H,W) in [0,1], "l": (1,H,W) L/50−1, "ab": (2,H,W) ab/110,
     "label": int (−1 if none), "index": int, "path": str relative to root}
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, default_collate
from tqdm.auto import tqdm

from fewcolor.color.lab import rgb_to_lab
from fewcolor.color.normalize import normalize_ab, normalize_l
from fewcolor.data.cache import load_scan_cache, save_scan_cache
from fewcolor.data.grey import is_grey
from fewcolor.data.splits import read_split, validate_split_path
from fewcolor.data.transforms import generator_for, split_deterministic
from fewcolor.io.image import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, ImageReadError, list_images, read_rgb

__all__ = ["CACHE_BYTES", "GREY_SKIPPED", "MAX_ASPECT", "TRAIN_PIXEL_BUDGET", "ImageFolderDataset", "scan_images",
           "shape_problem"]

#: images above this many pixels are reduced on decode (2000×2000: far above any training crop)
TRAIN_PIXEL_BUDGET = 4_000_000
#: default memory budget of ``ImageFolderDataset(cache=True)`` (2 GiB: about 40,000 images of 64×64 in float32)
CACHE_BYTES = 2 * 2**30
#: longer side / shorter side above this is skipped (memory grows with the strip's length)
MAX_ASPECT = 20.0
#: unreadable files in a row, while replacing one, after which reading gives up: a folder that went away
#: would otherwise be tried file by file, each failure rewriting the scan cache
MAX_FAILED_IN_A_ROW = 16
#: why a grey-looking image is skipped, as the log and the empty-folder error say it (``fewcolor adapt`` too)
GREY_SKIPPED = "skipped: grey images carry no colour to learn from"

log = logging.getLogger(__name__)

# Below this many files to (re)read, a progress bar would only flicker.
_PROGRESS_MIN_FILES = 64

Sample = dict[str, Any]


def scan_images(
    root: Path,
    rel_paths: Sequence[str],
    background: Sequence[float] = (1.0, 1.0, 1.0),
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    use_cache: bool = True,
    pixel_budget: int | None = TRAIN_PIXEL_BUDGET,
) -> dict[str, dict[str, Any]]:
    """Status of each file: ``{"status": "ok" | "grey" | "bad", "reason", "height", "width", ...}``.

    Files whose (size, mtime) match the cache are not read again. Sizes are those decoded within
    ``pixel_budget``; :func:`shape_problem` turns unusable shapes into ``bad`` (not cached as such).
    """
    settings = _scan_settings(background, max_pixels, pixel_budget)
    cached = load_scan_cache(root, settings) if use_cache else {}
    result: dict[str, dict[str, Any]] = {}
    todo: list[tuple[str, int, int]] = []
    for rel in rel_paths:
        try:
            st = (root / rel).stat()
        except OSError as exc:
            result[rel] = {"status": "bad", "reason": f"cannot stat: {exc.strerror or exc}"}
            continue
        known = cached.get(rel)
        if known and known.get("size") == st.st_size and known.get("mtime_ns") == st.st_mtime_ns:
            result[rel] = known
        else:
            todo.append((rel, st.st_size, st.st_mtime_ns))
    fresh: dict[str, dict[str, Any]] = {}
    bar = tqdm(todo, desc=f"scanning {root.name}", unit="img", disable=len(todo) < _PROGRESS_MIN_FILES,
               leave=False)
    for rel, size, mtime_ns in bar:
        entry: dict[str, Any] = {"size": size, "mtime_ns": mtime_ns}
        try:
            rgb = read_rgb(root / rel, background=background, max_pixels=max_pixels, pixel_budget=pixel_budget)
        except ImageReadError as exc:  # the reason without the path (the scan is cached by resolved root)
            entry.update(status="bad", reason=str(exc).removeprefix(f"{root / rel}: "))
        else:
            entry.update(status="grey" if is_grey(rgb) else "ok", height=int(rgb.shape[1]),
                         width=int(rgb.shape[2]))
        fresh[rel] = entry
        result[rel] = entry
    if fresh and use_cache:
        save_scan_cache(root, settings, fresh)
    for rel, entry in result.items():
        problem = shape_problem(entry.get("height"), entry.get("width")) if entry["status"] != "bad" else None
        if problem:
            result[rel] = {**entry, "status": "bad", "reason": problem}
    return result


def _scan_settings(background: Sequence[float], max_pixels: int | None,
                   pixel_budget: int | None) -> dict[str, Any]:
    """What a scan's results depend on besides the files (the key of its cache)."""
    return {"background": [float(b) for b in background], "max_pixels": max_pixels, "pixel_budget": pixel_budget}


def shape_problem(height: int | None, width: int | None) -> str | None:
    """Why an image of this decoded size cannot be trained on, or ``None`` when it can."""
    if height is None or width is None:
        return None
    short, long = max(1, min(height, width)), max(height, width)
    if long > MAX_ASPECT * short:
        return (f"{width}x{height} is a strip (sides {long / short:.0f}:1, more than {MAX_ASPECT:.0f}:1); "
                "crop it into pieces to use it")
    return None


class ImageFolderDataset(Dataset):
    """Colour images under ``root`` as dict samples (see the module docstring).

    Args:
        root: the dataset folder.
        split_file: a split file (:mod:`fewcolor.data.splits`) listing the images to use, relative to root.
        paths: the same as a list (give at most one of ``split_file`` / ``paths``); default: every image
            under ``root`` (recursive, hidden files skipped).
        transform: applied to the decoded RGB before Lab conversion. A transform whose ``random``
            attribute is true (the :mod:`fewcolor.data.transforms` ones) is called as
            ``transform(rgb, generator_for(seed, epoch, index))``, so a sample is a function of those
            three; any other callable is called as ``transform(rgb)``.
        skip_grey: drop images that :func:`~fewcolor.data.grey.is_grey` calls grey (counted in ``num_grey``,
            named in ``grey_files``); ``skip_grey=False`` keeps them. A folder left with no image raises
            ``ValueError`` whose message is for a command-line user (grey images carry no colour to learn
            from: give colour images), so it does not name this argument.
        seed: base seed of the transform randomness; ``set_epoch`` changes it per epoch.
        cache: keep each image in memory after its first read, decoded and passed through the
            transform's deterministic leading steps (``train_transform``'s Resize: a crop-sized copy, not
            the full-size decode), so later epochs skip decoding and resizing; samples are unchanged.
            Up to ``cache_bytes`` (later images are decoded on each read); per process: each DataLoader
            worker holds its own copy.
        cache_bytes: memory budget of ``cache``.
        background: RGB in [0, 1] that transparent pixels are composited on.
        max_pixels: decompression-bomb limit passed to :func:`~fewcolor.io.image.read_rgb`.
        scan_cache: reuse / update the on-disk scan cache under ``FEWCOLOR_HOME``.
        pixel_budget: images above it are reduced on decode (``None``: full size).

    Attributes: ``root`` (Path), ``paths`` (relative POSIX strings), ``labels`` (ints), ``classes``
    (sorted first-level folder names), ``num_grey``, ``bad_files`` (relative paths) and
    ``bad_reasons`` (path → reason) of the scan, ``failed_reads`` (path → reason: files of ``paths``
    that could not be read after the scan, replaced since; see the module docstring), ``epoch``.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split_file: str | os.PathLike[str] | None = None,
        paths: Sequence[str | os.PathLike[str]] | None = None,
        transform: Callable[..., torch.Tensor] | None = None,
        skip_grey: bool = True,
        seed: int = 0,
        cache: bool = False,
        cache_bytes: int = CACHE_BYTES,
        background: Sequence[float] = (1.0, 1.0, 1.0),
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        scan_cache: bool = True,
        pixel_budget: int | None = TRAIN_PIXEL_BUDGET,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"dataset folder not found: {self.root} (give an existing directory)")
        if split_file is not None and paths is not None:
            raise ValueError("ImageFolderDataset: give split_file or paths, not both")
        self.transform = transform
        self.skip_grey = skip_grey
        self.seed = int(seed)
        self.epoch = 0
        self.background = tuple(float(b) for b in background)
        self.max_pixels = max_pixels
        self.pixel_budget = pixel_budget
        self.scan_cache = scan_cache
        self.failed_reads: dict[str, str] = {}
        self._failed_indices: set[int] = set()
        self._memory: dict[int, torch.Tensor] | None = {} if cache else None
        self.cache_bytes, self._cached_bytes = int(cache_bytes), 0
        self._head, self._tail = split_deterministic(transform)

        source = "the folder"
        if split_file is not None:
            candidates = read_split(split_file)
            source = f"split file {split_file}"
        elif paths is not None:
            candidates = [self._relative(p) for p in paths]
            source = "the given paths"
        else:
            candidates = [p.relative_to(self.root).as_posix() for p in list_images(self.root)]

        self.classes = self._find_classes()
        index_of = {name: i for i, name in enumerate(self.classes)}

        scan = scan_images(self.root, candidates, self.background, max_pixels, use_cache=scan_cache,
                           pixel_budget=pixel_budget)
        self.bad_reasons = {p: scan[p].get("reason", "unreadable") for p in candidates
                            if scan[p]["status"] == "bad"}
        self.bad_files = list(self.bad_reasons)
        grey = [p for p in candidates if scan[p]["status"] == "grey"]
        self.num_grey = len(grey)
        self.grey_files = grey  #: relative paths of the images found grey (kept or skipped, by ``skip_grey``)
        for rel, reason in self.bad_reasons.items():
            log.warning("skipping image %s: %s", self.root / rel, reason)
        if grey:
            log.info("%s: %d of %d images look grey (≤1%% of pixels with RGB spread > 12/255: %s)%s",
                     self.root, len(grey), len(candidates), ", ".join(grey[:3]) + (", ..." if len(grey) > 3 else ""),
                     f"; {GREY_SKIPPED}" if skip_grey else "; kept")

        keep = {"ok", "grey"} if not skip_grey else {"ok"}
        self.paths = [p for p in candidates if scan[p]["status"] in keep]
        self.labels = [index_of.get(p.split("/", 1)[0], -1) if "/" in p else -1 for p in self.paths]
        if not self.paths:
            raise ValueError(self._empty_message(source, candidates))

    # ------------------------------------------------------------------------------------ dataset API

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Sample:
        used, rgb = self._transformed(self._checked(index))
        return self._sample(rgb, used)

    def collate(self, indices: Sequence[int]) -> dict[str, Any]:
        """Samples ``indices`` as one batch: ``default_collate([self[i] for i in indices])`` with one Lab
        conversion of the stacked images instead of one per image (a third of the time of a batch of 16
        images of 64 px, docs/PERFORMANCE.md). The conversion is per pixel, so the values are those of the
        per-sample path up to float rounding. Images of different sizes go the per-sample way (whose
        collation then says that they cannot be stacked)."""
        loaded = [self._transformed(self._checked(i)) for i in indices]
        checked = [used for used, _ in loaded]  # an unreadable image's replacement stands in its place
        rgbs = [rgb for _, rgb in loaded]
        if not rgbs or any(r.shape != rgbs[0].shape for r in rgbs):
            return default_collate([self._sample(rgb, i) for rgb, i in zip(rgbs, checked, strict=True)])
        rgb = torch.stack(rgbs)
        lab = rgb_to_lab(rgb)
        return {
            "rgb": rgb,
            "l": normalize_l(lab[:, :1]),
            "ab": normalize_ab(lab[:, 1:]),
            "label": torch.tensor([self.labels[i] for i in checked]),
            "index": torch.tensor(checked),
            "path": [self.paths[i] for i in checked],
        }

    def _checked(self, index: int) -> int:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images in {self.root}")
        return index % len(self)

    def _transformed(self, index: int) -> tuple[int, torch.Tensor]:
        """``(used, rgb)``: the image read (``index``, or its replacement when it cannot be read) and its RGB
        through the whole transform (the random steps seeded by seed, epoch and ``used``)."""
        used, rgb = self._readable(index, self._prepared)
        if self._tail is not None:
            if getattr(self._tail, "random", False):
                rgb = self._tail(rgb, generator_for(self.seed, self.epoch, used))
            else:
                rgb = self._tail(rgb)
        return used, rgb.contiguous()

    def _sample(self, rgb: torch.Tensor, index: int) -> Sample:
        lab = rgb_to_lab(rgb)
        return {
            "rgb": rgb,
            "l": normalize_l(lab[:1]),
            "ab": normalize_ab(lab[1:]),
            "label": self.labels[index],
            "index": index,
            "path": self.paths[index],
        }

    def read(self, index: int) -> torch.Tensor:
        """The decoded, untransformed RGB of image ``index``: from the memory cache when the transform has no
        deterministic head (the cache then holds the full decode), else decoded again from the file. An
        unreadable file gives its replacement's image, as in samples (module docstring)."""
        return self._readable(self._checked(index), self._prepared if self._head is None else self._decoded)[1]

    def _decoded(self, index: int) -> torch.Tensor:
        return read_rgb(self.root / self.paths[index], background=self.background, max_pixels=self.max_pixels,
                        pixel_budget=self.pixel_budget)

    def _prepared(self, index: int) -> torch.Tensor:
        """Image ``index`` decoded and through the transform's deterministic leading steps (cached)."""
        if self._memory is not None and index in self._memory:
            return self._memory[index]
        rgb = self._decoded(index)  # raises before anything is cached: a bad file never enters the cache
        if self._head is not None:
            rgb = self._head(rgb)
        if self._memory is not None and self._cached_bytes + rgb.nbytes <= self.cache_bytes:
            self._memory[index] = rgb
            self._cached_bytes += rgb.nbytes
        return rgb

    def _readable(self, index: int, load: Callable[[int], torch.Tensor]) -> tuple[int, torch.Tensor]:
        """``(used, load(used))``: ``used`` is ``index``, or, when its file cannot be read (changed, deleted or
        moved since the scan), the first readable image of :meth:`_candidates`. A file that fails is warned
        about once and never tried again. The one place where samples read files."""
        in_a_row = 0
        for candidate in self._candidates(index):
            if candidate in self._failed_indices:
                continue
            try:
                return candidate, load(candidate)
            except (ImageReadError, FileNotFoundError) as exc:  # the file's own fault: any other OSError (a
                # vanished mount, too many open files) is the machine's, and ends the run (the loop saves first)
                self._give_up_on(candidate, exc)
                in_a_row += 1
            if in_a_row >= MAX_FAILED_IN_A_ROW or len(self._failed_indices) == len(self.paths):
                break
        rel, reason = list(self.failed_reads.items())[-1]
        what = (f"none of its {len(self.paths)} images can be read any more" if len(self._failed_indices) ==
                len(self.paths) else f"{in_a_row} images in a row cannot be read (is the folder still there?)")
        raise ImageReadError(f"{self.root}: {what} (the last to fail: {rel}: {reason}); check the folder, then "
                             "train again")

    def _candidates(self, index: int) -> Iterator[int]:
        """``index``, then every image in an order drawn with the generator of ``(seed, epoch, index)`` (free:
        the image it would have transformed is gone). The replacement is the first readable one of that
        order, so the same seed, epoch and bad files give the same batches, whichever failed first."""
        yield index
        yield from torch.randperm(len(self.paths), generator=generator_for(self.seed, self.epoch, index)).tolist()

    def _give_up_on(self, index: int, exc: OSError) -> None:
        rel = self.paths[index]
        path = self.root / rel
        reason = str(exc).removeprefix(f"{path}: ") if isinstance(exc, ImageReadError) else (exc.strerror or str(exc))
        self._failed_indices.add(index)
        self.failed_reads[rel] = reason
        if len(self._failed_indices) < len(self.paths):  # else the error that nothing is left says it
            log.warning("skipped %s: %s; training goes on with another image", path, reason)
        if self.scan_cache:
            # The scan cached this file as good under its size and time, which a file changed in place can
            # keep: forget that entry so that the next opening reads the file again.
            save_scan_cache(self.root, _scan_settings(self.background, self.max_pixels, self.pixel_budget),
                            {rel: {"status": "unchecked"}})

    def set_epoch(self, epoch: int) -> None:
        """Select the randomness of the transforms for this epoch (same epoch → same samples)."""
        self.epoch = int(epoch)

    def __repr__(self) -> str:
        return (f"ImageFolderDataset({str(self.root)!r}, {len(self)} images, {len(self.classes)} classes, "
                f"grey={self.num_grey}, bad={len(self.bad_files)})")

    # ------------------------------------------------------------------------------------------ helpers

    def _relative(self, path: str | os.PathLike[str]) -> str:
        p = Path(path)
        if p.is_absolute():
            try:
                p = p.resolve().relative_to(self.root.resolve())
            except ValueError as exc:
                raise ValueError(f"{path} is not inside the dataset folder {self.root}") from exc
        return validate_split_path(p.as_posix(), where="ImageFolderDataset paths")

    def _find_classes(self) -> list[str]:
        """First-level, non-hidden subfolders of root that hold at least one image (at any depth).

        Taken from the folder, not from the selected paths, so every split of one folder agrees
        on the label of each class.
        """
        classes = []
        for sub in sorted(self.root.iterdir()):
            if sub.is_dir() and not sub.name.startswith(".") and _has_image(sub):
                classes.append(sub.name)
        return classes

    def _empty_message(self, source: str, candidates: Sequence[str]) -> str:
        n_bad, n_grey = len(self.bad_files), self.num_grey
        if candidates:
            found = f"{len(candidates)} image files from {source}: {n_bad} unreadable, {n_grey} grey"
            hint = f" ({GREY_SKIPPED}; give colour images)" if n_grey and self.skip_grey else ""
            return f"{self.root}: no usable images; found {found}{hint}"
        files = [p for p in self.root.rglob("*")
                 if p.is_file() and not any(part.startswith(".") for part in p.relative_to(self.root).parts)]
        others = Counter(p.suffix.lower() or "(no suffix)" for p in files)
        seen = ", ".join(f"{n} {s}" for s, n in others.most_common(8)) or "no files at all"
        return (f"{self.root}: no usable images from {source}; the folder holds {seen}. "
                f"Image files need one of the extensions {', '.join(sorted(IMAGE_EXTENSIONS))}")


def _has_image(folder: Path) -> bool:
    for _dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        if any(not f.startswith(".") and Path(f).suffix.lower() in IMAGE_EXTENSIONS for f in filenames):
            return True
    return False
