"""Deterministic, seeded image transforms on ``(3, H, W)`` (or ``(B, 3, H, W)``) tensors.

Random transforms draw only from the ``torch.Generator`` passed at call time::

    t = train_transform(256)
    out = t(img, generator_for(seed, epoch, index))

so a dataset that derives the generator from ``(seed, epoch, index)`` with :func:`generator_for`
returns exactly the same sample for the same triple, in any process, on any worker.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "CenterCrop",
    "Compose",
    "RandomCrop",
    "RandomHorizontalFlip",
    "RandomScale",
    "Resize",
    "Transform",
    "eval_transform",
    "few_shot_transform",
    "generator_for",
    "pad_square_resize",
    "split_deterministic",
    "train_transform",
    "working_size",
]

Size = int | tuple[int, int]


def working_size(height: int, width: int, target: int, multiple: int) -> tuple[int, int]:
    """Scale so the longer side is about ``target``, keep the aspect, round sides to ``multiple``."""
    scale = target / max(height, width)
    h = max(multiple, round(height * scale / multiple) * multiple)
    w = max(multiple, round(width * scale / multiple) * multiple)
    return h, w


def generator_for(seed: int, epoch: int, index: int) -> torch.Generator:
    """A CPU generator seeded from ``(seed, epoch, index)``; stable across processes and Python runs.

    (Python's ``hash`` is salted per process, so the triple goes through BLAKE2b instead.)
    """
    digest = hashlib.blake2b(f"{seed}:{epoch}:{index}".encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest, "little") & ((1 << 63) - 1))


class Transform:
    """Base class: ``__call__(img, generator=None) -> img``. ``random`` says whether it needs a generator."""

    random = False

    def __call__(self, img: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    @staticmethod
    def _need(generator: torch.Generator | None, who: str) -> torch.Generator:
        if generator is None:
            raise ValueError(f"{who} is random: pass a torch.Generator, "
                             "e.g. generator_for(seed, epoch, index)")
        return generator


def _pair(size: Size, who: str) -> tuple[int, int]:
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    if h <= 0 or w <= 0:
        raise ValueError(f"{who}: size must be positive, got {size!r}")
    return int(h), int(w)


def _check(img: torch.Tensor, who: str) -> None:
    if not isinstance(img, torch.Tensor) or img.dim() not in (3, 4):
        shape = tuple(img.shape) if isinstance(img, torch.Tensor) else type(img).__name__
        raise ValueError(f"{who}: expected a (C, H, W) or (B, C, H, W) tensor, got {shape}")


class Resize(Transform):
    """Resize with antialiased bilinear interpolation.

    ``size`` an int: the shorter side becomes ``size`` and the aspect ratio is kept (longer side rounded);
    ``size`` an ``(h, w)`` pair: exactly that size.
    """

    def __init__(self, size: Size) -> None:
        self.shorter = isinstance(size, int)
        self.size = _pair(size, "Resize")

    def output_size(self, h: int, w: int) -> tuple[int, int]:
        if not self.shorter:
            return self.size
        s = self.size[0]
        if h <= w:
            return s, max(1, round(w * s / h))
        return max(1, round(h * s / w)), s

    def __call__(self, img: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check(img, "Resize")
        h, w = img.shape[-2:]
        out_h, out_w = self.output_size(h, w)
        if (out_h, out_w) == (h, w):
            return img
        batch = img if img.dim() == 4 else img.unsqueeze(0)
        # antialias=True low-pass filters when shrinking, so downscaled training images don't alias; the
        # triangle filter has non-negative weights, so [0, 1] input stays in [0, 1] (no clamp needed).
        out = F.interpolate(batch.float(), size=(out_h, out_w), mode="bilinear", align_corners=False,
                            antialias=True)
        return out if img.dim() == 4 else out[0]

    def __repr__(self) -> str:
        return f"Resize({self.size[0] if self.shorter else self.size})"


class RandomScale(Transform):
    """Scale jitter: the shorter side becomes ``round(size · s)``, ``s`` uniform in ``[1, max_scale]``
    (one draw from the generator), aspect kept; a following ``RandomCrop(size)`` then cuts a window of
    between ``1/max_scale`` and all of the shorter side."""

    random = True

    def __init__(self, size: int, max_scale: float) -> None:
        if size <= 0 or max_scale < 1.0:
            raise ValueError(f"RandomScale: need size > 0 and max_scale >= 1, got {size}, {max_scale}")
        self.size = int(size)
        self.max_scale = float(max_scale)

    def __call__(self, img: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check(img, "RandomScale")
        g = self._need(generator, "RandomScale")
        s = 1.0 + float(torch.rand(1, generator=g)) * (self.max_scale - 1.0)
        return Resize(max(self.size, round(self.size * s)))(img)

    def __repr__(self) -> str:
        return f"RandomScale({self.size}, max_scale={self.max_scale})"


class CenterCrop(Transform):
    """Crop the central ``size`` window (offsets floor((H − h) / 2), floor((W − w) / 2))."""

    def __init__(self, size: Size) -> None:
        self.size = _pair(size, "CenterCrop")

    def __call__(self, img: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check(img, "CenterCrop")
        h, w = img.shape[-2:]
        ch, cw = _fits(self.size, h, w, "CenterCrop")
        top, left = (h - ch) // 2, (w - cw) // 2
        return img[..., top:top + ch, left:left + cw]

    def __repr__(self) -> str:
        return f"CenterCrop({self.size})"


class RandomCrop(Transform):
    """Crop a ``size`` window at a uniformly random position (drawn from the generator)."""

    random = True

    def __init__(self, size: Size) -> None:
        self.size = _pair(size, "RandomCrop")

    def __call__(self, img: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check(img, "RandomCrop")
        g = self._need(generator, "RandomCrop")
        h, w = img.shape[-2:]
        ch, cw = _fits(self.size, h, w, "RandomCrop")
        top = int(torch.randint(0, h - ch + 1, (1,), generator=g))
        left = int(torch.randint(0, w - cw + 1, (1,), generator=g))
        return img[..., top:top + ch, left:left + cw]

    def __repr__(self) -> str:
        return f"RandomCrop({self.size})"


class RandomHorizontalFlip(Transform):
    """Mirror left-right with probability ``p`` (one draw from the generator per call)."""

    random = True

    def __init__(self, p: float = 0.5) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        self.p = p

    def __call__(self, img: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check(img, "RandomHorizontalFlip")
        g = self._need(generator, "RandomHorizontalFlip")
        return img.flip(-1) if float(torch.rand(1, generator=g)) < self.p else img

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class Compose(Transform):
    """Apply transforms in order, all drawing from the same generator."""

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)
        self.random = any(t.random for t in self.transforms)

    def __call__(self, img: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.random:
            self._need(generator, repr(self))
        for t in self.transforms:
            img = t(img, generator)
        return img.contiguous()

    def __repr__(self) -> str:
        return f"Compose([{', '.join(map(repr, self.transforms))}])"


def split_deterministic(transform: Callable[..., torch.Tensor] | None
                        ) -> tuple[Transform | None, Callable[..., torch.Tensor] | None]:
    """``transform`` as (its leading deterministic steps, the rest); either may be None.

    Applying the first, then the second (with the same generator) gives exactly ``transform``'s output,
    so a dataset can cache the first part's result per image (e.g. ``train_transform``'s Resize).
    """
    if isinstance(transform, Compose):
        k = next((i for i, t in enumerate(transform.transforms) if t.random), len(transform.transforms))
        head, tail = transform.transforms[:k], transform.transforms[k:]
        return (Compose(head) if head else None), (Compose(tail) if tail else None)
    if isinstance(transform, Transform) and not transform.random:
        return transform, None
    return None, transform


def _fits(size: tuple[int, int], h: int, w: int, who: str) -> tuple[int, int]:
    if size[0] > h or size[1] > w:
        raise ValueError(f"{who}: crop {size[0]}x{size[1]} is larger than the {h}x{w} image; "
                         "resize first (e.g. Resize(shorter_side) before the crop)")
    return size


def train_transform(size: int, flip: bool = True, resize: int | None = None) -> Compose:
    """Shorter side → ``resize`` (default ``size``), random ``size × size`` crop, random horizontal flip (p = 0.5).

    ``resize > size`` gives crop jitter on every image, e.g. Iizuka et al.'s random 224 crops of 256 images.
    """
    if resize is not None and resize < size:
        raise ValueError(f"train_transform: resize ({resize}) must be at least the crop size ({size})")
    steps: list[Transform] = [Resize(resize or size), RandomCrop(size)]
    if flip:
        steps.append(RandomHorizontalFlip(0.5))
    return Compose(steps)


def few_shot_transform(size: int, max_scale: float = 1.25) -> Compose:
    """Augmentation for adapting to 1–10 images: scale jitter (shorter side ``size``·[1, ``max_scale``]),
    random ``size × size`` crop, random horizontal flip — each support image is seen as many slightly
    different crops, none of which leaves the image's own content or colours."""
    return Compose([RandomScale(size, max_scale), RandomCrop(size), RandomHorizontalFlip(0.5)])


def eval_transform(size: int) -> Compose:
    """Shorter side → ``size``, central ``size × size`` crop (deterministic, needs no generator)."""
    return Compose([Resize(size), CenterCrop(size)])


def pad_square_resize(rgb: torch.Tensor, size: int, background: float = 1.0) -> torch.Tensor:
    """Pad ``(3,H,W)`` to a centred square on ``background`` and resize it to ``size``² (antialiased
    bilinear), so that sprites of any canvas keep their aspect and sit on the same white page."""
    _, h, w = rgb.shape
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    square = torch.full((3, side, side), background, dtype=rgb.dtype)
    square[:, top:top + h, left:left + w] = rgb
    if side == size:
        return square
    out = F.interpolate(square[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out[0].clamp(0.0, 1.0)
