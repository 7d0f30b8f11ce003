"""Shared checks for the method tests (cgan, cic, iizuka): overfit four fixture images, odd sizes,
checkpoint round trip, exact resume."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from fewcolor.color.lab import merge_l_ab
from fewcolor.color.normalize import denormalize_ab, denormalize_l
from fewcolor.methods.base import Method
from fewcolor.methods.registry import load_method, save_method
from fewcolor.metrics.pixel import psnr
from fewcolor.train.loop import TrainOptions, train


def four_emoji(emoji_dir: Path, size: int = 32):
    """Four fixture emoji from four different class folders, resized to ``size``×``size``."""
    from fewcolor.data.folder import ImageFolderDataset
    from fewcolor.data.transforms import Resize

    folders = sorted(p for p in emoji_dir.iterdir() if p.is_dir())[:4]
    paths = [sorted(f.glob("*.png"))[0].relative_to(emoji_dir).as_posix() for f in folders]
    return ImageFolderDataset(emoji_dir, paths=paths, transform=Resize((size, size)))


def batch_of(dataset) -> dict:
    return torch.utils.data.default_collate([dataset[i] for i in range(len(dataset))])


def psnr_rgb(method: Method, batch: dict, **options) -> float:
    """Mean per-image PSNR (dB) on sRGB of the colorized batch (predicted ab merged with the true L) vs the truth."""
    method.eval()
    with torch.no_grad():
        ab = method.predict_ab(batch["l"], **options)
    rgb = merge_l_ab(denormalize_l(batch["l"]), denormalize_ab(ab))
    return float(psnr(rgb, batch["rgb"]).mean())


def grey_psnr(batch: dict) -> float:
    """PSNR of the grey image (ab = 0): what predicting "no colour" scores."""
    rgb = merge_l_ab(denormalize_l(batch["l"]), torch.zeros_like(batch["ab"]))
    return float(psnr(rgb, batch["rgb"]).mean())


def opts(out: Path, steps: int, **kw) -> TrainOptions:
    base = dict(out_dir=out, steps=steps, batch_size=4, seed=0, checkpoint_every=0, sample_every=0,
                log_every=1, progress=False, tensorboard=False)
    base.update(kw)
    return TrainOptions(**base)


def overfit(method: Method, dataset, out: Path, steps: int, key: str) -> tuple[float, float]:
    """Train with the real loop; return (mean of ``key`` over the first 3 steps, over the last 3)."""
    result = train(method, dataset, opts(out, steps))
    values = [row[key] for row in result.history]
    assert len(values) == steps
    return sum(values[:3]) / 3, sum(values[-3:]) / 3


def check_odd_size(method: Method, h: int = 40, w: int = 56) -> None:
    """predict_ab keeps H×W for sides that are multiples of size_multiple but not powers of two."""
    m = method.size_multiple
    h, w = -(-h // m) * m, -(-w // m) * m  # the pipeline rounds the working size up like this
    method.eval()
    with torch.no_grad():
        ab = method.predict_ab(torch.rand(2, 1, h, w) * 2 - 1)
    assert ab.shape == (2, 2, h, w)
    assert torch.isfinite(ab).all()


def check_roundtrip(method: Method, batch: dict, path: Path, **options) -> Method:
    method.eval()
    save_method(method, path, step=7)
    loaded = load_method(path)
    with torch.no_grad():
        a = method.predict_ab(batch["l"], **options)
        b = loaded.predict_ab(batch["l"], **options)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert loaded.checkpoint_step == 7
    return loaded


def check_resume(make: Callable[[], Method], dataset, out: Path, steps: int = 6) -> None:
    """steps in one run == steps/2, then resume to steps: identical weights and buffers."""
    torch.manual_seed(0)
    full = make()
    train(full, dataset, opts(out / "full", steps, checkpoint_every=steps // 2))
    torch.manual_seed(0)
    part = make()
    train(part, dataset, opts(out / "part", steps // 2))
    resumed = make()
    torch.manual_seed(999)  # the resumed run must not depend on the caller's RNG
    result = train(resumed, dataset, opts(out / "part", steps, resume=True))
    assert result.step == steps
    sa, sb = full.state_dict(), resumed.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
