"""Test-time adaptation of any method to a few support images.

A method with its own adaptation mechanism (``Method.adapt`` returns True: MetalGAN's inner loop) uses
it. Any other method first gets the support without gradients where it has a use for it
(``Method.write_support``: MemoPainter writes it into its colour memory), then is fine-tuned on it by
the one training loop, from the model's weights with FRESH optimisers (no state carried over from
training), the learning rates scaled by ``lr_factor``, its batch-norm statistics kept where the method's
``adapt_settings()`` asks for it. The benchmark gives every method the same
``steps``; ``fewcolor adapt`` uses each method's own defaults (``Method.adapt_settings``).
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
    lr_factor: float = 1.0,
    progress: bool = False,
    keep_norm_statistics: bool | None = None,
) -> tuple[Method, str]:
    """A copy of ``method`` adapted to ``support``; returns ``(adapted, how)``.

    ``how`` is ``"own"``, ``"finetune"``, ``"write+finetune"`` (a support write, then fine-tuning),
    ``"write"`` or ``"none"`` (``steps == 0``), for the benchmark's tables. The input method is never
    modified. ``out_dir`` keeps the fine-tuning run (logs, samples) instead of a temporary folder.
    ``keep_norm_statistics`` overrides the method's own choice (``adapt_settings()``; measurements).
    """
    adapted = copy.deepcopy(method)
    if steps <= 0:
        wrote = adapted.write_support(support, seed)
        return adapted.eval(), "write" if wrote else "none"
    if adapted.adapt(support, steps, seed, progress=progress):
        return adapted.eval(), "own"
    wrote = adapted.write_support(support, seed)
    with tempfile.TemporaryDirectory(prefix="fewcolor-adapt-") as tmp:
        run = Path(out_dir) if out_dir is not None else Path(tmp) / "run"
        opts = TrainOptions(
            out_dir=run,
            steps=steps,
            batch_size=min(batch_size, max(1, len(support))),
            seed=seed,
            checkpoint_every=0,
            checkpoint_minutes=0,  # seconds of fine-tuning in a temporary folder: nothing worth saving on the way
            sample_every=0,
            run_setup=False,
            progress=progress,
            tensorboard=False,
            device=device,
            lr_factor=lr_factor,
            keep_norm_statistics=(adapted.adapt_settings().keep_norm_statistics if keep_norm_statistics is None
                                  else keep_norm_statistics),
        )
        train(adapted, support, opts)
    return adapted.eval(), "write+finetune" if wrote else "finetune"
