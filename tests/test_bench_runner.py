"""Benchmark runner pieces that the smoke runs may not reach."""

import numpy as np
import pytest
from PIL import Image

from fewcolor.bench.runner import _paths_dataset


def test_a_grey_looking_support_image_is_kept_but_a_training_split_skips_it(tmp_path) -> None:
    # a black-and-white sprite on white (Pokémon 522, Blitzle, made the pokemon-frames benchmark fail)
    rgb = np.full((24, 24, 3), 255, np.uint8)
    rgb[6:18, 6:18] = 40
    path = tmp_path / "0522" / "front_000.png"
    path.parent.mkdir()
    Image.fromarray(rgb).save(path)
    support = _paths_dataset([path], 16, seed=0, skip_grey=False)
    assert len(support) == 1 and support[0]["l"].shape[-2:] == (16, 16)
    with pytest.raises(ValueError, match="grey"):
        _paths_dataset([path], 16, seed=0, skip_grey=True)
