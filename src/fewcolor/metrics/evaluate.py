"""``fewcolor evaluate``: score colorized images against the truth and write metrics.json + report.html.

Protocol (written into every result):

- prediction and truth are read as sRGB in [0, 1]; with ``size`` both are resized to ``size × size``
  (bilinear, antialiased), otherwise a prediction whose size differs from its truth is resized to the
  truth's size;
- both then go through the same Lab round-trip (sRGB → Lab → sRGB, kornia D65, out-of-gamut clipped), so
  the truth sees exactly the processing a colorized output sees;
- per image: PSNR, SSIM (Gaussian 11/1.5), LPIPS v0.1, mean CIEDE2000, Zhang's AuC, colourfulness
  (Hasler–Süsstrunk and the DDColor abs() variant) and ΔCF; per set: FID and KID on Inception pool3
  (resized to 299 bilinear), the Inception Score only with 1008-way logits weights.
"""

from __future__ import annotations

import heapq
import json
import logging
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from fewcolor.color.lab import grey_rgb_from_l, lab_to_rgb, rgb_to_lab
from fewcolor.io.atomic import write_text_atomic
from fewcolor.io.html import ImageCell, Page
from fewcolor.io.image import list_images, read_rgb, write_rgb
from fewcolor.metrics.color import (
    auc_ab,
    colorfulness_abs,
    colorfulness_hs,
    mean_delta_e2000,
)
from fewcolor.metrics.fid import (
    FID_RESIZE,
    InceptionFeatures,
    fid_from_features,
    inception_score,
    kernel_inception_distance,
    load_cached_features,
    reference_key,
    store_cached_features,
)
from fewcolor.metrics.lpips import LPIPS
from fewcolor.metrics.pixel import SSIM_SIGMA, SSIM_WINDOW, psnr, ssim
from fewcolor.metrics.stats import mean_ci95

log = logging.getLogger(__name__)

PER_IMAGE_METRICS = ("psnr", "ssim", "lpips", "delta_e2000", "auc", "cf_hs_pred", "cf_hs_truth",
                     "delta_cf_hs", "cf_abs_pred", "cf_abs_truth", "delta_cf_abs")
THUMB = 128


@dataclass
class EvalConfig:
    size: int | None = None  #: evaluate at size×size; None = the truth's own resolution
    lpips_net: str = "alex"
    fid: bool = True  #: FID/KID/IS (needs the Inception weights; slow on CPU)
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    batch_size: int = 16
    device: str | None = None
    seed: int = 0  #: KID subset sampling
    grid_images: int = 24  #: images in the report's grey | truth | output grid
    worst: int = 16  #: worst images by LPIPS in the report
    inception_weights: str | None = None  #: e.g. pytorch-fid's file, to get the Inception Score


