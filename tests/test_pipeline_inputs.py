"""Colorizer.colorize takes what users hold (PIL, numpy, torch, lists) and gives back the same kind."""

import numpy as np
import pytest
import torch
from PIL import Image

from fewcolor.color.lab import rgb_to_lab
from fewcolor.methods.registry import build_method
from fewcolor.pipeline import Colorizer


@pytest.fixture(scope="module")
def colorizer() -> Colorizer:
    torch.manual_seed(0)
    return Colorizer(build_method("unet", "tiny"), device="cpu")


def _image(h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.interpolate(torch.rand(1, 3, 4, 4, generator=g), size=(h, w), mode="bicubic",
                                           align_corners=False)[0].clamp(0, 1)


def test_each_kind_comes_back_as_itself(colorizer):
    rgb = _image(40, 52)
    reference = colorizer.colorize(rgb)
    u8 = (rgb * 255).round().to(torch.uint8)
    u8_np = u8.permute(1, 2, 0).numpy()
    pil = colorizer.colorize(Image.fromarray(u8_np))
    assert isinstance(pil, Image.Image) and pil.mode == "RGB" and pil.size == (52, 40)
    arr = colorizer.colorize(u8_np)
    assert isinstance(arr, np.ndarray) and arr.dtype == np.uint8 and arr.shape == (40, 52, 3)
    np.testing.assert_array_equal(np.asarray(pil), arr)
    f32 = colorizer.colorize(rgb.permute(1, 2, 0).numpy().astype(np.float64))
    assert f32.dtype == np.float64 and f32.shape == (40, 52, 3)
    assert np.abs(f32 - reference.permute(1, 2, 0).numpy()).max() < 1e-5
    t8 = colorizer.colorize(u8)
    assert t8.dtype == torch.uint8 and t8.shape == (3, 40, 52)
    # 8-bit input quantises L by at most half a step: outputs agree to a couple of levels
    assert (t8.int() - torch.from_numpy(arr).permute(2, 0, 1).int()).abs().max() <= 1


def test_grey_inputs_give_colour_outputs_with_their_l(colorizer):
    grey = (_image(33, 47)[0] * 65535).round().numpy().astype(np.uint16)
    out = colorizer.colorize(grey)
    assert out.shape == (33, 47, 3) and out.dtype == np.uint16
    l_in = rgb_to_lab(torch.from_numpy(grey.astype(np.float32) / 65535).expand(1, 3, -1, -1))[0, 0]
    l_out = rgb_to_lab(torch.from_numpy(out.astype(np.float32) / 65535).permute(2, 0, 1)[None])[0, 0]
    assert (l_in - l_out).abs().median() < 0.5
    assert colorizer.colorize(torch.rand(20, 30)).shape == (3, 20, 30)
    assert colorizer.colorize(Image.new("L", (30, 20), 128)).mode == "RGB"


def test_list_is_batched_by_working_size_and_matches_single_calls(colorizer, monkeypatch):
    images = [_image(64, 64, 1), _image(64, 64, 2), _image(30, 90, 3), _image(64, 64, 4)]
    singles = [colorizer.colorize(x) for x in images]
    calls: list[tuple[int, ...]] = []
    predict = colorizer.method.predict_ab
    monkeypatch.setattr(colorizer.method, "predict_ab", lambda l, **o: calls.append(tuple(l.shape)) or predict(l, **o))
    mixed = [images[0], images[1].permute(1, 2, 0).numpy(), images[2], images[3]]
    outs = colorizer.colorize(mixed, batch_size=2)
    assert isinstance(outs, list) and isinstance(outs[1], np.ndarray) and torch.is_tensor(outs[0])
    assert sorted(calls) == sorted([(2, 1, 32, 32), (1, 1, 32, 32), (1, 1, 16, 32)])
    for single, out in zip(singles, outs, strict=True):
        out_t = out if torch.is_tensor(out) else torch.from_numpy(out).permute(2, 0, 1)
        assert (single - out_t).abs().max() < 1e-4
    batch = colorizer.colorize(torch.stack([images[0], images[1]]))
    assert batch.shape == (2, 3, 64, 64) and (batch[0] - singles[0]).abs().max() < 1e-4


@pytest.mark.parametrize(
    "bad,match",
    [
        (np.zeros((8, 8, 2), np.uint8), r"\(H,W,3\) or \(H,W,4\), got shape \(8, 8, 2\)"),
        (np.full((8, 8), 2.0), r"must lie.*in \[0, 1\]"),
        (torch.zeros(2, 8, 8), r"\(3,H,W\), \(4,H,W\), \(1,H,W\) or \(H,W\)"),
        (b"\x89PNG", r"cannot colorize a bytes; give a path to an image file, a PIL image"),
        ([[0.5] * 8] * 8, r"cannot colorize a list; give a path"),  # nested lists: each item must be an image
        (None, "cannot colorize a NoneType"),
    ],
)
def test_bad_inputs_fail_with_what_they_got(colorizer, bad, match):
    with pytest.raises((TypeError, ValueError), match=match):
        colorizer.colorize(bad)


def test_a_path_gives_a_pil_image_and_a_transparent_file_keeps_its_alpha(colorizer, tmp_path):
    from fewcolor.io.image import ImageReadError, write_rgb

    rgb = _image(40, 52)
    write_rgb(tmp_path / "a.png", rgb)
    out = colorizer.colorize(str(tmp_path / "a.png"))
    assert isinstance(out, Image.Image) and out.mode == "RGB" and out.size == (52, 40)
    same = colorizer.colorize(Image.open(tmp_path / "a.png"))
    np.testing.assert_array_equal(np.asarray(out), np.asarray(same))
    alpha = torch.ones(1, 40, 52)
    alpha[:, :, :20] = 0.0
    write_rgb(tmp_path / "sprite.png", rgb, alpha=alpha)
    outs = colorizer.colorize([tmp_path / "sprite.png", rgb])  # os.PathLike, mixed with a tensor
    assert outs[0].mode == "RGBA" and outs[0].size == (52, 40) and torch.is_tensor(outs[1])
    np.testing.assert_array_equal(np.asarray(outs[0])[..., 3], (alpha[0].numpy() * 255).astype(np.uint8))
    with pytest.raises(ImageReadError, match=r"nope\.png: file not found"):
        colorizer.colorize(str(tmp_path / "nope.png"))
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ImageReadError, match=r"notes\.png"):
        colorizer.colorize(tmp_path / "notes.png")
    colorizer.colorize(tmp_path / "a.png").save(tmp_path / "out.png")
    assert Image.open(tmp_path / "out.png").size == (52, 40)


def test_rgba_arrays_and_tensors_are_composited_on_white_as_pil_images_are():
    from fewcolor.io.convert import to_rgb
    from fewcolor.io.image import decode_pil

    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, size=(6, 7, 4), dtype=np.uint8)
    rgba[0, 0, 3], rgba[0, 1, 3] = 0, 255  # fully transparent (white) and fully opaque (its colour)
    want = decode_pil(Image.fromarray(rgba, "RGBA"))
    from_numpy, kind = to_rgb(rgba)
    torch.testing.assert_close(from_numpy, want, atol=1 / 255, rtol=0)
    assert kind.library == "numpy" and torch.equal(from_numpy[:, 0, 0], torch.ones(3))
    torch.testing.assert_close(from_numpy[:, 0, 1], torch.from_numpy(rgba[0, 1, :3] / 255.0).float())
    from_torch, _ = to_rgb(torch.from_numpy(rgba).permute(2, 0, 1).float() / 255)
    torch.testing.assert_close(from_torch, from_numpy)
    with pytest.raises(ValueError, match=r"\(H,W,4\), got shape \(6, 7, 2\)"):
        to_rgb(rgba[..., :2])
