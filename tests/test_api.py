"""The package facade and the README's Python: what `import fewcolor` offers, and the snippets as written."""

import re
from pathlib import Path

import pytest

import fewcolor

README = Path(__file__).resolve().parents[1] / "README.md"


def test_top_level_exports_load_lazily_and_are_listed():
    assert fewcolor.__all__ == ["CheckpointError", "Colorizer", "ImageReadError", "__version__"]
    from fewcolor import CheckpointError, Colorizer, ImageReadError
    from fewcolor.io.checkpoint import CheckpointError as checkpoint_error
    from fewcolor.io.image import ImageReadError as read_error
    from fewcolor.pipeline import Colorizer as colorizer

    assert (Colorizer, ImageReadError, CheckpointError) == (colorizer, read_error, checkpoint_error)
    assert {"Colorizer", "ImageReadError", "CheckpointError"} <= set(dir(fewcolor))
    with pytest.raises(AttributeError, match="module 'fewcolor' has no attribute 'colorize'"):
        fewcolor.colorize  # noqa: B018


def test_readme_python_snippets_run_as_written_on_a_real_photo(tmp_path, monkeypatch):
    from fewcolor.pretrained import bundled_model_path

    if bundled_model_path() is None:
        pytest.skip("this checkout ships no bundled base model")
    data = pytest.importorskip("skimage.data")
    import numpy as np
    from PIL import Image

    from fewcolor.color.lab import rgb_to_l
    from fewcolor.io.convert import to_rgb

    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 2 and "Colorizer.pretrained()" in blocks[0]
    Image.fromarray(data.coffee()).convert("L").save(tmp_path / "grey.jpg")  # 600x400, not a working size
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:  # one session, as a reader types them in turn
        exec(compile(block, str(README), "exec"), namespace)
    grey = to_rgb(Image.open("grey.jpg"))[0]
    for out in (Image.open("colour.png"), namespace["colour"]):
        assert out.mode == "RGB" and out.size == (600, 400)
        rgb = to_rgb(out)[0]
        assert (rgb_to_l(rgb[None]) - rgb_to_l(grey[None])).abs().median() < 0.5  # full-resolution L kept
        assert float(np.std(np.asarray(out, dtype=np.float32), axis=2).mean()) > 3.0  # colour, not grey
