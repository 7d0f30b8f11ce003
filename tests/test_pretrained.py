import pytest
import torch
from click.testing import CliRunner

from fewcolor import pretrained


def test_bundled_model_path_is_the_file_when_present(tmp_path, monkeypatch):
    target = tmp_path / "weights" / "base.safetensors"
    monkeypatch.setattr(pretrained, "BUNDLED_MODEL", target)
    assert pretrained.bundled_model_path() is None
    target.parent.mkdir()
    target.write_bytes(b"x")
    assert pretrained.bundled_model_path() == target


# ----- the bundled base colorizer (docs/MODEL_CARD.md) --------------------------------------------------


@pytest.fixture(scope="module")
def bundled():
    path = pretrained.bundled_model_path()
    if path is None:
        pytest.skip(f"this checkout ships no bundled base model ({pretrained.BUNDLED_MODEL})")
    return path


def _photo(name: str) -> torch.Tensor:
    data = pytest.importorskip("skimage.data")
    return torch.from_numpy(getattr(data, name)().copy()).permute(2, 0, 1).float() / 255


def test_bundled_model_colours_a_real_photo_and_keeps_its_lightness(bundled):
    from fewcolor.color.lab import grey_rgb_from_l, rgb_to_l
    from fewcolor.metrics.color import colorfulness_hs
    from fewcolor.pipeline import Colorizer

    colorizer = Colorizer.pretrained(device="cpu")
    assert colorizer.name == "base"
    truth = _photo("coffee")  # 400×600, not a multiple of the working size
    grey = grey_rgb_from_l(rgb_to_l(truth[None]))[0]
    out = colorizer.colorize(grey)
    assert out.shape == truth.shape
    # full-resolution L kept (up to the sRGB gamut clip of the merge)
    assert (rgb_to_l(out[None]) - rgb_to_l(grey[None])).abs().median() < 0.5
    cf_out, cf_grey = float(colorfulness_hs(out[None])[0]), float(colorfulness_hs(grey[None])[0])
    assert cf_grey < 1.0 and cf_out > 30.0  # real colour: 47.5 for the λ 0.75 bundle, 60.7 for the first (truth 76.9)


def test_colorize_without_a_model_uses_the_bundled_one(bundled, tmp_path):
    from fewcolor.cli import main
    from fewcolor.io.image import read_rgb, write_rgb

    src = tmp_path / "in" / "chelsea.png"
    src.parent.mkdir()
    write_rgb(src, _photo("chelsea"))
    res = CliRunner().invoke(main, ["colorize", str(src), "-o", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert read_rgb(tmp_path / "out" / "chelsea.png").shape == read_rgb(src).shape


def test_from_checkpoint_base_is_the_bundled_model_as_on_the_command_line(bundled):
    from fewcolor.pipeline import Colorizer

    colorizer = Colorizer.from_checkpoint("base", device="cpu", size=64)
    assert colorizer.name == "base" and colorizer.size == 64
