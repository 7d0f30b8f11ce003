"""Benchmark protocols: a dataset's episodes plus the budgets every method gets.

Budgets are counted in generator image-gradient evaluations (``Method.images_per_step``), so a
meta-learner whose one step runs an inner loop gets no more updates than a plain cGAN.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


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
