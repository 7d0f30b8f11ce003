"""Any-size colorization that keeps the full-resolution L.

The network runs at a working resolution (aspect ratio kept, sides rounded to the method's
``size_multiple``); its ab prediction is upsampled bilinearly to the input's size and merged with the
input's ORIGINAL lightness, so no detail is lost however small the network's input was. The CLI,
``evaluate`` and the benchmark all colorize through :class:`Colorizer`::

    from fewcolor import Colorizer
    colorizer = Colorizer.from_checkpoint("run/model.safetensors")
    colorizer.colorize_file("grey.jpg", "colour.png")
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from fewcolor.color.lab import merge_l_ab, rgb_to_lab
from fewcolor.color.normalize import denormalize_ab, normalize_l
from fewcolor.data.transforms import working_size
from fewcolor.methods.base import Method

#: smallest side the pipeline accepts; below it there is nothing to colorize meaningfully
MIN_SIDE = 8


class Colorizer:
    """Colorize images of any size with a trained method."""

    def __init__(self, method: Method, device: str | torch.device | None = None, size: int | None = None) -> None:
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.method = method.to(self.device).eval()
        self.size = int(size) if size else int(getattr(method.config, "image_size", 256))

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike[str], device: str | torch.device | None = None, size: int | None = None
    ) -> Colorizer:
        from fewcolor.methods.registry import load_method

        return cls(load_method(path, device="cpu"), device=device, size=size)

    @property
    def name(self) -> str:
        return self.method.name

    def _prepare_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Convert option values by the method's declarations: image options given as paths are read,
        ``image-l`` ones become normalised L at the working resolution; tensors move to the device."""
        from fewcolor.io.image import read_rgb

        prepared = {}
        for key, value in options.items():
            if value is None:
                continue
            opt = self.method.inference_option(key)
            if opt is not None and opt.is_image:
                if isinstance(value, (str, os.PathLike)):
                    value = read_rgb(value)
                if opt.as_l and torch.is_tensor(value) and value.shape[-3] == 3:
                    rgb = value if value.dim() == 4 else value[None]
                    h, w = working_size(int(rgb.shape[-2]), int(rgb.shape[-1]), self.size, self.method.size_multiple)
                    rgb = F.interpolate(rgb.float(), size=(h, w), mode="bilinear", antialias=True, align_corners=False)
                    value = normalize_l(rgb_to_lab(rgb)[:, :1])
            if torch.is_tensor(value):
                value = value.to(self.device)
            prepared[key] = value
        self.method.check_options(prepared)
        return prepared

    def working_l(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(L (1,1,H,W) in Lab units at full size, normalised L (1,1,h,w) at the working resolution on the
        device) of a (3,H,W) or (1,H,W) image."""
        if rgb.dim() != 3 or rgb.shape[0] not in (1, 3):
            raise ValueError(f"expected an image tensor (3,H,W) or (1,H,W), got shape {tuple(rgb.shape)}")
        if rgb.shape[0] == 1:
            rgb = rgb.expand(3, -1, -1)
        height, width = rgb.shape[-2:]
        if min(height, width) < MIN_SIDE:
            raise ValueError(f"image is {width}×{height}; fewcolor needs at least {MIN_SIDE}×{MIN_SIDE} pixels")
        l_full = rgb_to_lab(rgb[None].float())[:, :1]
        h, w = working_size(height, width, self.size, self.method.size_multiple)
        small = F.interpolate(rgb[None].float(), size=(h, w), mode="bilinear", antialias=True, align_corners=False)
        return l_full, normalize_l(rgb_to_lab(small)[:, :1]).to(self.device)

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

    def colorize(self, image: torch.Tensor, **options: Any) -> torch.Tensor:
        """Colorize an RGB or grey image tensor (3,H,W)/(1,H,W) in [0,1]; returns (3,H,W) RGB in [0,1]."""
        l_full, ab_full = self.predict_ab_full(image, **options)
        return merge_l_ab(l_full, ab_full)

    def colorize_path(self, path: str | os.PathLike[str], **options: Any) -> torch.Tensor:
        from fewcolor.io.image import read_rgb

        return self.colorize(read_rgb(path), **options)

    def colorize_file(self, src: str | os.PathLike[str], dst: str | os.PathLike[str], **options: Any) -> Path:
        """Read ``src``, colorize it, write ``dst`` (never ``src`` itself)."""
        from fewcolor.io.image import write_rgb

        src_p, dst_p = Path(src), Path(dst)
        if dst_p.exists() and src_p.exists() and dst_p.resolve() == src_p.resolve():
            raise ValueError(f"refusing to overwrite the input {src_p}; choose another output path")
        write_rgb(dst_p, self.colorize_path(src_p, **options))
        return dst_p
