"""Any-size colorization that keeps the full-resolution L.

The network runs at a working resolution (aspect ratio kept, sides rounded to the method's
``size_multiple``); its ab prediction is upsampled bilinearly to the input's size and merged with the
input's ORIGINAL lightness, so no detail is lost however small the network's input was. The CLI,
``evaluate`` and the benchmark all colorize through :class:`Colorizer`::

    from fewcolor import Colorizer
    colorizer = Colorizer.from_checkpoint("run/model.safetensors")
    colorizer.colorize_file("grey.jpg", "colour.png")
    colorizer.colorize(pil_image)                  # -> PIL image; numpy and torch work alike
    colorizer.colorize([array_a, array_b])         # -> a list, batched by working size
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from fewcolor.color.lab import merge_l_ab, rgb_to_l
from fewcolor.color.normalize import denormalize_ab, normalize_l
from fewcolor.data.transforms import working_size
from fewcolor.io.image import DEFAULT_PIXEL_BUDGET
from fewcolor.methods.base import Method

#: smallest side the pipeline accepts; below it there is nothing to colorize meaningfully
MIN_SIDE = 8
#: pixels per band of the full-resolution Lab round trip in ``Colorizer.colorize``: bounds its temporaries, and
#: bands that fit the CPU caches make it about 2x faster than 1 MP bands (docs/PERFORMANCE.md)
_BAND_PIXELS = 262_144


def _checked_rgb(rgb: torch.Tensor) -> torch.Tensor:
    """A (3,H,W) or grey (1,H,W) image as (3,H,W); ``ValueError`` for another shape or a side below
    :data:`MIN_SIDE` (the pipeline's one size check)."""
    if rgb.dim() != 3 or rgb.shape[0] not in (1, 3):
        raise ValueError(f"expected an image tensor (3,H,W) or (1,H,W), got shape {tuple(rgb.shape)}")
    height, width = rgb.shape[-2:]
    if min(height, width) < MIN_SIDE:
        raise ValueError(f"image is {width}×{height}; fewcolor needs at least {MIN_SIDE}×{MIN_SIDE} pixels")
    return rgb.expand(3, -1, -1)


def _resized_l(images: Sequence[torch.Tensor] | torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Normalised L (B,1,h,w) of (3,H,W) images (of any sizes) resized to ``size`` = (h, w), antialiased
    bilinear: what the network sees."""
    small = torch.cat([
        F.interpolate(rgb[None].float(), size=size, mode="bilinear", antialias=True, align_corners=False)
        for rgb in images
    ])
    return normalize_l(rgb_to_l(small))


def network_input(rgb: torch.Tensor, size: int, size_multiple: int) -> torch.Tensor:
    """Normalised L (1,1,h,w) of a (3,H,W) or (1,H,W) image at its working resolution (longer side
    ``size``, sides multiples of ``size_multiple``), on the image's device: the network's input, as
    :class:`Colorizer` prepares it."""
    rgb = _checked_rgb(rgb)
    return _resized_l([rgb], working_size(int(rgb.shape[-2]), int(rgb.shape[-1]), size, size_multiple))


class Colorizer:
    """Colorize images of any size with a trained method."""

    def __init__(self, method: Method, device: str | torch.device | None = None, size: int | None = None,
                 pixel_budget: int | None = DEFAULT_PIXEL_BUDGET) -> None:
        """``pixel_budget``: files above it are reduced on decode (see ``fewcolor.io.image``), so the
        output of such a file is smaller than the file; ``None`` keeps every pixel."""
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.method = method.to(self.device).eval()
        self.size = int(size) if size else method.working_resolution()
        self.pixel_budget = pixel_budget

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike[str], device: str | torch.device | None = None, size: int | None = None,
        pixel_budget: int | None = DEFAULT_PIXEL_BUDGET,
    ) -> Colorizer:
        from fewcolor.methods.registry import load_method

        return cls(load_method(path, device="cpu"), device=device, size=size, pixel_budget=pixel_budget)

    @classmethod
    def pretrained(cls, device: str | torch.device | None = None, size: int | None = None,
                   pixel_budget: int | None = DEFAULT_PIXEL_BUDGET) -> Colorizer:
        """The bundled base colorizer (docs/MODEL_CARD.md): ``Colorizer.pretrained().colorize(image)``."""
        from fewcolor.pretrained import require_bundled_model

        path = require_bundled_model("use Colorizer.from_checkpoint(PATH) with a trained model")
        return cls.from_checkpoint(path, device=device, size=size, pixel_budget=pixel_budget)

    @property
    def name(self) -> str:
        return self.method.name

    def _prepare_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Convert option values by the method's declarations: image options given as paths are read and
        PIL images or numpy arrays converted, ``image-l`` ones become normalised L at the working resolution;
        tensors move to the device."""
        from fewcolor.io.convert import to_rgb
        from fewcolor.io.image import read_rgb

        prepared = {}
        for key, value in options.items():
            if value is None:
                continue
            opt = self.method.inference_option(key)
            if opt is not None and opt.is_image:
                if isinstance(value, (str, os.PathLike)):
                    value = read_rgb(value, pixel_budget=self.pixel_budget)
                elif not torch.is_tensor(value):
                    value = to_rgb(value)[0]  # a PIL image or numpy array
                if opt.as_l and torch.is_tensor(value) and value.shape[-3] == 3:
                    rgb = value if value.dim() == 4 else value[None]
                    hw = working_size(int(rgb.shape[-2]), int(rgb.shape[-1]), self.size, self.method.size_multiple)
                    value = _resized_l(rgb, hw)
            if torch.is_tensor(value):
                value = value.to(self.device)
            prepared[key] = value
        self.method.check_options(prepared)
        return prepared

    def working_l(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(L (1,1,H,W) in Lab units at full size, normalised L (1,1,h,w) at the working resolution on the
        device) of a (3,H,W) or (1,H,W) image."""
        rgb = _checked_rgb(rgb)
        l_small = network_input(rgb, self.size, self.method.size_multiple)
        return rgb_to_l(rgb[None]), l_small.to(self.device)

    @staticmethod
    def full_size_ab(ab_small: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Normalised ab (1,2,h,w) at the working resolution -> ab (2,H,W) in Lab units (bilinear)."""
        ab = F.interpolate(ab_small.float().cpu(), size=(height, width), mode="bilinear", align_corners=False)
        return denormalize_ab(ab)[0]

    @torch.no_grad()
    def predict_ab_full(self, rgb: torch.Tensor, **options: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """(L at full size, predicted ab at full size), both in Lab units, for a (3,H,W) image."""
        l_full, l_small = self.working_l(rgb)
        ab_small = self.method.predict_ab(l_small, **self._prepare_options(options))
        return l_full[0], self.full_size_ab(ab_small, *l_full.shape[-2:])

    def colorize(self, image: Any, batch_size: int = 16, **options: Any) -> Any:
        """Colorize one image or a list of them; each result has the form its input had.

        Takes a PIL image, a numpy array ``(H,W)``/``(H,W,3)`` (uint8, uint16 or float in [0, 1]), a
        torch tensor ``(3,H,W)``/``(1,H,W)``/``(H,W)`` (float in [0, 1] or uint8), a batch tensor
        ``(B,C,H,W)``, or a list of any of these (see :mod:`fewcolor.io.convert`). Images whose working
        sizes agree go through the network together, ``batch_size`` at a time; every output keeps its
        input's size and full-resolution L.
        """
        from fewcolor.io.convert import from_rgb, to_rgb

        many = isinstance(image, (list, tuple)) or (torch.is_tensor(image) and image.dim() == 4)
        pairs = [to_rgb(item) for item in image] if many else [to_rgb(image)]
        outputs = self._colorize_tensors([rgb for rgb, _ in pairs], options, batch_size)
        results = [from_rgb(out, kind) for out, (_, kind) in zip(outputs, pairs, strict=True)]
        if isinstance(image, (list, tuple)):
            return results
        return torch.stack(results) if torch.is_tensor(image) and image.dim() == 4 else results[0]

    @torch.no_grad()
    def _colorize_tensors(
        self, rgbs: list[torch.Tensor], options: dict[str, Any], batch_size: int
    ) -> list[torch.Tensor]:
        """(3,H,W) RGB images in [0,1] to their colorizations (3,H,W).

        The full-resolution Lab round trip runs in bands of about ``_BAND_PIXELS`` pixels, so its
        temporaries stay small (and in cache) however large the image (the conversions are per pixel: same
        result).
        """
        prepared = self._prepare_options(options)
        outputs = []
        for rgb, ab_full in zip(rgbs, self._predict_full(rgbs, prepared, batch_size), strict=True):
            rgb = rgb.expand(3, -1, -1).float()
            height, width = rgb.shape[-2:]
            out = torch.empty(3, height, width)
            rows = max(1, _BAND_PIXELS // width)
            for top in range(0, height, rows):
                band = slice(top, top + rows)
                l_band = rgb_to_l(rgb[None, :, band])
                out[:, band] = merge_l_ab(l_band, ab_full[None, :, band])[0]
            outputs.append(out)
        return outputs

    def _predict_full(
        self, rgbs: list[torch.Tensor], options: dict[str, Any], batch_size: int
    ) -> list[torch.Tensor]:
        """Full-size ab (2,H,W) in Lab units per image; the network sees images of equal working size in
        batches of ``batch_size``."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        rgbs = [_checked_rgb(rgb) for rgb in rgbs]
        groups: dict[tuple[int, int], list[int]] = {}
        for i, rgb in enumerate(rgbs):
            hw = working_size(int(rgb.shape[-2]), int(rgb.shape[-1]), self.size, self.method.size_multiple)
            groups.setdefault(hw, []).append(i)
        results: list[torch.Tensor | None] = [None] * len(rgbs)
        for hw, members in groups.items():
            for start in range(0, len(members), batch_size):
                chunk = members[start : start + batch_size]
                l_small = _resized_l([rgbs[i] for i in chunk], hw).to(self.device)
                ab_small = self.method.predict_ab(l_small, **options).float().cpu()  # one copy off the device
                for j, i in enumerate(chunk):
                    results[i] = self.full_size_ab(ab_small[j : j + 1], *rgbs[i].shape[-2:])
        return [r for r in results if r is not None]

    def colorize_path(self, path: str | os.PathLike[str], **options: Any) -> torch.Tensor:
        from fewcolor.io.image import read_rgb

        return self.colorize(read_rgb(path, pixel_budget=self.pixel_budget), **options)

    def colorize_file(self, src: str | os.PathLike[str], dst: str | os.PathLike[str], **options: Any) -> Path:
        """Read ``src``, colorize it, write ``dst`` (never ``src`` itself); a transparent ``src`` (a sprite)
        keeps its transparency where ``dst``'s format holds it."""
        from fewcolor.io.image import read_rgb_alpha, write_coloured

        src_p, dst_p = Path(src), Path(dst)
        if dst_p.exists() and src_p.exists() and dst_p.resolve() == src_p.resolve():
            raise ValueError(f"refusing to overwrite the input {src_p}; choose another output path")
        rgb, alpha = read_rgb_alpha(src_p, pixel_budget=self.pixel_budget)
        return write_coloured(dst_p, self.colorize(rgb, **options), alpha)