def _resize(img: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(img.shape[-2:]) == size:
        return img
    out = F.interpolate(img[None], size=size, mode="bilinear", antialias=True, align_corners=False)
    return out[0].clamp(0, 1)


def prepare_pair(pred: torch.Tensor, truth: torch.Tensor, size: int | None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply the evaluation protocol (resize, then the same Lab round-trip) to a (3,H,W) pair."""
    if pred.shape[0] == 1:
        pred = pred.expand(3, -1, -1)
    if truth.shape[0] == 1:
        truth = truth.expand(3, -1, -1)
    target = (size, size) if size else tuple(truth.shape[-2:])
    pred, truth = _resize(pred.float(), target), _resize(truth.float(), target)  # type: ignore[arg-type]
    both = lab_to_rgb(rgb_to_lab(torch.stack([pred, truth])))
    return both[0], both[1]


def _thumb(img: torch.Tensor) -> torch.Tensor:
    h, w = img.shape[-2:]
    scale = THUMB / max(h, w)
    if scale >= 1:
        return img.clone()
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return F.interpolate(img[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0]


def _json_safe(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def pair_folders(pred_dir: Path, truth_dir: Path) -> list[tuple[str, Path, Path]]:
    """(name, pred, truth) matched by relative path without suffix (a .png output may score a .jpg truth)."""
    truths = {p.relative_to(truth_dir).with_suffix("").as_posix(): p for p in list_images(truth_dir)}
    preds = {p.relative_to(pred_dir).with_suffix("").as_posix(): p for p in list_images(pred_dir)}
    if not truths:
        raise FileNotFoundError(f"no images in the truth folder {truth_dir}")
    missing = sorted(set(truths) - set(preds))
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} truth images have no prediction in {pred_dir} (matched by relative path without "
            f"suffix), e.g. {', '.join(missing[:5])}; colorize them or remove them from {truth_dir}")
    extra = sorted(set(preds) - set(truths))
    if extra:
        log.warning("%d predictions have no truth and are ignored, e.g. %s", len(extra), ", ".join(extra[:3]))
    return [(name, preds[name], truths[name]) for name in sorted(truths)]


def evaluate_pairs(pairs: Iterable[tuple[str, torch.Tensor, torch.Tensor]], out_dir: str | os.PathLike[str],
                   config: EvalConfig | None = None, total: int | None = None,
                   reference_description: dict[str, object] | None = None,
                   extra_protocol: dict[str, object] | None = None) -> dict[str, object]:
    """Score ``(name, pred, truth)`` pairs ((3,H,W) RGB in [0, 1]) and write metrics.json and report.html.

    ``reference_description`` (e.g. the truth files with sizes and mtimes) keys the cache of the truth's
    Inception features; without it they are recomputed.
    """
    cfg = config or EvalConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(cfg.device or "cpu")
    lpips_model = LPIPS(cfg.lpips_net).to(device)
    inception = InceptionFeatures(cfg.inception_weights, device=device) if cfg.fid else None

    ref_key = None
    ref_cached = None
    if inception is not None and reference_description is not None:
        ref_key = reference_key({"truth": reference_description, "size": cfg.size, "resize": FID_RESIZE,
                                 "inception": inception.fingerprint, "lab_round_trip": True})
        ref_cached = load_cached_features(ref_key)

    per_image: list[dict[str, object]] = []
    grid: list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor]] = []
    worst: list[tuple[float, int, str, torch.Tensor, torch.Tensor, torch.Tensor]] = []
    pred_feats, truth_feats, pred_logits = [], [], []
    batch_pred, batch_truth = [], []

    def flush() -> None:
        if inception is None or not batch_pred:
            return
        preds = torch.stack(batch_pred)
        pred_feats.append(inception.pool3(preds))
        if inception.has_logits:
            pred_logits.append(inception.logits(preds))
        if ref_cached is None:
            truth_feats.append(inception.pool3(torch.stack(batch_truth)))
        batch_pred.clear()
        batch_truth.clear()

    def to_299(img: torch.Tensor) -> torch.Tensor:
        return F.interpolate(img[None], size=(299, 299), mode="bilinear", align_corners=False)[0]

    progress = tqdm(pairs, total=total, desc="evaluate", unit="img")
    for index, (name, pred_raw, truth_raw) in enumerate(progress):
        pred, truth = prepare_pair(pred_raw, truth_raw, cfg.size)
        p, t = pred[None].to(device), truth[None].to(device)
        with torch.no_grad():
            row: dict[str, object] = {
                "name": name,
                "height": int(pred.shape[-2]),
                "width": int(pred.shape[-1]),
                "psnr": float(psnr(p, t)[0]),
                "ssim": float(ssim(p, t)[0]) if min(pred.shape[-2:]) >= SSIM_WINDOW else float("nan"),
                "lpips": float(lpips_model(p, t)[0]),
                "delta_e2000": float(mean_delta_e2000(p, t)[0]),
                "auc": float(auc_ab(p, t)[0]),
            }
            for variant, fn in (("hs", colorfulness_hs), ("abs", colorfulness_abs)):
                cf_p, cf_t = float(fn(p)[0]), float(fn(t)[0])
                row[f"cf_{variant}_pred"], row[f"cf_{variant}_truth"] = cf_p, cf_t
                row[f"delta_cf_{variant}"] = abs(cf_p - cf_t)
        per_image.append(row)
        if len(grid) < cfg.grid_images or cfg.worst > 0:
            grey = grey_rgb_from_l(rgb_to_lab(truth[None])[:, :1])[0]
            thumbs = (_thumb(grey), _thumb(truth), _thumb(pred))
            if len(grid) < cfg.grid_images:
                grid.append((name, *thumbs))
            item = (float(row["lpips"]), index, name, *thumbs)  # type: ignore[arg-type]
            if len(worst) < cfg.worst:
                heapq.heappush(worst, item)
            elif cfg.worst > 0 and item[0] > worst[0][0]:
                heapq.heapreplace(worst, item)
        if inception is not None:
            batch_pred.append(to_299(pred))
            batch_truth.append(to_299(truth))
            if len(batch_pred) >= cfg.batch_size:
                flush()
    flush()
    if not per_image:
        raise ValueError("nothing to evaluate: no image pairs")

    aggregate = {m: mean_ci95([float(r[m]) for r in per_image]) for m in PER_IMAGE_METRICS}  # type: ignore[arg-type]
    set_level: dict[str, object] = {
        "delta_cf_set_hs": abs(aggregate["cf_hs_pred"]["mean"] - aggregate["cf_hs_truth"]["mean"]),  # type: ignore[operator]
        "delta_cf_set_abs": abs(aggregate["cf_abs_pred"]["mean"] - aggregate["cf_abs_truth"]["mean"]),  # type: ignore[operator]
    }
    if inception is not None:
        fp = torch.cat(pred_feats)
        if ref_cached is not None:
            ft = ref_cached
        else:
            ft = torch.cat(truth_feats)
            if ref_key is not None:
                store_cached_features(ref_key, ft)
        if len(fp) >= 2:
            set_level["fid"] = fid_from_features(fp.numpy(), ft.numpy())
            kid_mean, kid_std = kernel_inception_distance(fp, ft, cfg.kid_subsets, cfg.kid_subset_size,
                                                          cfg.seed)
            set_level["kid_mean"], set_level["kid_std"] = kid_mean, kid_std
        else:
            set_level["fid"] = set_level["kid_mean"] = None
            set_level["fid_note"] = "FID/KID need at least 2 images"
        if pred_logits:
            is_mean, is_std = inception_score(torch.cat(pred_logits))
            set_level["inception_score"] = {"available": True, "mean": is_mean, "std": is_std}
        else:
            set_level["inception_score"] = {
                "available": False,
                "reason": "the Inception weights in use have no 1008-way classifier; supply pytorch-fid's "
                          "pt_inception-2015-12-05-6726825d.pth (inception_weights / --inception-weights)",
            }
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
        "fid": ({"features": "InceptionV3 (TF inception-2015-12-05) pool3, 2048-d", "resize": FID_RESIZE,
                 "weights": inception.weights_source,
                 "kid": {"kernel": "(x.y/d + 1)^3", "subsets": cfg.kid_subsets,
                         "subset_size": cfg.kid_subset_size, "seed": cfg.seed},
                 "reference_features_cached": ref_cached is not None}
                if inception is not None else None),
        "config": asdict(cfg),
        **(extra_protocol or {}),
    }
    result = {"protocol": protocol, "aggregate": aggregate, "set": set_level, "per_image": per_image}
    write_text_atomic(out / "metrics.json", json.dumps(_json_safe(result), indent=2))
    _write_report(out / "report.html", result, grid, sorted(worst, reverse=True))
    return result


def _write_report(path: Path, result: dict[str, object], grid: list, worst: list) -> None:
    page = Page(path, "fewcolor evaluation")
    aggregate: dict[str, dict[str, object]] = result["aggregate"]  # type: ignore[assignment]
    page.heading("Per-image metrics (mean and 95 % CI)")
    rows = [[m, a["mean"], a["ci95_low"] if a["ci95_low"] is not None else "-",
             a["ci95_high"] if a["ci95_high"] is not None else "-", a["n"]] for m, a in aggregate.items()]
    page.number_table(["metric", "mean", "CI low", "CI high", "n"], rows)
    page.heading("Set-level metrics")
    set_rows = []
    for key, value in result["set"].items():  # type: ignore[union-attr]
        if isinstance(value, dict):
            value = f"{value['mean']:.4g} ± {value['std']:.3g}" if value.get("available") else "unavailable"
        set_rows.append([key, "-" if value is None else value])
    page.number_table(["metric", "value"], set_rows)
    page.heading("grey | truth | output")
    page.image_table(["grey", "truth", "output"],
                     [[ImageCell(g), ImageCell(t), ImageCell(o)] for _, g, t, o in grid],
                     row_labels=[name for name, *_ in grid])
    page.heading(f"Worst {len(worst)} by LPIPS")
    page.image_table(["grey", "truth", "output"],
                     [[ImageCell(g), ImageCell(t), ImageCell(o, f"LPIPS {lp:.3f}")]
                      for lp, _, _, g, t, o in worst],
                     row_labels=[name for _, _, name, *_ in worst])
    page.heading("Protocol")
    page.preformatted(json.dumps(_json_safe(result["protocol"]), indent=2))
    page.write()


def _describe(paths: list[tuple[str, Path]]) -> dict[str, object]:
    return {name: [p.stat().st_size, p.stat().st_mtime_ns] for name, p in paths}


def evaluate_folders(pred_dir: str | os.PathLike[str], truth_dir: str | os.PathLike[str],
                     out_dir: str | os.PathLike[str], config: EvalConfig | None = None) -> dict[str, object]:
    """Score the images in ``pred_dir`` against those in ``truth_dir`` (matched by relative path)."""
    pred_root, truth_root = Path(pred_dir), Path(truth_dir)
    matched = pair_folders(pred_root, truth_root)

    def pairs() -> Iterator[tuple[str, torch.Tensor, torch.Tensor]]:
        for name, p, t in matched:
            yield name, read_rgb(p), read_rgb(t)

    return evaluate_pairs(pairs(), out_dir, config, total=len(matched),
                          reference_description=_describe([(n, t) for n, _, t in matched]),
                          extra_protocol={"pred_dir": str(pred_root), "truth_dir": str(truth_root)})


def evaluate_model(checkpoint: str | os.PathLike[str], data_dir: str | os.PathLike[str],
                   out_dir: str | os.PathLike[str], config: EvalConfig | None = None,
                   work_size: int | None = None) -> dict[str, object]:
    """Colorize every image of ``data_dir`` (only its L is used) with the checkpoint, save the outputs in
    ``out_dir/pred`` and score them against the originals."""
    from fewcolor.pipeline import Colorizer

    cfg = config or EvalConfig()
    colorizer = Colorizer.from_checkpoint(checkpoint, device=cfg.device, size=work_size)
    root = Path(data_dir)
    files = list_images(root)
    if not files:
        raise FileNotFoundError(f"no images in {root}")
    pred_dir = Path(out_dir) / "pred"

    def pairs() -> Iterator[tuple[str, torch.Tensor, torch.Tensor]]:
        for path in files:
            name = path.relative_to(root).with_suffix("").as_posix()
            truth = read_rgb(path)
            pred = colorizer.colorize(truth)
            write_rgb(pred_dir / f"{name}.png", pred)
            # The score uses the 8-bit output exactly as saved, so re-scoring pred/ gives the same numbers.
            yield name, (pred.clamp(0, 1) * 255).round() / 255, truth

    return evaluate_pairs(pairs(), out_dir, cfg, total=len(files),
                          reference_description=_describe([(p.relative_to(root).as_posix(), p)
                                                           for p in files]),
                          extra_protocol={"model": str(checkpoint), "method": colorizer.name,
                                          "data_dir": str(root), "work_size": colorizer.size,
                                          "pred_dir": str(pred_dir)})
