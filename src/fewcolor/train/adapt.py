"""Test-time adaptation with an equal budget for every method.

A method with its own adaptation mechanism (``Method.adapt`` returns True) uses it; any other method
is fine-tuned on the support images with the training loop for the same number of steps.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

from fewcolor.data.protocol import Dataset
from fewcolor.methods.base import Method
from fewcolor.train.loop import TrainOptions, train


def adapt(
    method: Method,
    support: Dataset,
    steps: int,
    batch_size: int = 4,
    seed: int = 0,
    out_dir: str | Path | None = None,
    device: str | None = None,
) -> tuple[Method, str]:
    """A copy of ``method`` adapted to ``support``; returns ``(adapted, how)``.

    ``how`` is ``"own"``, ``"finetune"`` or ``"none"`` (``steps == 0``), for the benchmark's tables.
    The input method is never modified.
    """
    adapted = copy.deepcopy(method)
    if steps <= 0:
        return adapted.eval(), "none"
    if adapted.adapt(support, steps, seed):
        return adapted.eval(), "own"
    with tempfile.TemporaryDirectory(prefix="fewcolor-adapt-") as tmp:
        run = Path(out_dir) if out_dir is not None else Path(tmp) / "run"
        opts = TrainOptions(
            out_dir=run,
            steps=steps,
            batch_size=min(batch_size, max(1, len(support))),
            seed=seed,
            checkpoint_every=0,
            sample_every=0,
            run_setup=False,
            progress=False,
            tensorboard=False,
            device=device,
        )
        train(adapted, support, opts)
    return adapted.eval(), "finetune"
