"""Images as users hold them (PIL, numpy, torch) to the toolkit's ``(3, H, W)`` float tensor and back.

:func:`to_rgb` turns one image into float32 sRGB ``(3, H, W)`` in ``[0, 1]`` on the CPU and returns a
:class:`Kind` that :func:`from_rgb` uses to give a result back in the form it came in:

* ``PIL.Image``: any mode goes through :mod:`fewcolor.io.image`'s decoder (alpha composited on white,
  16-bit grey kept in float); the result is an ``RGB`` image.
* ``numpy`` ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)`` (RGBA: alpha composited on white, as
  for PIL): ``uint8`` (÷255), ``uint16`` (÷65535) or float in ``[0, 1]``; the result is ``(H, W, 3)`` of the
  same dtype (grey in, colour out).
* ``torch`` ``(H, W)``, ``(1, H, W)``, ``(3, H, W)`` or ``(4, H, W)`` (RGBA, likewise): float in ``[0, 1]`` or
  ``uint8``; the result is ``(3, H, W)`` of the same dtype on the same device.

Anything else raises ``TypeError``/``ValueError`` with the shape or type it got and what it takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

from fewcolor.io.image import decode_pil

__all__ = ["Kind", "from_rgb", "to_rgb"]

_INTEGER_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


@dataclass(frozen=True)
class Kind:
    """What an input image was, so a result can be returned in the same form."""

    library: Literal["pil", "numpy", "torch"]
    dtype: Any = None
    device: torch.device | None = None


def to_rgb(image: Any) -> tuple[torch.Tensor, Kind]:
    """One image as float32 ``(3, H, W)`` in ``[0, 1]`` (CPU) and its :class:`Kind`."""
    if isinstance(image, Image.Image):
        return decode_pil(image), Kind("pil")
    if isinstance(image, np.ndarray):
        return _numpy_to_rgb(image), Kind("numpy", image.dtype)
    if torch.is_tensor(image):
        return _torch_to_rgb(image), Kind("torch", image.dtype, image.device)
    raise TypeError(
        f"cannot colorize a {type(image).__name__}; give a PIL image, a numpy array (H,W), (H,W,3) or (H,W,4), "
        "a torch tensor (3,H,W)/(4,H,W)/(1,H,W)/(H,W), or a list of them"
    )


def from_rgb(rgb: torch.Tensor, kind: Kind) -> Any:
    """A float ``(3, H, W)`` result in ``[0, 1]`` in the form described by ``kind``."""
    rgb = rgb.detach().float().cpu().clamp(0.0, 1.0)
    if kind.library == "pil":
        return Image.fromarray(_to_uint8(rgb).permute(1, 2, 0).numpy(), mode="RGB")
    if kind.library == "numpy":
        dtype = np.dtype(kind.dtype)
        hwc = rgb.permute(1, 2, 0).contiguous().numpy()
        if dtype in _INTEGER_SCALE:
            return np.rint(hwc.astype(np.float64) * _INTEGER_SCALE[dtype]).astype(dtype)
        return hwc.astype(dtype)
    if kind.dtype == torch.uint8:
        return _to_uint8(rgb).to(kind.device)
    return rgb.to(device=kind.device, dtype=kind.dtype)


def _to_uint8(rgb: torch.Tensor) -> torch.Tensor:
    return (rgb * 255.0).round().to(torch.uint8)


def _numpy_to_rgb(array: np.ndarray) -> torch.Tensor:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ValueError(f"expected a numpy image (H,W), (H,W,1), (H,W,3) or (H,W,4), got shape {array.shape}")
    if array.dtype in _INTEGER_SCALE:
        values = torch.from_numpy(array.astype(np.float32) / _INTEGER_SCALE[array.dtype])
    elif np.issubdtype(array.dtype, np.floating):
        values = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
        _check_unit_range(values, f"numpy {array.dtype} image")
    else:
        raise ValueError(f"numpy images must be uint8, uint16 or float in [0, 1]; got dtype {array.dtype}")
    return _on_white(_channels_first(values if values.ndim == 3 else values[..., None]))


def _torch_to_rgb(tensor: torch.Tensor) -> torch.Tensor:
    if tensor.ndim == 2:
        tensor = tensor[None]
    if tensor.ndim != 3 or tensor.shape[0] not in (1, 3, 4):
        raise ValueError(f"expected an image tensor (3,H,W), (4,H,W), (1,H,W) or (H,W), got shape "
                         f"{tuple(tensor.shape)}")
    if tensor.dtype == torch.uint8:
        values = tensor.detach().cpu().float() / 255.0
    elif tensor.is_floating_point():
        values = tensor.detach().cpu().float()
        _check_unit_range(values, f"torch {tensor.dtype} image")
    else:
        raise ValueError(f"image tensors must be float in [0, 1] or uint8; got dtype {tensor.dtype}")
    return _on_white(values.expand(3, -1, -1).contiguous() if values.shape[0] == 1 else values)


def _channels_first(hwc: torch.Tensor) -> torch.Tensor:
    chw = hwc.permute(2, 0, 1)
    return (chw.expand(3, -1, -1) if chw.shape[0] == 1 else chw).contiguous()


def _on_white(rgb_or_rgba: torch.Tensor) -> torch.Tensor:
    """``(3, H, W)`` as is; ``(4, H, W)`` RGBA composited on white (what PIL inputs get in ``decode_pil``)."""
    if rgb_or_rgba.shape[0] != 4:
        return rgb_or_rgba
    rgb, alpha = rgb_or_rgba[:3], rgb_or_rgba[3:]
    return (rgb * alpha + (1.0 - alpha)).contiguous()


def _check_unit_range(values: torch.Tensor, what: str) -> None:
    if values.numel() and not bool(torch.isfinite(values).all()):
        raise ValueError(f"{what} holds NaN or infinite values")
    if values.numel() and (float(values.min()) < 0.0 or float(values.max()) > 1.0):
        raise ValueError(
            f"{what} has values in [{float(values.min()):.4g}, {float(values.max()):.4g}]; float images must lie "
            "in [0, 1] (divide 8-bit values by 255)"
        )
