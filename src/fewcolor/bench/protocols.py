"""Benchmark protocols: a dataset's episodes plus the budgets every method gets.

Budgets are counted in generator image-gradient evaluations (``Method.images_per_step``), so a
meta-learner whose one step runs an inner loop gets no more updates than a plain cGAN.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Budget:
    train_images: int  #: image-gradient evaluations for training (steps × batch for plain methods)
    adapt_steps: int  #: fine-tuning / adaptation steps on each episode's support set
    batch_size: int
    max_episodes: int | None  #: None = every episode of the protocol
    max_queries: int | None  #: per episode
    gallery_queries: int = 12


#: sizes: smoke runs every protocol end to end in about a minute; cpu is what we record on 2 cores
SIZES: dict[str, Budget] = {
    "smoke": Budget(train_images=16, adapt_steps=1, batch_size=4, max_episodes=2, max_queries=2, gallery_queries=4),
    "cpu": Budget(train_images=24_000, adapt_steps=20, batch_size=16, max_episodes=10, max_queries=20),
    "paper": Budget(train_images=1_600_000, adapt_steps=100, batch_size=16, max_episodes=None, max_queries=None),
}


@dataclass(frozen=True)
class Protocol:
    name: str
    dataset: str
    k_shot: int
    image_size: int
    folds: tuple[int | None, ...] = (None,)
    control: bool = False
    description: str = ""
    folder: str | None = None  #: a user's folder (``bench --data``): episodes from its subfolders
    train_folder: str | None = None  #: with ``folder``: train on this folder instead of the supports


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in [
        *(
            Protocol(
                f"tinyimagenet-fs-k{k}",
                "tinyimagenet-fs",
                k,
                64,
                description=f"Tiny-ImageNet, 40 meta-test classes, {k}-shot support from train, val queries",
            )
            for k in (1, 5, 10)
        ),
        Protocol(
            "pokemon-frames",
            "pokemon-frames",
            1,
            64,
            description="one-shot: front frame 0 as support, other front + back frames as queries",
        ),
        Protocol(
            "pokemon-frames-shiny",
            "pokemon-frames",
            1,
            64,
            control=True,
            description="control: the same episodes from the shiny GIFs (same grey, other colours)",
        ),
        *(
            Protocol(
                f"flowers12-k{k}",
                "flowers12",
                k,
                128,
                folds=(0, 1, 2),
                description=f"Flowers-12, 3 folds of held-out species, {k}-shot support, 20 test queries",
            )
            for k in (1, 5)
        ),
        Protocol(
            "emoji-xstyle",
            "emoji-xstyle",
            1,
            64,
            description="Twemoji support, grey Noto query scored against the Noto colours",
        ),
    ]
}


def get_protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise KeyError(f"unknown protocol {name!r}; choose one of: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def get_budget(size: str, **overrides: int | None) -> Budget:
    if size not in SIZES:
        raise KeyError(f"unknown benchmark size {size!r}; choose one of: {', '.join(SIZES)}")
    return replace(SIZES[size], **{k: v for k, v in overrides.items() if v is not None})


#: a user folder protocol's default side (``bench --data`` without ``--image-size``): its names carry no size
FOLDER_IMAGE_SIZE = 64


def folder_protocols(
    root: str | os.PathLike[str],
    shots: list[int],
    image_size: int = FOLDER_IMAGE_SIZE,
    train_folder: str | os.PathLike[str] | None = None,
) -> list[Protocol]:
    """One protocol per support size K on a user's folder (:mod:`fewcolor.data.user_folder`).

    Its ``dataset`` names the training data, which keys the cached training runs: the folder's name and
    content digest plus K (the training set is the K-shot supports) or the training folder's digest. Another
    ``image_size`` than the default ends both the name and the dataset with ``-<size>px``: runs and results
    at another size are kept apart (the default keeps the names it always had, so earlier folders stay valid).
    """
    from fewcolor.data.user_folder import folder_digest, folder_episodes

    base = Path(root).resolve()
    train = Path(train_folder).resolve() if train_folder is not None else None
    out = []
    for k in shots:
        folder_episodes(base, k)  # fails now, in one line, when no class has a query at this K
        size_tag = "" if image_size == FOLDER_IMAGE_SIZE else f"-{image_size}px"
        data = f"folder-{base.name}-{folder_digest(base)}" + (
            f"-train-{train.name}-{folder_digest(train)}" if train is not None else f"-k{k}") + size_tag
        trained_on = f"the images of {train}" if train is not None else "the support images of every class"
        out.append(Protocol(f"folder-{base.name}-k{k}{size_tag}", data, k, image_size,
                            description=f"your folder {base}: per subfolder, the first {k} images by name as "
                                        f"support, the rest as queries; methods trained on {trained_on}",
                            folder=str(base), train_folder=str(train) if train is not None else None))
    return out


def protocol_episodes(protocol: Protocol, fold: int | None, seed: int, smoke: bool) -> list[Any]:
    """The protocol's test episodes (:func:`fewcolor.data.episodes.episodes`, or a user folder's)."""
    if protocol.folder is not None:
        from fewcolor.data.user_folder import folder_episodes

        return folder_episodes(protocol.folder, protocol.k_shot)
    from fewcolor.data.episodes import episodes

    return episodes(protocol.dataset, protocol.k_shot, fold=fold, seed=seed, control=protocol.control, smoke=smoke)


def protocol_train_paths(protocol: Protocol, fold: int | None, smoke: bool) -> list[Path]:
    """The images every method of the protocol trains on (absolute paths)."""
    if protocol.folder is not None:
        if protocol.train_folder is not None:
            from fewcolor.io.image import list_images

            return list_images(protocol.train_folder)
        return [p for ep in protocol_episodes(protocol, fold, 0, smoke) for p in ep.support]
    from fewcolor.data.episodes import train_split

    return train_split(protocol.dataset, fold, smoke=smoke).paths
