"""Few-shot episodes from a user's own folder (``fewcolor bench --data FOLDER``).

Layout: ``FOLDER/<class>/.../<image>``; every first-level subfolder is one class (a character, a
series, a place). For a support size K, each class gives one episode: its first K images by relative
path (sorted) are the support, the rest the queries, each scored against its own colours. A class with
at most K usable images has no query and is skipped, with a warning; unreadable files are reported and
skipped, as everywhere.

The training set of such a protocol is, unless a separate training folder is given, the union of the
episodes' support images: the methods learn only from colours the user showed them, and no query is
ever trained on.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from fewcolor.data.episodes import Episode
from fewcolor.io.image import list_images

log = logging.getLogger(__name__)


def class_images(root: str | os.PathLike[str]) -> dict[str, list[Path]]:
    """Absolute paths of the readable images of every first-level subfolder, sorted by relative path."""
    from fewcolor.data.folder import ImageFolderDataset

    base = Path(root)
    if not base.is_dir():
        raise FileNotFoundError(f"--data {base}: not a folder (give a folder with one subfolder per class)")
    data = ImageFolderDataset(base, skip_grey=False)
    out: dict[str, list[Path]] = {}
    for rel in sorted(data.paths):
        if "/" in rel:
            out.setdefault(rel.split("/", 1)[0], []).append(base / rel)
    if not out:
        raise ValueError(f"--data {base}: no subfolders with images; put each class's images in its own subfolder")
    return out


def folder_episodes(root: str | os.PathLike[str], k_shot: int) -> list[Episode]:
    """One episode per class of ``root`` with more than ``k_shot`` images (module docstring)."""
    if k_shot < 1:
        raise ValueError(f"--shots: K must be at least 1, got {k_shot}")
    name = Path(root).name
    out = []
    for cls, paths in class_images(root).items():
        if len(paths) <= k_shot:
            log.warning("%s/%s has %d images: nothing left to query with %d-shot support; skipped",
                        name, cls, len(paths), k_shot)
            continue
        out.append(Episode(f"{name}/{cls}/k{k_shot}", paths[:k_shot], paths[k_shot:], None, cls,
                           {"k_shot": k_shot, "folder": str(root)}))
    if not out:
        raise ValueError(f"--data {root}: no class has more than {k_shot} images, so no {k_shot}-shot episode "
                         "has a query; use smaller --shots or add images")
    return out


def folder_digest(root: str | os.PathLike[str]) -> str:
    """8 hex digits naming the folder's content (relative paths, sizes, modification times)."""
    base = Path(root)
    h = hashlib.sha256()
    for p in list_images(base):
        st = p.stat()
        h.update(f"{p.relative_to(base).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:8]
