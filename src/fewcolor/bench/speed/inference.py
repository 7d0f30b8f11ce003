"""Speed part ``inference`` (issue #18, item 4): ``evaluate`` and ``colorize`` throughput, and CLI start time.

- **evaluate**: ``evaluate_folders`` in process at 64 px without FID over N pairs, timed end to end (LPIPS
  loaded, files read, metrics, metrics.json and report.html written). The truths are crops of
  scikit-image's public-domain photos (seeded; smooth synthetic photo-like images where scikit-image is
  missing), the predictions the bundled base model's colorizations of their grey versions (at 64 px).
- **colorize**: ``Colorizer.pretrained().colorize_file`` on a 1024×768 JPEG photo at the model's own
  working size, median of several runs after a warm-up; and its parts timed alone: the network at the
  working size, the full-resolution Lab work (L of the input, L + ab back to sRGB), the PNG write.
- **CLI start**: ``python -m fewcolor --help`` and ``... evaluate --help`` in a fresh process (best of 3).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

from fewcolor.bench.speed import Row
from fewcolor.bench.speed.synthetic import smooth_images
from fewcolor.bench.speed.timing import call_seconds, median_seconds
from fewcolor.color.lab import grey_rgb_from_l, merge_l_ab, rgb_to_l
from fewcolor.io.image import write_rgb
from fewcolor.io.samples import SamplePhotosUnavailable, sample_photos
from fewcolor.metrics.evaluate import EvalConfig, evaluate_folders
from fewcolor.pipeline import Colorizer

PART = "inference"
EVAL_SIZE = 64
EVAL_TARGET = 20.0  #: images/s (issue #18)
COLORIZE_TARGET = 0.5  #: s per 1024x768 photo (issue #18)
PHOTO_SIZE = (768, 1024)  #: (H, W)
CROP = 192  #: side of the evaluation truths
#: scikit-image's bundled photos (public domain / CC0)
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def _photos(seed: int) -> tuple[list[torch.Tensor], str]:
    """(3,H,W) photos in [0, 1] and their description: scikit-image's photos, else synthetic ones."""
    try:
        photos = [rgb for _, rgb in sample_photos(PHOTOS)]
    except SamplePhotosUnavailable:
        smooth = smooth_images(len(PHOTOS), (480, 640), (12, 16), seed, grain=0.02)
        return list(smooth), "synthetic smooth colour fields with grain (no scikit-image)"
    return photos, f"scikit-image photos ({', '.join(PHOTOS)})"


def _crops(photos: list[torch.Tensor], n: int, side: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        photo = photos[i % len(photos)]
        top = int(torch.randint(0, photo.shape[-2] - side + 1, (1,), generator=g))
        left = int(torch.randint(0, photo.shape[-1] - side + 1, (1,), generator=g))
        out.append(photo[:, top : top + side, left : left + side].contiguous())
    return out


def measure_evaluate(colorizer: Colorizer, n: int, root: Path) -> Row:
    photos, source = _photos(seed=0)
    truths = _crops(photos, n, CROP, seed=0)
    # the predictions only need to be genuine model outputs: the network runs at 64 px to keep set-up short
    small = Colorizer(colorizer.method, device="cpu", size=EVAL_SIZE)
    preds = small.colorize([grey_rgb_from_l(rgb_to_l(t[None]))[0] for t in truths])
    for i, (truth, pred) in enumerate(zip(truths, preds, strict=True)):
        write_rgb(root / "truth" / f"{i:04d}.png", truth)
        write_rgb(root / "pred" / f"{i:04d}.png", pred)
    start = time.perf_counter()
    result = evaluate_folders(root / "pred", root / "truth", root / "eval", EvalConfig(size=EVAL_SIZE, fid=False))
    seconds = time.perf_counter() - start
    scored = len(result["per_image"])
    return Row(PART, f"evaluate {EVAL_SIZE} px, no FID", scored / seconds, "img/s", EVAL_TARGET,
               note=f"{scored} pairs {CROP}x{CROP} PNG, end to end in process ({seconds:.2f} s: LPIPS load, "
                    f"read, metrics, report); truths: {source}; predictions: the bundled base model at 64 px")


def measure_colorize(colorizer: Colorizer, runs: int, root: Path) -> list[Row]:
    photos, source = _photos(seed=1)
    height, width = PHOTO_SIZE
    photo = F.interpolate(photos[1][None], size=PHOTO_SIZE, mode="bicubic", align_corners=False)[0].clamp(0, 1)
    src, dst = root / "photo.jpg", root / "photo_colorized.png"
    write_rgb(src, grey_rgb_from_l(rgb_to_l(photo[None]))[0], quality=92)
    total = median_seconds(lambda: colorizer.colorize_file(src, dst), runs)

    with torch.no_grad():
        _, l_small = colorizer.working_l(photo)
        network = median_seconds(lambda: colorizer.method.predict_ab(l_small), runs)
    ab = torch.zeros(1, 2, height, width)
    lab = median_seconds(lambda: merge_l_ab(rgb_to_l(photo[None]), ab), runs)
    png = median_seconds(lambda: write_rgb(root / "write.png", photo), runs)
    work = f"{int(l_small.shape[-1])}x{int(l_small.shape[-2])}"
    return [
        Row(PART, "colorize 1024x768 photo", total, "s", COLORIZE_TARGET, higher_is_better=False,
            note=f"bundled base model, working size {work}, read JPEG + colorize + write PNG, median of {runs}; "
                 f"photo: {source.split(' (')[0]} upscaled"),
        Row(PART, "  of which network", network, "s", note=f"predict_ab at {work}, timed alone"),
        Row(PART, "  of which Lab at full size", lab, "s", note="L of the input + L,ab back to sRGB, timed alone"),
        Row(PART, "  of which PNG write", png, "s", note="write_rgb 1024x768 PNG, timed alone"),
    ]


def measure_cli(runs: int) -> list[Row]:
    rows = []
    for args in (["--help"], ["evaluate", "--help"]):
        command = [sys.executable, "-m", "fewcolor", *args]
        best = min(call_seconds(partial(subprocess.run, command, check=True, capture_output=True), runs, warmup=0))
        rows.append(Row(PART, f"CLI start: fewcolor {' '.join(args)}", best, "s", higher_is_better=False,
                        note=f"fresh Python process, best of {runs}"))
    return rows


def measure(quick: bool) -> list[Row]:
    """The part's rows; ``quick`` (fewer pairs and runs) finishes in well under 30 s on 2 cores."""
    colorizer = Colorizer.pretrained(device="cpu")
    with tempfile.TemporaryDirectory(prefix="fewcolor-speed-") as tmp:
        root = Path(tmp)
        rows = [measure_evaluate(colorizer, 48 if quick else 256, root)]
        rows += measure_colorize(colorizer, 3 if quick else 9, root)
    return rows + measure_cli(2 if quick else 3)
