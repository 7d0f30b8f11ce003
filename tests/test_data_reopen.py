"""Finding recorded training images again (MetalGAN's test-time adaptation)."""

import pytest
import torch

from fewcolor.data.reopen import ImagesUnreachable, reopen_images
from fewcolor.io.image import write_rgb


def test_reopen_keeps_the_reachable_images_and_explains_otherwise(tmp_path) -> None:
    for name in ("a.png", "b.png"):
        write_rgb(tmp_path / name, torch.rand(3, 8, 8))
    ds = reopen_images(str(tmp_path), ["a.png", "b.png", "gone.png"], None)
    assert [str(p) for p in ds.paths] == ["a.png", "b.png"]
    with pytest.raises(ImagesUnreachable, match="not reachable"):
        reopen_images(str(tmp_path / "moved"), ["a.png"], None)
    with pytest.raises(ImagesUnreachable, match="in-memory"):
        reopen_images(None, None, None)
