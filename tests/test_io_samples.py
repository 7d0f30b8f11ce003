"""fewcolor.io.samples: scikit-image's colour photos as (3,H,W) tensors, and a one-line error without it."""

from __future__ import annotations

import sys

import pytest
import torch

from fewcolor.io.samples import SAMPLE_PHOTOS, SamplePhotosUnavailable, sample_photos


def test_photos_are_float_rgb_in_unit_range() -> None:
    data = pytest.importorskip("skimage.data")
    photos = sample_photos()
    assert [name for name, _ in photos] == list(SAMPLE_PHOTOS)
    for name, rgb in photos:
        array = getattr(data, name)()
        assert rgb.dtype == torch.float32 and rgb.shape == (3, *array.shape[:2])
        assert torch.equal(rgb, torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255)
    assert [name for name, _ in sample_photos(["rocket"])] == ["rocket"]


def test_unknown_or_grey_names_are_refused() -> None:
    pytest.importorskip("skimage.data")
    for name in ("no_such_photo", "camera"):  # camera is a grey photo
        with pytest.raises(ValueError, match=f"'{name}' is not one of scikit-image's colour photos"):
            sample_photos([name])


def test_missing_scikit_image_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "skimage", None)
    monkeypatch.setitem(sys.modules, "skimage.data", None)
    with pytest.raises(SamplePhotosUnavailable, match="pip install scikit-image") as info:
        sample_photos()
    assert isinstance(info.value, ImportError) and "\n" not in str(info.value)
