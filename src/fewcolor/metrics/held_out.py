"""Held-out scores while a model trains: is it still improving? (``fewcolor train --val``, the base model's
``scripts/train_base.py``)

A fixed set of colour photos the model never trains on is coloured every few hundred steps and scored the
way ``fewcolor evaluate`` scores (:func:`~fewcolor.metrics.scoring.prepare_pair`, then
:func:`~fewcolor.metrics.scoring.score_batch`: the same code, so the curve reads on the scale of the
tables). FID is left out: on a few hundred images it is biased and costs more than the rest together.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from fewcolor.io.image import ImageReadError, as_saved_8bit, list_images, read_rgb
from fewcolor.methods.base import Method
from fewcolor.metrics.evaluate import MIN_EVAL_SIDE
from fewcolor.metrics.lpips import LPIPS
from fewcolor.metrics.scoring import prepare_pair, score_batch
from fewcolor.pipeline import Colorizer

#: the per-image means a validation row holds (names as in metrics.json)
HELD_OUT_METRICS = ("lpips", "delta_e2000", "psnr", "delta_cf_abs")
DEFAULT_HELD_OUT_IMAGES = 256
#: held-out files larger than this are reduced on decode (256 phone photos would otherwise hold ~37 GB)
HELD_OUT_PIXEL_BUDGET = 512 * 512


class HeldOutScores:
    """``HeldOutScores(images)(method)`` -> the mean of each of :data:`HELD_OUT_METRICS` over the images.

    ``images``: (3,H,W) RGB in [0, 1], read once. Each is coloured by ``method`` through the inference
    pipeline (:class:`~fewcolor.pipeline.Colorizer`: working size ``work_size``, default the method's own;
    the full-resolution L kept; inference ``options`` as ``colorize`` takes them), rounded to 8 bits as a
    saved output is, and scored at ``size`` × ``size`` (default: each truth's own size, at least
    ``MIN_EVAL_SIDE``). ``method`` is left in eval mode: the caller restores its modes (the training loop
    does). A round shows a transient bar ("held-out", images) unless ``progress`` is false.
    """

    def __init__(self, images: Sequence[torch.Tensor], size: int | None = None, work_size: int | None = None,
                 batch_size: int = 32, lpips_net: str = "alex", options: dict[str, Any] | None = None,
                 progress: bool = True) -> None:
        if not images:
            raise ValueError("held-out scores need at least one image")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if size is not None and size < MIN_EVAL_SIDE:
            raise ValueError(f"held-out scoring size must be at least {MIN_EVAL_SIDE} (LPIPS needs it), got {size}")
        small = [tuple(img.shape[-2:]) for img in images if size is None and min(img.shape[-2:]) < MIN_EVAL_SIDE]
        if small:
            raise ValueError(f"{len(small)} held-out image(s) under {MIN_EVAL_SIDE} px per side (e.g. "
                             f"{small[0][1]}x{small[0][0]}), too small for LPIPS; give a scoring size")
        self._images = [as_saved_8bit(img).mul(255).round().to(torch.uint8) for img in images]  # 4x smaller
        self.size, self.work_size, self.batch_size = size, work_size, batch_size
        self.options = dict(options or {})
        self.progress = progress
        self.lpips = LPIPS(lpips_net)

    @classmethod
    def from_paths(cls, paths: Sequence[str | os.PathLike[str]], limit: int = DEFAULT_HELD_OUT_IMAGES,
                   seed: int = 0, **kwargs: object) -> tuple[HeldOutScores, list[str]]:
        """At most ``limit`` of ``paths`` (a seeded choice when there are more), read once (files over
        :data:`HELD_OUT_PIXEL_BUDGET` reduced on decode); also returns one line per file skipped: unreadable,
        or too small to score at its own size."""
        if limit < 1:
            raise ValueError(f"the held-out image count must be at least 1, got {limit}")
        chosen = cls.choose(paths, limit, seed)
        images, skipped = [], []
        for path in chosen:
            try:
                image = read_rgb(path, pixel_budget=HELD_OUT_PIXEL_BUDGET)
            except ImageReadError as exc:
                skipped.append(str(exc))
                continue
            if kwargs.get("size") is None and min(image.shape[-2:]) < MIN_EVAL_SIDE:
                skipped.append(f"{path}: {image.shape[-1]}x{image.shape[-2]} is too small to score (LPIPS needs "
                               f"{MIN_EVAL_SIDE} px per side)")
                continue
            images.append(image)
        if not images:
            raise ValueError(f"none of the {len(chosen)} held-out images could be read"
                             + (f" ({skipped[0]})" if skipped else ""))
        return cls(images, **kwargs), skipped  # type: ignore[arg-type]

    @staticmethod
    def choose(paths: Sequence[str | os.PathLike[str]], limit: int, seed: int = 0) -> list[str]:
        """The held-out files :meth:`from_paths` reads: all of ``paths`` (sorted) when at most ``limit``,
        else a seeded choice of ``limit`` of them."""
        chosen = sorted(str(p) for p in paths)
        return sorted(random.Random(seed).sample(chosen, limit)) if len(chosen) > limit else chosen

    @classmethod
    def from_folder(cls, folder: str | os.PathLike[str], limit: int = DEFAULT_HELD_OUT_IMAGES, seed: int = 0,
                    **kwargs: object) -> tuple[HeldOutScores, list[str]]:
        """:meth:`from_paths` over the images of ``folder`` (recursive)."""
        paths = list_images(folder)
        if not paths:
            raise ValueError(f"{folder} holds no images to validate on")
        return cls.from_paths(paths, limit, seed, **kwargs)

    def __len__(self) -> int:
        return len(self._images)

    @property
    def identity(self) -> dict[str, Any]:
        """What makes two curves comparable (recorded in run.json; a resume on another set restarts the curve):
        the images (a digest of their 8-bit pixels), the scoring and working sizes and the inference options."""
        digest = hashlib.sha256()
        for img in self._images:
            digest.update(str(tuple(img.shape)).encode())
            digest.update(img.numpy().tobytes())
        return {"images": len(self._images), "sha256": digest.hexdigest(), "size": self.size,
                "work_size": self.work_size, "options": {k: str(v) for k, v in sorted(self.options.items())}}

    @property
    def images(self) -> list[torch.Tensor]:
        """The held-out images as float (3,H,W) in [0, 1] (kept as 8-bit)."""
        return [img.float() / 255 for img in self._images]

    @torch.no_grad()
    def __call__(self, method: Method) -> dict[str, float]:
        device = next((p.device for p in method.parameters()), torch.device("cpu"))
        self.lpips.to(device)
        colorizer = Colorizer(method, device=device, size=self.work_size, pixel_budget=None)
        rows: list[dict[str, Any]] = []
        # leave=False: the bar goes once the round is scored (or fails), and the training bar carries on
        with tqdm(total=len(self._images), desc="held-out", unit="img", leave=False, disable=not self.progress) as bar:
            for start in range(0, len(self._images), self.batch_size):
                truths = [img.float() / 255 for img in self._images[start : start + self.batch_size]]
                preds = colorizer.colorize(truths, batch_size=self.batch_size, **self.options)
                pairs = [prepare_pair(as_saved_8bit(p), t, self.size) for p, t in zip(preds, truths, strict=True)]
                for shape in dict.fromkeys(p.shape for p, _ in pairs):  # score_batch takes pairs of one size
                    same = [(p, t) for p, t in pairs if p.shape == shape]
                    rows += score_batch([""] * len(same), torch.stack([p for p, _ in same]),
                                        torch.stack([t for _, t in same]), self.lpips, device)
                bar.update(len(truths))
        return {m: sum(float(r[m]) for r in rows) / len(rows) for m in HELD_OUT_METRICS}
