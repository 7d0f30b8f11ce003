"""`fewcolor demo`: a short run end to end writes the page the README promises."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from fewcolor.cli import main
from fewcolor.demo import DEMO_PHOTOS, FIXTURE
from fewcolor.pretrained import bundled_model_path


def test_demo_trains_colours_held_out_images_and_the_sample_photos(tmp_path) -> None:
    pytest.importorskip("skimage.data")
    if bundled_model_path() is None:
        pytest.skip("the bundled base model is not installed")
    res = CliRunner().invoke(main, ["demo", "-o", str(tmp_path / "demo"), "--seconds", "2"])
    assert res.exit_code == 0, res.output
    page = tmp_path / "demo" / "index.html"
    assert f"demo page: {page.resolve()}" in res.output
    text = page.read_text()
    classes = sorted(p.name for p in FIXTURE.iterdir() if p.is_dir())
    assert "The bundled base colorizer on real photos" in text
    for name in DEMO_PHOTOS:  # one row per sample photo: grey, truth, bundled model output
        assert f"{name}: grey input" in text
    assert text.count('alt="bundled base model"') == len(DEMO_PHOTOS)
    assert text.count('alt="unet"') == len(classes)  # one held-out image per class, coloured
    assert (tmp_path / "demo" / "run" / "model.safetensors").is_file()
    steps = re.search(r"trained for (\d+) steps", text)
    assert steps is not None and int(steps.group(1)) >= 1
