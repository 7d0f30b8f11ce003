"""Speed part "setup": the passes that run before a method's first training step (issue #18, item 3).

* **CIC ab prior**: CIC's own :meth:`~fewcolor.methods.cic.CIC.setup` (``cpu`` preset, 64-px training
  crops, cache off) over small images, in images per second (target 200).
* **Cluster descriptors**: the MAC descriptors of :func:`fewcolor.backbones.clustering.cluster_dataset` at
  its default input side, in images per second.
* **Clustering 5,000 images**: the descriptor time for 5,000 images at the measured rate plus PCA and
  K-means (the default k = 64, PCA to 512) timed on 5,000 descriptors (quick: on 1,000, scaled ×5), in
  seconds (target 120). K-means runs on the measured descriptors repeated with a little noise up to that
  count (its cost grows with its iterations, which real-looking data keeps realistic).

Images: the prepared ``pokemon-frames`` sprites (96 px) for the prior and Imagenette's training photos
(``FEWCOLOR_HOME/raw/imagenette-224``) or the prepared ``tinyimagenet-fs`` for the descriptors; where
neither is on the machine, seeded synthetic images written to a temporary folder (the note says which).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F

from fewcolor.backbones.clustering import (
    DEFAULT_FEATURE_SIZE,
    DESCRIPTOR_BATCH,
    backbone_precision,
    build_extractor,
    dataset_descriptors,
    descriptors,
    int8_descriptor,
    resolve_backbone,
)
from fewcolor.bench.speed import Row
from fewcolor.bench.speed.synthetic import smooth_images
from fewcolor.data.folder import ImageFolderDataset
from fewcolor.data.recipes import dataset_dir, is_prepared
from fewcolor.data.tasks import fit_tasks
from fewcolor.data.transforms import train_transform
from fewcolor.hardware import descriptor_precision
from fewcolor.home import fewcolor_home
from fewcolor.io.image import list_images, write_rgb
from fewcolor.methods.registry import build_method

PART = "setup"
PRIOR_TARGET = 200.0  #: images per second (issue #18)
CLUSTER_IMAGES = 5000
CLUSTER_TARGET = 120.0  #: seconds for CLUSTER_IMAGES images (issue #18)


def measure(quick: bool) -> list[Row]:
    """The prior rate, the descriptor rate and the 5,000-image clustering time; ``quick`` takes < 30 s."""
    return [_prior_row(300 if quick else 2000),
            *_cluster_rows(32 if quick else 320, k=64, fit_images=1000 if quick else CLUSTER_IMAGES)]


@contextmanager
def _images(candidates: list[tuple[Path, str]], n: int, side: int) -> Iterator[tuple[ImageFolderDataset, str]]:
    """The first of ``candidates`` (folder, name) that exists, as a dataset of its first ``n`` images (sorted
    paths, every ``step``-th to spread over the classes), else ``n`` synthetic ``side``² images."""
    for root, name in candidates:
        if root.is_dir():
            paths = sorted(p.relative_to(root).as_posix() for p in list_images(root))
            step = max(1, len(paths) // n)
            yield ImageFolderDataset(root, paths=paths[::step][:n]), name
            return
    with tempfile.TemporaryDirectory(prefix="fewcolor-speed-") as tmp:
        g = torch.Generator().manual_seed(0)
        for i in range(n):  # one at a time (n may be thousands): a 4×4 random image upsampled
            write_rgb(Path(tmp) / f"{i:05d}.png", smooth_images(1, (side, side), (4, 4), g)[0])
        yield ImageFolderDataset(tmp, scan_cache=False), f"{n} synthetic {side}px images"


def _prior_row(n: int) -> Row:
    sprites = dataset_dir("pokemon-frames")
    candidates = [(sprites, "pokemon-frames sprites (96px)")] if is_prepared("pokemon-frames") else []
    method = build_method("cic", "cpu", {"prior_cache": False})
    size = int(method.config.image_size)
    with _images(candidates, n, 96) as (data, name):
        data.transform = train_transform(size)
        start = time.perf_counter()
        method.setup(data)
        seconds = time.perf_counter() - start
    return Row(PART, "CIC ab-prior pass", len(data) / seconds, "img/s", PRIOR_TARGET,
               note=f"{len(data)} {name}, {size}px crops (cic cpu preset), {torch.get_num_threads()} threads")


def _cluster_rows(n: int, k: int, fit_images: int) -> list[Row]:
    """Descriptor rate on ``n`` photos; PCA + K-means timed on ``fit_images`` descriptors, scaled linearly to
    :data:`CLUSTER_IMAGES` when fewer (Lloyd iterations cost O(N))."""
    home = fewcolor_home()
    candidates = [(home / "raw" / "imagenette-224" / "train", "Imagenette photos"),
                  (dataset_dir("tinyimagenet-fs") / "train", "tinyimagenet-fs photos")]
    name, layer, pretrained = resolve_backbone("auto")
    extractor = build_extractor(name, layer, pretrained)
    size = DEFAULT_FEATURE_SIZE
    # as MetalGAN's and Iizuka's set-up passes and `fewcolor cluster` choose it
    precision = backbone_precision(descriptor_precision(), name, layer)
    bf16 = precision == "bf16"
    with _images(candidates, n, 160) as (data, source):
        start = time.perf_counter()
        net = int8_descriptor(extractor, {"feature_size": size}, data) if precision == "int8" else extractor
        calibration_seconds = time.perf_counter() - start  # int8 only: once per clustering
        descriptors(net, torch.zeros(DESCRIPTOR_BATCH, 1, size, size), bf16)  # warm-up: oneDNN picks its kernels here
        start = time.perf_counter()
        feats = dataset_descriptors(data, net, size, progress=False, bf16=bf16)
        rate = len(data) / (time.perf_counter() - start)
    g = torch.Generator().manual_seed(0)
    fit_images = min(fit_images, CLUSTER_IMAGES)
    many = feats.repeat(fit_images // len(feats) + 1, 1)[:fit_images]
    many = F.normalize(many + 0.02 * torch.randn(many.shape, generator=g), dim=1)
    start = time.perf_counter()
    fit_tasks(many, min(k, fit_images), pca_dim=512, seed=0)
    fit_seconds = (time.perf_counter() - start) * CLUSTER_IMAGES / fit_images
    total = CLUSTER_IMAGES / rate + fit_seconds + calibration_seconds
    what = f"{name}/{layer} at {size}px, " + {"bf16": "bf16 autocast", "int8": "int8 (quantized copy)"}.get(
        precision, "fp32")
    return [
        Row(PART, "cluster descriptors", rate, "img/s",
            note=f"{what}, {len(data)} {source}, {torch.get_num_threads()} threads"),
        Row(PART, f"clustering {CLUSTER_IMAGES:,} images", total, "s", CLUSTER_TARGET, higher_is_better=False,
            note=f"descriptors at the rate above + PCA/K-means (k={k}) {fit_seconds:.1f} s"
                 + (f" + int8 calibration {calibration_seconds:.1f} s" if precision == "int8" else "")
                 + (f" (timed on {fit_images}, scaled)" if fit_images < CLUSTER_IMAGES else "")),
    ]
