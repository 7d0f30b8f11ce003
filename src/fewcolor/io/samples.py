"""scikit-image's bundled colour photographs (public domain / CC0) as ``(3, H, W)`` tensors.

Used by the demo page, the ONNX parity check, the speed benchmark and the scripts. scikit-image is an
optional dependency: it is imported on first use, and its absence raises :class:`SamplePhotosUnavailable`
(an ``ImportError``) with a one-line fix.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["SAMPLE_PHOTOS", "SamplePhotosUnavailable", "sample_photos"]

#: the three photos most callers show (``rocket`` is a fourth colour photo some add)
SAMPLE_PHOTOS = ("astronaut", "coffee", "chelsea")


class SamplePhotosUnavailable(ImportError):
    """scikit-image, which ships the sample photos, is not installed."""


def sample_photos(names: Sequence[str] = SAMPLE_PHOTOS) -> list[tuple[str, torch.Tensor]]:
    """``(name, image)`` for each of ``names`` (functions of ``skimage.data`` that return a colour photo);
    images are float32 sRGB ``(3, H, W)`` in ``[0, 1]``."""
    try:
        import skimage.data
    except ImportError as exc:
        raise SamplePhotosUnavailable("the sample photos come from scikit-image, which is not installed: "
                                      "pip install scikit-image") from exc
    photos = []
    for name in names:
        loader = getattr(skimage.data, name, None)
        array = loader() if callable(loader) else None
        if array is None or array.ndim != 3 or array.shape[2] != 3:
            raise ValueError(f"{name!r} is not one of scikit-image's colour photos (e.g. {', '.join(SAMPLE_PHOTOS)})")
        photos.append((name, torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255))
    return photos
