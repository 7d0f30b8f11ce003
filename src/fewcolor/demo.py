"""``fewcolor demo``: a few minutes on CPU from colour images to a page of colorized held-out images."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from fewcolor.io.html import ImageCell

if TYPE_CHECKING:
    from fewcolor.data.protocol import Dataset
    from fewcolor.methods.base import Method
    from fewcolor.pipeline import Colorizer

log = logging.getLogger(__name__)

FIXTURE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "emoji"

#: written into ``OUT/run`` before the demo trains there: the only kind of folder a later demo replaces
RUN_MARKER = ".fewcolor-demo-run"
#: what a training run writes into its folder (fewcolor.train.loop): a demo run made before the marker existed
_RUN_LAYOUT = frozenset({".lock", "checkpoints", "run.json", "log.csv", "validation.csv", "events", "samples",
                         "model.safetensors"})


def is_demo_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` is a run folder an earlier demo made (its marker, or, for one made before the
    marker, nothing but what a training run writes, with its run.json): the only folder it may delete."""
    if (run_dir / RUN_MARKER).is_file():
        return True
    names = {p.name for p in run_dir.iterdir()}
    return "run.json" in names and names <= _RUN_LAYOUT


def check_demo_paths(out_dir: Path, data_dir: Path) -> None:
    """Refuse, before any work, an output folder inside (or equal to) the data, data inside the run folder
    the demo replaces, and a ``run`` folder there that an earlier demo did not make."""
    from fewcolor.io.paths import OutputPathError, check_outside, is_within

    check_outside(out_dir, [data_dir], option="-o")
    run_dir = out_dir / "run"
    if is_within(data_dir, run_dir):
        raise OutputPathError(f"--data {data_dir} is inside {run_dir}, the folder the demo trains into (and "
                              "replaces); move the images or choose another -o")
    if run_dir.exists() and not (run_dir.is_dir() and is_demo_run(run_dir)):
        raise OutputPathError(f"-o {out_dir}: {run_dir} exists and is not an earlier demo run, so the demo will not "
                              "replace it; choose another -o (or remove that folder yourself)")


def holdout_split(dataset_paths: list[str], labels: list[int], per_class: int = 1) -> tuple[list[int], list[int]]:
    """Indices (train, held-out): the last ``per_class`` images of each class (sorted order) are held out."""
    by_class: dict[int, list[int]] = {}
    for i, lab in enumerate(labels):
        by_class.setdefault(lab, []).append(i)
    held = sorted(i for idx in by_class.values() for i in sorted(idx, key=lambda j: dataset_paths[j])[-per_class:])
    train = [i for i in range(len(labels)) if i not in set(held)]
    return train, held


def calibrate_steps(method: Method, dataset: Dataset, seconds: float, batch_size: int) -> int:
    """How many steps fit in ``seconds``: time two training steps on this machine."""
    import time

    from fewcolor.train.loop import collate_samples

    optimizers = method.configure_optimizers()
    batch = collate_samples(dataset, [i % len(dataset) for i in range(batch_size)], 0)
    method.train()
    times = []
    for step in range(3):
        t0 = time.perf_counter()
        for phase in method.training_step(batch, step):
            optimizers[phase.optimizer].zero_grad()
            if phase.loss is not None:
                phase.loss.backward()
            optimizers[phase.optimizer].step()
        times.append(time.perf_counter() - t0)
    per_step = min(times[1:])  # the first step pays one-off allocation costs
    return max(20, int(seconds / per_step))


#: real photos shipped with scikit-image (public domain / CC0), shown first: the bundled model at work
DEMO_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def photo_rows(colorizer: Colorizer) -> list[list[ImageCell | str | None]]:
    """grey | truth | bundled model rows for :data:`DEMO_PHOTOS` at full resolution (none without skimage)."""
    from fewcolor.color.lab import grey_rgb_from_l, rgb_to_l
    from fewcolor.io.samples import SamplePhotosUnavailable, sample_photos

    try:
        photos = sample_photos(DEMO_PHOTOS)
    except SamplePhotosUnavailable:
        log.info("demo: scikit-image is not installed; no real photos on the page")
        return []
    rows: list[list[ImageCell | str | None]] = []
    for name, truth in photos:
        grey = grey_rgb_from_l(rgb_to_l(truth[None]))[0]
        with torch.no_grad():
            output = colorizer.colorize(grey)
        rows.append([ImageCell(grey, f"{name}: grey input"), ImageCell(truth, "truth"),
                     ImageCell(output, "bundled base model")])
    return rows


