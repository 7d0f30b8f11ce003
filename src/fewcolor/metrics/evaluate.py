"""``fewcolor evaluate``: score colorized images against the truth and write metrics.json + report.html.

Protocol (written into every result):

- prediction and truth are read as sRGB in [0, 1]; with ``size`` both are resized to ``size × size``
  (bilinear, antialiased); without it each pair is scored at the truth's resolution, and a prediction
  of another size is skipped and reported (never stretched silently);
- a pair that cannot be scored (an unreadable or corrupt file, a side under ``MIN_EVAL_SIDE`` pixels,
  a size mismatch) is skipped: ``metrics.json`` lists it under ``skipped`` with the reason, the report
  shows the list, and the run goes on;
- the output folder may not lie inside a folder being read (``check_outside``);
- both then go through the same Lab round-trip (sRGB → Lab → sRGB, kornia D65, out-of-gamut clipped), so
  the truth sees exactly the processing a colorized output sees;
- per image: PSNR, SSIM (Gaussian 11/1.5), LPIPS v0.1, mean CIEDE2000, Zhang's AuC, colourfulness
  (Hasler–Süsstrunk and the DDColor abs() variant) and ΔCF; per set: FID and KID on Inception pool3
  (resized to 299 bilinear), the Inception Score only with 1008-way logits weights; on fewer than
  :data:`~fewcolor.metrics.set_level.MIN_SET_IMAGES` images FID/KID are flagged (``set.set_reliable``,
  ``set.set_warning``, a log warning), never dropped.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from tqdm import tqdm

from fewcolor.io.atomic import write_text_atomic
from fewcolor.io.image import DEFAULT_PIXEL_BUDGET, ImageReadError, as_saved_8bit, list_images, read_rgb, write_rgb
from fewcolor.io.paths import check_outside, output_paths
from fewcolor.metrics.lpips import LPIPS
from fewcolor.metrics.pixel import SSIM_SIGMA, SSIM_WINDOW
from fewcolor.metrics.report import ReportImages, json_safe, write_report
from fewcolor.metrics.scoring import PER_IMAGE_METRICS, prepare_pair, score_batch
from fewcolor.metrics.stats import mean_ci95

if TYPE_CHECKING:
    from fewcolor.metrics.set_level import InceptionSet

__all__ = ["MIN_EVAL_SIDE", "EvalConfig", "evaluate_folders", "evaluate_model", "evaluate_pairs", "pair_folders",
           "prepare_pair", "unscorable"]

log = logging.getLogger(__name__)

#: smallest side scored at the truth's resolution: LPIPS-Alex's conv/pool stack needs 31 px, SSIM 11
MIN_EVAL_SIDE = 32


@dataclass
class EvalConfig:
    size: int | None = None  #: evaluate at size×size; None = the truth's own resolution
    lpips_net: str = "alex"
    fid: bool = True  #: FID/KID/IS (needs the Inception weights; slow on CPU)
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    batch_size: int = 16  #: pairs per metric batch (LPIPS, SSIM, ΔE00, ...) and per Inception batch
    device: str | None = None
    seed: int = 0  #: KID subset sampling
    grid_images: int = 24  #: images in the report's grey | truth | output grid
    worst: int = 16  #: worst images by LPIPS in the report
    inception_weights: str | None = None  #: e.g. pytorch-fid's file, to get the Inception Score
    pixel_budget: int | None = DEFAULT_PIXEL_BUDGET  #: larger files are reduced on decode (io.image)

    def check(self) -> None:
        if self.size is not None and self.size < MIN_EVAL_SIDE:
            raise ValueError(f"evaluation size must be at least {MIN_EVAL_SIDE} (LPIPS needs it), got {self.size}")
        if self.batch_size < 1:
            raise ValueError(f"evaluation batch_size must be at least 1, got {self.batch_size}")


def pair_folders(pred_dir: Path, truth_dir: Path, allow_missing: bool = False
                 ) -> tuple[list[tuple[str, Path, Path]], list[str]]:
    """``(pairs, missing)``: (name, pred, truth) matched by relative path without suffix (a .png output may
    score a .jpg truth), and the truth names with no prediction — an error unless ``allow_missing``.

    A truth's name is the one ``colorize TRUTH -o PRED`` gives its output (:func:`output_paths`), so
    ``a.png`` and ``a.jpg`` in the truth are matched to ``a_png`` and ``a_jpg``, never to one file. Of two
    predictions with one name, the PNG is used (the other is reported).
    """
    truth_files = list_images(truth_dir)
    planned = output_paths([(p, p.relative_to(truth_dir)) for p in truth_files], pred_dir)
    truths = {o.paths[0].relative_to(pred_dir).with_suffix("").as_posix(): o.source for o in planned}
    preds: dict[str, Path] = {}
    for p in list_images(pred_dir):
        key = p.relative_to(pred_dir).with_suffix("").as_posix()
        if key in preds:
            keep, drop = (p, preds[key]) if p.suffix.lower() == ".png" else (preds[key], p)
            log.warning("%s and %s are predictions for one name; scoring %s", keep, drop, keep.name)
            p = keep
        preds[key] = p
    if not truths:
        raise FileNotFoundError(f"no images in the truth folder {truth_dir}")
    missing = sorted(set(truths) - set(preds))
    if missing and not allow_missing:
        raise FileNotFoundError(
            f"{len(missing)} truth images have no prediction in {pred_dir} (matched by relative path without "
            f"suffix), e.g. {', '.join(missing[:5])}; colorize them, or pass --allow-missing to score the rest")
    if len(missing) == len(truths):
        raise FileNotFoundError(f"none of the {len(truths)} truth images has a prediction in {pred_dir} "
                                "(matched by relative path without suffix)")
    extra = sorted(set(preds) - set(truths))
    if extra:
        log.warning("%d predictions have no truth and are ignored, e.g. %s", len(extra), ", ".join(extra[:3]))
    return [(name, preds[name], truths[name]) for name in sorted(truths) if name in preds], missing


def unscorable(pred: torch.Tensor, truth: torch.Tensor, size: int | None) -> str | None:
    """Why a pair cannot be scored under the protocol, or ``None``."""
    (ph, pw), (th, tw) = pred.shape[-2:], truth.shape[-2:]
    if size is None and (ph, pw) != (th, tw):
        return (f"the prediction is {pw}x{ph} but the truth is {tw}x{th}; predict at the truth's size, or "
                "give --size N to score both resized to NxN")
    if size is None and min(th, tw) < MIN_EVAL_SIDE:
        return (f"{tw}x{th} is too small to score (LPIPS needs {MIN_EVAL_SIDE} px per side); give --size "
                f"{MIN_EVAL_SIDE} or more to score it resized")
    return None


def evaluate_pairs(pairs: Iterable[tuple[str, torch.Tensor, torch.Tensor]], out_dir: str | os.PathLike[str],
                   config: EvalConfig | None = None, total: int | None = None,
                   reference_description: dict[str, object] | None = None,
                   extra_protocol: dict[str, object] | None = None,
                   skipped: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """Score ``(name, pred, truth)`` pairs ((3,H,W) RGB in [0, 1]) and write metrics.json and report.html.

    ``reference_description`` (e.g. the truth files with sizes and mtimes) keys the cache of the truth's
    Inception features; without it they are recomputed. ``skipped`` collects ``{"name", "reason"}`` for
    each pair that cannot be scored (the caller's iterator may add its own, e.g. unreadable files); it
    is written to metrics.json and the report.
    """
    cfg = config or EvalConfig()
    cfg.check()
    skipped = [] if skipped is None else skipped
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(cfg.device or "cpu")
    lpips_model = LPIPS(cfg.lpips_net).to(device)
    inception: InceptionSet | None = None
    if cfg.fid:
        from fewcolor.metrics.set_level import InceptionSet  # the Inception stack is imported only for FID

        inception = InceptionSet(cfg.inception_weights, device, cfg.batch_size, cfg.size, reference_description)
    images = ReportImages(cfg.grid_images, cfg.worst)
    per_image: list[dict[str, Any]] = []
    batch: list[tuple[str, torch.Tensor, torch.Tensor]] = []

    def score_pending() -> None:
        """Score the pending pairs (all of one size) in one batch and hand each to the report and FID."""
        if not batch:
            return
        names = [name for name, _, _ in batch]
        preds, truths = torch.stack([p for _, p, _ in batch]), torch.stack([t for _, _, t in batch])
        for row, (name, pred, truth) in zip(score_batch(names, preds, truths, lpips_model, device), batch,
                                            strict=True):
            images.add(len(per_image), name, pred, truth, float(row["lpips"]))
            per_image.append(row)
            if inception is not None:
                inception.add(pred, truth)
        batch.clear()

    for name, pred_raw, truth_raw in tqdm(pairs, total=total, desc="evaluate", unit="img"):
        reason = unscorable(pred_raw, truth_raw, cfg.size)
        if reason is not None:
            skipped.append({"name": name, "reason": reason})
            continue
        pred, truth = prepare_pair(pred_raw, truth_raw, cfg.size)
        if batch and batch[0][1].shape != pred.shape:
            score_pending()
        batch.append((name, pred, truth))
        if len(batch) >= cfg.batch_size:
            score_pending()
    score_pending()
    if not per_image:
        why = "; ".join(f"{s['name']}: {s['reason']}" for s in skipped[:3])
        raise ValueError(f"nothing to evaluate: no image pairs could be scored{' (' + why + ')' if why else ''}")

    aggregate = {m: mean_ci95([float(r[m]) for r in per_image]) for m in PER_IMAGE_METRICS}
    set_level: dict[str, Any] = {
        f"delta_cf_set_{v}": _abs_diff(aggregate[f"cf_{v}_pred"]["mean"], aggregate[f"cf_{v}_truth"]["mean"])
        for v in ("hs", "abs")
    }
    if inception is not None:
        set_level.update(inception.results(cfg.kid_subsets, cfg.kid_subset_size, cfg.seed))
        if set_level.get("set_warning"):
            log.warning("%s", set_level["set_warning"])  # also in metrics.json (set.set_warning) and the report
    else:
        set_level["fid"] = None
        set_level["fid_note"] = "FID/KID/IS disabled (fid=False)"

    protocol = {
        "resolution": f"{cfg.size}x{cfg.size}" if cfg.size else "truth's own resolution",
        "resize": "bilinear, antialiased (prediction and truth alike)",
        "lab_round_trip": "prediction and truth: sRGB -> Lab -> sRGB (kornia, D65, clipped)",
        "psnr": "RGB in [0,1], data range 1, over all channels",
        "ssim": f"Gaussian window {SSIM_WINDOW}, sigma {SSIM_SIGMA}, K1 0.01, K2 0.03, population "
                "covariance, per RGB channel, mean over the valid region (= skimage gaussian_weights=True)",
        "lpips": {"version": "0.1", "net": cfg.lpips_net, "weights": lpips_model.weights_source},
        "delta_e2000": "mean CIEDE2000 over pixels",
        "auc": "Zhang et al. 2016: fraction of pixels with ab L2 error <= t, t = 0..150 (151 steps), "
               "trapezoid area / 150",
        "colorfulness": {"hs": "Hasler & Suesstrunk 2003: rg=R-G, yb=(R+G)/2-B on 0-255",
                         "abs": "DDColor/ColorFormer variant: |R-G|, |(R+G)/2-B| on 0-255",
                         "delta_cf": "per image |CF(pred) - CF(truth)|; "
                                     "set: |mean CF(pred) - mean CF(truth)|"},
        "fid": (inception.protocol(cfg.kid_subsets, cfg.kid_subset_size, cfg.seed)
                if inception is not None else None),
        "config": asdict(cfg),
        **(extra_protocol or {}),
    }
    result = {"protocol": protocol, "aggregate": aggregate, "set": set_level, "per_image": per_image,
              "skipped": skipped}
    write_text_atomic(out / "metrics.json", json.dumps(json_safe(result), indent=2))
    write_report(out / "report.html", result, images)
    return result


def _abs_diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else abs(a - b)


def _describe(paths: list[tuple[str, Path]]) -> dict[str, object]:
    return {name: [p.stat().st_size, p.stat().st_mtime_ns] for name, p in paths}


def evaluate_folders(pred_dir: str | os.PathLike[str], truth_dir: str | os.PathLike[str],
                     out_dir: str | os.PathLike[str], config: EvalConfig | None = None,
                     allow_missing: bool = False) -> dict[str, Any]:
    """Score the images in ``pred_dir`` against those in ``truth_dir`` (matched by relative path).

    With ``allow_missing`` only the truths that have a prediction are scored; the result's ``missing``
    (also in its protocol) lists the others."""
    pred_root, truth_root = Path(pred_dir), Path(truth_dir)
    cfg = config or EvalConfig()
    check_outside(out_dir, [truth_root, pred_root], option="-o")
    matched, missing = pair_folders(pred_root, truth_root, allow_missing)
    skipped: list[dict[str, str]] = []

    def pairs() -> Iterator[tuple[str, torch.Tensor, torch.Tensor]]:
        for name, p, t in matched:
            try:
                yield name, read_rgb(p, pixel_budget=cfg.pixel_budget), read_rgb(t, pixel_budget=cfg.pixel_budget)
            except ImageReadError as exc:
                skipped.append({"name": name, "reason": str(exc)})

    result = evaluate_pairs(pairs(), out_dir, cfg, total=len(matched),
                            reference_description=_describe([(n, t) for n, _, t in matched]),
                            extra_protocol={"pred_dir": str(pred_root), "truth_dir": str(truth_root),
                                            "truth_images": len(matched) + len(missing),
                                            "missing_predictions": len(missing), "missing": missing},
                            skipped=skipped)
    result["missing"] = missing
    return result


def _jsonable(options: Mapping[str, Any]) -> dict[str, Any]:
    """Inference options as metrics.json records them: numbers, strings and paths as themselves, anything
    else (an image given as a tensor) by its type."""
    return {k: v if isinstance(v, (bool, int, float, str)) or v is None
            else str(v) if isinstance(v, os.PathLike) else f"<{type(v).__name__}>"
            for k, v in options.items()}


def _remove_stale_predictions(pred_dir: Path, planned: set[Path]) -> None:
    """Remove the images an earlier run left in ``pred_dir`` that this run will not write (the command
    refuses an existing pred/ without --overwrite), so pred/ holds this run's colorizations only and
    re-scoring it gives this run's numbers."""
    if not pred_dir.is_dir():
        return
    stale = [p for p in list_images(pred_dir) if p not in planned]
    for path in stale:
        path.unlink()
    if stale:
        log.info("removed %d images of an earlier run from %s", len(stale), pred_dir)


def evaluate_model(checkpoint: str | os.PathLike[str], data_dir: str | os.PathLike[str],
                   out_dir: str | os.PathLike[str], config: EvalConfig | None = None,
                   work_size: int | None = None, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Colorize every image of ``data_dir`` (only its L is used) with the checkpoint and the method's
    inference ``options`` (checked before the first image), save the outputs in ``out_dir/pred`` and score
    them against the originals. Images an earlier run left in ``out_dir/pred`` that this run does not write
    (or skips) are removed, so ``pred/`` holds this run's outputs only."""
    from fewcolor.pipeline import Colorizer

    cfg = config or EvalConfig()
    cfg.check()
    root = Path(data_dir)
    pred_dir = Path(out_dir) / "pred"
    check_outside(out_dir, [root], option="-o")
    check_outside(pred_dir, [root], option="-o (its pred/ folder)", both_ways=True)
    colorizer = Colorizer.from_checkpoint(checkpoint, device=cfg.device, size=work_size)
    options = dict(options or {})
    colorizer.method.check_options(options)  # InferenceOptionError now, not one skipped image per file
    files = list_images(root)
    if not files:
        raise FileNotFoundError(f"no images in {root}")
    planned = output_paths([(p, p.relative_to(root)) for p in files], pred_dir)
    _remove_stale_predictions(pred_dir, {plan.paths[0] for plan in planned})
    skipped: list[dict[str, str]] = []

    def pairs() -> Iterator[tuple[str, torch.Tensor, torch.Tensor]]:
        for plan in planned:
            name = plan.paths[0].relative_to(pred_dir).with_suffix("").as_posix()
            try:
                truth = read_rgb(plan.source, pixel_budget=cfg.pixel_budget)
                pred = colorizer.colorize(truth, **options)
            except (ImageReadError, ValueError) as exc:
                skipped.append({"name": name, "reason": str(exc)})
                plan.paths[0].unlink(missing_ok=True)  # an earlier run's output for it is not this run's
                continue
            write_rgb(plan.paths[0], pred)
            # The score uses the 8-bit output exactly as saved, so re-scoring pred/ gives the same numbers.
            yield name, as_saved_8bit(pred), truth

    return evaluate_pairs(pairs(), out_dir, cfg, total=len(files),
                          reference_description=_describe([(p.relative_to(root).as_posix(), p)
                                                           for p in files]),
                          extra_protocol={"model": str(checkpoint), "method": colorizer.name,
                                          "data_dir": str(root), "work_size": colorizer.size,
                                          "pred_dir": str(pred_dir), "options": _jsonable(options)},
                          skipped=skipped)
