"""Any-size colorization that keeps the full-resolution L.

The network runs at a working resolution (aspect ratio kept, sides rounded to the method's
``size_multiple``); its ab prediction is upsampled bilinearly to the input's size and merged with the
input's ORIGINAL lightness, so no detail is lost however small the network's input was. The CLI,
``evaluate`` and the benchmark all colorize through :class:`Colorizer`::

    from fewcolor import Colorizer
    colorizer = Colorizer.pretrained()             # or Colorizer.from_checkpoint("run/model.safetensors")
    colorizer.colorize_file("grey.jpg", "colour.png")
    colorizer.colorize("grey.jpg").save("colour.png")  # a path gives a PIL image
    colorizer.colorize(pil_image)                  # -> PIL image; numpy and torch work alike
    colorizer.colorize([array_a, array_b])         # -> a list, batched by working size
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from fewcolor.color.lab import merge_l_ab, rgb_to_l
from fewcolor.color.normalize import denormalize_ab, normalize_l
from fewcolor.data.transforms import working_size
from fewcolor.io.atomic import KEPT_FILE
from fewcolor.io.image import DEFAULT_PIXEL_BUDGET
from fewcolor.methods.base import Method

#: what :meth:`Colorizer.colorize` takes, for its ``TypeError``
_TAKES = ("a path to an image file, a PIL image, a numpy array (H,W)/(H,W,3)/(H,W,4) (uint8, uint16 or float in "
          "[0, 1]), a torch tensor (3,H,W)/(4,H,W)/(1,H,W)/(H,W) or a batch (B,C,H,W), or a list of these")

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
    """Colorize images of any size with a trained method.

    Build one with :meth:`pretrained` (the bundled base model) or :meth:`from_checkpoint` (a ``.safetensors``
    model written by ``fewcolor train``/``adapt``); then :meth:`colorize` (images in memory or paths),
    :meth:`colorize_file` (file to file) or :meth:`colorize_path` (file to tensor).
    """

    def __init__(self, method: Method, device: str | torch.device | None = None, size: int | None = None,
                 pixel_budget: int | None = DEFAULT_PIXEL_BUDGET) -> None:
        """``method``: a built :class:`~fewcolor.methods.base.Method` (a file goes through
        :meth:`from_checkpoint`). ``device``: ``"cpu"``, ``"cuda"``, ... (default CUDA when present).
        ``size``: the working resolution (longer side) of the network, default the method's own.
        ``pixel_budget``: files above it are reduced on decode (see ``fewcolor.io.image``), so the
        output of such a file is smaller than the file; ``None`` keeps every pixel.

        Raises ``TypeError`` for a ``method`` that is not a Method, ``ValueError`` for a device this
        machine cannot use or a ``size``/``pixel_budget`` below 1."""
        if not isinstance(method, Method):
            hint = (" (a path: use Colorizer.from_checkpoint(path), or Colorizer.pretrained() for the bundled model)"
                    if isinstance(method, (str, os.PathLike)) else "")
            raise TypeError(f"Colorizer takes a fewcolor Method, got a {type(method).__name__}{hint}")
        for name, value in (("size", size), ("pixel_budget", pixel_budget)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral)
                                      or value < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            self.device = torch.device(device)
            torch.empty(0, device=self.device)  # a device this build or machine lacks fails here, in one line
        except (RuntimeError, AssertionError, TypeError) as exc:
            raise ValueError(f"device {device!r} cannot be used here ({str(exc).strip()}); "
                             "use 'cpu' or leave device unset") from None
        self.method = method.to(self.device).eval()
        self.size = int(size) if size is not None else method.working_resolution()
        self.pixel_budget = pixel_budget

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike[str], device: str | torch.device | None = None, size: int | None = None,
        pixel_budget: int | None = DEFAULT_PIXEL_BUDGET,
    ) -> Colorizer:
        """A colorizer for the model in ``path`` (a ``.safetensors`` file written by ``fewcolor train`` or
        ``adapt``; ``"base"`` is the bundled base model, as on the command line). The other arguments are
        :class:`Colorizer`'s. A missing, unreadable or foreign file raises
        :class:`~fewcolor.io.checkpoint.CheckpointError` (a ``RuntimeError``) naming it."""
        from fewcolor.methods.registry import load_method

        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"from_checkpoint takes the path of a .safetensors model, got a {type(path).__name__}")
        if os.fspath(path) == "base":
            return cls.pretrained(device=device, size=size, pixel_budget=pixel_budget)
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
        """The method's registered name (``"base"`` for the bundled model)."""
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

    @overload
    def colorize(self, image: str | os.PathLike[str] | Image.Image, batch_size: int = ...,
                 **options: Any) -> Image.Image: ...
    @overload
    def colorize(self, image: np.ndarray, batch_size: int = ..., **options: Any) -> np.ndarray: ...
    @overload
    def colorize(self, image: torch.Tensor, batch_size: int = ..., **options: Any) -> torch.Tensor: ...
    @overload
    def colorize(self, image: list[Any] | tuple[Any, ...], batch_size: int = ..., **options: Any) -> list[Any]: ...

    def colorize(self, image: Any, batch_size: int = 16, **options: Any) -> Any:
        """Colorize one image or a list of them; each result has the form its input had.

        Takes (see :mod:`fewcolor.io.convert`):

        * a path (``str`` or ``os.PathLike``) to an image file -> a PIL ``RGB`` image (``RGBA`` when the
          file is transparent: its transparency kept); files above ``pixel_budget`` are reduced on decode;
        * a PIL image of any mode (grey, RGB, RGBA composited on white, 16-bit) -> a PIL ``RGB`` image;
        * a numpy array ``(H,W)``/``(H,W,1)``/``(H,W,3)``/``(H,W,4)`` (RGBA composited on white), uint8,
          uint16 or float in [0, 1] -> ``(H,W,3)`` of the same dtype;
        * a torch tensor ``(3,H,W)``/``(4,H,W)``/``(1,H,W)``/``(H,W)``, float in [0, 1] or uint8 -> ``(3,H,W)``
          of the same dtype and device; a batch ``(B,C,H,W)`` -> ``(B,3,H,W)``;
        * a list or tuple of any of these -> a list.

        Grey or colour inputs alike: only their lightness is used. Every output keeps its input's size and
        full-resolution L. Images whose working sizes agree go through the network together, ``batch_size``
        at a time. ``options`` are the method's inference options (``fewcolor methods NAME`` lists them).

        Raises ``TypeError`` for another kind of input, ``ValueError`` for a wrong shape, dtype, value
        range, a side below 8 pixels or an option the method does not take, and
        :class:`~fewcolor.io.image.ImageReadError` (an ``OSError``) for a missing or unreadable file.
        """
        from fewcolor.io.convert import from_rgb

        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        many = isinstance(image, (list, tuple)) or (torch.is_tensor(image) and image.dim() == 4)
        inputs = [self._input(item) for item in image] if many else [self._input(image)]
        outputs = self._colorize_tensors([rgb for rgb, _, _ in inputs], options, int(batch_size))
        results = [from_rgb(out, kind) if alpha is None else _rgba_image(out, alpha)
                   for out, (_, kind, alpha) in zip(outputs, inputs, strict=True)]
        if isinstance(image, (list, tuple)):
            return results
        return torch.stack(results) if torch.is_tensor(image) and image.dim() == 4 else results[0]

    def _input(self, item: Any) -> tuple[torch.Tensor, Any, torch.Tensor | None]:
        """One input of :meth:`colorize` as (float (3,H,W) RGB, its :class:`~fewcolor.io.convert.Kind`, the
        file's opacity (1,H,W) or ``None``): paths are read (a PIL image comes back), other kinds converted."""
        from fewcolor.io.convert import Kind, to_rgb
        from fewcolor.io.image import read_rgb_alpha

        if isinstance(item, (str, os.PathLike)):
            rgb, alpha = read_rgb_alpha(item, pixel_budget=self.pixel_budget)
            return rgb, Kind("pil"), alpha
        if not isinstance(item, (Image.Image, np.ndarray)) and not torch.is_tensor(item):
            raise TypeError(f"cannot colorize a {type(item).__name__}; give {_TAKES}")
        rgb, kind = to_rgb(item)
        return rgb, kind, None

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
        """Read the image file ``path`` (transparency composited on white) and colorize it: float32
        ``(3, H, W)`` RGB in [0, 1] on the CPU. ``ImageReadError`` for a missing or unreadable file."""
        from fewcolor.io.image import read_rgb

        return self.colorize(read_rgb(path, pixel_budget=self.pixel_budget), **options)

    def colorize_file(self, src: str | os.PathLike[str], dst: str | os.PathLike[str], *, overwrite: bool = True,
                      **options: Any) -> Path:
        """Read ``src``, colorize it, write ``dst`` (never ``src`` itself; its folder is created; the format
        follows its suffix: .png, .jpg, .jpeg, .bmp, .tif, .tiff, .webp, .ppm) and return ``dst``'s path. A
        transparent ``src`` (a sprite) keeps its transparency where ``dst``'s format holds it.
        ``ImageReadError`` for a missing or unreadable ``src``, ``ValueError`` for ``dst`` equal to ``src``
        or of an unknown format; ``overwrite=False``: ``FileExistsError`` when ``dst`` exists by the time it
        is written (the file is kept)."""
        from fewcolor.io.image import read_rgb_alpha, write_coloured

        src_p, dst_p = Path(src), Path(dst)
        if dst_p.exists() and src_p.exists() and dst_p.resolve() == src_p.resolve():
            raise ValueError(f"refusing to overwrite the input {src_p}; choose another output path")
        if not overwrite and os.path.lexists(dst_p):  # said before the work; a file appearing during it is kept too
            raise FileExistsError(f"{dst_p} exists; {KEPT_FILE}")
        rgb, alpha = read_rgb_alpha(src_p, pixel_budget=self.pixel_budget)
        return write_coloured(dst_p, self.colorize(rgb, **options), alpha, overwrite=overwrite)


def _rgba_image(rgb: torch.Tensor, alpha: torch.Tensor) -> Image.Image:
    """A colorization of a transparent file (composited on white) as a PIL ``RGBA`` image with the file's
    opacity, the white taken out again as :func:`fewcolor.io.image.write_coloured` does."""
    from fewcolor.io.image import uncomposite

    rgba = torch.cat([uncomposite(rgb, alpha), alpha.to(rgb.dtype)]).clamp(0, 1)
    return Image.fromarray((rgba * 255).round().to(torch.uint8).permute(1, 2, 0).numpy())