def run_demo(
    out_dir: Path,
    data_dir: Path | None = None,
    seconds: float = 120.0,
    seed: int = 0,
    method_name: str = "unet",
    preset: str = "cpu",
) -> Path:
    from torch.utils.data import Subset

    from fewcolor.color.lab import grey_rgb_from_l, rgb_to_l
    from fewcolor.data.folder import ImageFolderDataset
    from fewcolor.io.html import ImageCell, Page
    from fewcolor.io.image import read_rgb
    from fewcolor.methods.registry import build_method
    from fewcolor.pipeline import Colorizer
    from fewcolor.train.loop import TrainOptions, train

    data_dir = Path(data_dir) if data_dir else FIXTURE
    if not data_dir.is_dir():
        raise FileNotFoundError(f"demo data folder {data_dir} is missing; pass --data FOLDER_OF_COLOUR_IMAGES")
    out_dir = Path(out_dir)
    check_demo_paths(out_dir, data_dir)
    method = build_method(method_name, preset)
    size = method.config.image_size
    full = ImageFolderDataset(data_dir, transform=method.train_transform(size), seed=seed, cache=True)
    train_idx, held_idx = holdout_split([str(p) for p in full.paths], list(full.labels))
    steps = calibrate_steps(method, Subset(full, train_idx), seconds, batch_size=8)
    torch.manual_seed(seed)
    method = build_method(method_name, preset)  # fresh weights: calibration trained the other copy
    run_dir = out_dir / "run"
    opts = TrainOptions(out_dir=run_dir, steps=steps, batch_size=8, seed=seed, checkpoint_every=200, sample_every=100)
    if run_dir.exists():
        check_demo_paths(out_dir, data_dir)  # again: the calibration took a while
        log.info("demo: %s already holds a demo run; training a fresh one in its place", run_dir)
        import shutil

        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    (run_dir / RUN_MARKER).write_text("made by `fewcolor demo`, which replaces this folder on its next run\n")
    log.info(
        "demo: training %s (%s preset) on %d images from %s: %d steps (about %.0f s here)",
        method_name,
        preset,
        len(train_idx),
        data_dir,
        steps,
        seconds,
    )
    result = train(method, Subset(full, train_idx), opts)

    if result.checkpoint is None:
        raise RuntimeError("the demo's training run wrote no model")
    colorizer = Colorizer.from_checkpoint(result.checkpoint, device="cpu")
    rows = []
    labels = []
    for i in held_idx:
        path = data_dir / full.paths[i]
        truth = read_rgb(path)
        grey = grey_rgb_from_l(rgb_to_l(truth[None]))[0]
        with torch.no_grad():
            output = colorizer.colorize(grey)
        rows.append([ImageCell(grey, "grey input"), ImageCell(truth, "truth"), ImageCell(output, method_name)])
        labels.append(str(full.paths[i]))
    page = Page(out_dir / "index.html", "fewcolor demo")
    from fewcolor.pretrained import bundled_model_path

    bundled = bundled_model_path()
    if bundled is not None:
        page.heading("The bundled base colorizer on real photos (no training)")
        page.paragraph("`fewcolor colorize PHOTOS -o OUT` with no model uses it; docs/MODEL_CARD.md says how it "
                       "was trained and what it measures.")
        rows_photos = photo_rows(Colorizer.pretrained(device="cpu"))
        if rows_photos:
            page.image_table(["grey", "truth", "output"], rows_photos, row_labels=list(DEMO_PHOTOS))
    page.heading("Few-shot: a network trained in minutes on your images, held-out images coloured")
    page.paragraph(
        f"{method_name} ({preset} preset) trained for {result.step} steps "
        f"({result.wall_seconds:.0f} s) on {len(train_idx)} images of {data_dir}; "
        f"{len(held_idx)} held-out images, one per class, colorized from grey."
    )
    page.image_table(["grey", "truth", "output"], rows, row_labels=labels)
    return page.write()
