"""``fewcolor adapt``: adapt any model to a folder of 1–10 of your own colour images, and say whether it helped.

1. The model (a checkpoint, or the bundled base model when none is named) is loaded.
   The folder's grey-looking images (:func:`fewcolor.data.grey.is_grey`) are skipped, with a log line that
   counts and names them: they carry no colour to learn from, and a model adapted to them learns to answer
   grey. A folder of only grey images is refused (``ValueError``, one line), as ``adapt exemplar`` refuses it.
2. With ≥ 3 images and ``holdout``, the last image by name is held out: the model is adapted to the
   others and the held-out image is colorized (from its lightness, at full resolution) before and after;
   LPIPS and mean ΔE00 (:mod:`fewcolor.metrics`, after evaluate's Lab round trip) are reported.
3. The model is adapted to ALL the images (the held-out one included) and saved: every image the user
   gave goes into the checkpoint. So adaptation runs twice when a check runs.

Adaptation is :func:`fewcolor.train.adapt.adapt`: the method's own mechanism or fine-tuning with fresh
optimisers, at the method's default steps and learning-rate factor (``Method.adapt_settings``) unless
given, on :func:`~fewcolor.data.transforms.few_shot_transform` crops (scale jitter, crop, flip; seeded).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

#: below this many images no image is held out (one left would be a one-shot support at best)
MIN_IMAGES_FOR_HOLDOUT = 3


class AdaptInterrupted(Exception):
    """SIGINT/SIGTERM stopped the adaptation. Its fine-tuning state lived in a temporary folder that is gone
    and the model is written only at the end, so nothing was written and there is nothing to resume."""

    def __init__(self, signum: int, out: Path, steps: int, runs: int) -> None:
        self.signum = signum
        takes = f"{steps} steps" if runs == 1 else (f"{runs} x {steps} steps: the held-out check, then all the "
                                                    "images; --no-holdout skips the check")
        super().__init__(f"adaptation interrupted by {signal.Signals(signum).name}; nothing was written to {out}: "
                         f"run the command again (it takes {takes})")


@dataclass
class AdaptReport:
    path: Path  #: the adapted checkpoint
    method: str
    images: int  #: images the saved model was adapted to
    steps: int
    lr_factor: float
    how: str  #: ``fewcolor.train.adapt.adapt``'s mechanism label
    held_out: str | None = None  #: the held-out image's path relative to the folder
    before: dict[str, float | None] | None = None  #: LPIPS / ΔE00 of the held-out image, unadapted model
    after: dict[str, float | None] | None = None  #: the same after adapting to the other images
    seconds: float = 0.0
    grey_skipped: list[str] = dataclasses.field(default_factory=list)  #: grey-looking images left out (relative)


def resolve_model(model: str | os.PathLike[str] | None) -> Path:
    """``model`` itself, or the bundled base model; one clear error when neither exists."""
    from fewcolor.pretrained import require_bundled_model

    if model is not None:
        return Path(model)
    return require_bundled_model("no MODEL given: name a checkpoint, fewcolor adapt MODEL --data FOLDER -o OUT")


def held_out_scores(method: Any, image: Path, device: str | None, lpips_model: Any) -> dict[str, float | None]:
    """LPIPS and mean ΔE00 of ``method``'s colorization of ``image`` (from its L) against its colours."""
    from fewcolor.io.image import as_saved_8bit, read_rgb
    from fewcolor.metrics.color import mean_delta_e2000
    from fewcolor.metrics.scoring import prepare_pair
    from fewcolor.pipeline import Colorizer

    truth = read_rgb(image)
    pred = Colorizer(method, device=device).colorize(truth)
    p, t = (x[None] for x in prepare_pair(as_saved_8bit(pred.cpu()), truth, None))  # as `evaluate` scores
    with torch.no_grad():
        lp = float(lpips_model(p, t)[0]) if lpips_model is not None else None
    return {"lpips": lp, "delta_e2000": float(mean_delta_e2000(p, t)[0])}


def _lpips_or_none() -> Any:
    from fewcolor.metrics.lpips import LPIPS

    try:
        return LPIPS("alex")
    except OSError as exc:  # WeightsNotFoundError: report ΔE00 alone
        log.warning("LPIPS unavailable (%s); the held-out check reports ΔE00 only", exc)
        return None


def adapt_folder(
    model: str | os.PathLike[str] | None,
    data_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    steps: int | None = None,
    lr_factor: float | None = None,
    seed: int = 0,
    batch_size: int = 4,
    holdout: bool = True,
    device: str | None = None,
    progress: bool = True,
) -> AdaptReport:
    """Adapt ``model`` to the images of ``data_dir`` and save it to ``out`` (module docstring)."""
    from fewcolor.data.folder import ImageFolderDataset
    from fewcolor.data.transforms import few_shot_transform
    from fewcolor.methods.options import InferenceOptionError
    from fewcolor.methods.registry import load_method, save_method
    from fewcolor.train.adapt import adapt
    from fewcolor.train.loop import TrainingInterrupted

    source = resolve_model(model)
    out_path = Path(out)
    if out_path.exists() and out_path.resolve() == source.resolve():
        raise FileExistsError(f"-o {out_path} is the model being adapted; choose another output path")
    method = load_method(source, device=device or "cpu")
    size = int(getattr(method.config, "image_size", 256))
    root = Path(data_dir)

    def support(paths: list[str] | None) -> ImageFolderDataset:
        # grey-looking images are skipped (module docstring); none left: one ValueError saying why
        return ImageFolderDataset(root, paths=paths, transform=few_shot_transform(size), seed=seed, cache=True)

    every = support(None)  # logs "FOLDER: N of M images look grey (names); skipped: ...", as `adapt exemplar` does
    if len(every) > 10:
        log.info("adapting to %d images (the few-shot setting is 1-10)", len(every))
    defaults = method.adapt_settings()
    n_steps = defaults.steps if steps is None else int(steps)
    factor = defaults.lr_factor if lr_factor is None else float(lr_factor)
    if n_steps < 0 or factor <= 0:
        raise ValueError(f"--steps must be >= 0 and --lr-factor > 0, got {n_steps} and {factor}")
    run = functools.partial(adapt, steps=n_steps, batch_size=batch_size, seed=seed, device=device,
                            lr_factor=factor, progress=progress)
    t0 = time.time()
    report = AdaptReport(out_path, method.name, len(every), n_steps, factor, "",
                         grey_skipped=list(every.grey_files))
    checking = holdout and len(every) >= MIN_IMAGES_FOR_HOLDOUT
    try:
        if checking:
            held = sorted(every.paths)[-1]  # a colour image: the grey ones were skipped
            lpips_model = _lpips_or_none()
            report.held_out = held
            try:
                report.before = held_out_scores(method, root / held, device, lpips_model)
            except (RuntimeError, InferenceOptionError) as exc:  # e.g. an untrained MemoPainter's empty memory
                log.warning("the unadapted model cannot colorize %s (%s); no 'before' score", held, exc)
            check, _ = run(method, support([p for p in every.paths if p != held]))
            report.after = held_out_scores(check, root / held, device, lpips_model)
            del check
        adapted, report.how = run(method, every)
    except TrainingInterrupted as exc:  # its "state saved, --resume" is about a temporary run folder, now gone
        raise AdaptInterrupted(exc.signum, out_path, n_steps, 2 if checking else 1) from None
    report.seconds = time.time() - t0
    facts = {k: v for k, v in dataclasses.asdict(report).items() if k not in ("path", "seconds")}
    facts.update(model=str(source), data=str(root.resolve()), seed=seed)
    report.path = save_method(adapted, out_path, step=getattr(method, "checkpoint_step", 0),
                              extra={"adaptation": facts})
    return report
