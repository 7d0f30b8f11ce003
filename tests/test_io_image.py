"""fewcolor.io.image: every Pillow mode in, float RGB out; errors name the file."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fewcolor.data.grey import is_grey
from fewcolor.io.image import ImageReadError, as_saved_8bit, list_images, read_frames, read_rgb, write_rgb

RED = (255, 0, 0)
BLUE = (0, 0, 255)


def _px(t: torch.Tensor, y: int, x: int) -> list[float]:
    return [round(float(v), 4) for v in t[:, y, x]]


def test_rgb_png_exact_values_and_layout(tmp_path: Path) -> None:
    arr = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    t = read_rgb(tmp_path / "a.png")
    assert t.dtype == torch.float32 and t.shape == (3, 5, 7)
    assert torch.equal(t, torch.from_numpy(arr).permute(2, 0, 1).float() / 255)


def test_grey_and_bilevel_become_three_equal_channels(tmp_path: Path) -> None:
    Image.fromarray(np.full((4, 6), 51, np.uint8)).save(tmp_path / "g.png")
    t = read_rgb(tmp_path / "g.png")
    assert t.shape == (3, 4, 6) and torch.allclose(t, torch.full_like(t, 0.2))
    Image.new("1", (3, 2), 1).save(tmp_path / "b.png")
    assert torch.equal(read_rgb(tmp_path / "b.png"), torch.ones(3, 2, 3))


def test_palette_without_and_with_transparency(tmp_path: Path) -> None:
    img = Image.new("P", (4, 4), 0)
    img.putpalette([*RED, *BLUE] + [0] * 762)
    img.putpixel((1, 1), 1)
    img.save(tmp_path / "p.png")
    t = read_rgb(tmp_path / "p.png")
    assert _px(t, 0, 0) == [1.0, 0.0, 0.0] and _px(t, 1, 1) == [0.0, 0.0, 1.0]

    img.save(tmp_path / "pt.png", transparency=0)  # palette index 0 (red) is transparent
    t = read_rgb(tmp_path / "pt.png", background=(0.0, 1.0, 0.0))
    assert _px(t, 0, 0) == [0.0, 1.0, 0.0]  # the background shows through
    assert _px(t, 1, 1) == [0.0, 0.0, 1.0]
    assert _px(read_rgb(tmp_path / "pt.png"), 0, 0) == [1.0, 1.0, 1.0]  # white by default


def test_rgba_and_la_composite_on_background(tmp_path: Path) -> None:
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[0, 0, 3] = 255  # opaque red
    rgba[0, 1, 3] = 0  # fully transparent
    rgba[1, 0, 3] = 51  # alpha 0.2
    Image.fromarray(rgba).save(tmp_path / "a.png")
    t = read_rgb(tmp_path / "a.png", background=(0.0, 0.0, 0.0))
    assert _px(t, 0, 0) == [1.0, 0.0, 0.0]
    assert _px(t, 0, 1) == [0.0, 0.0, 0.0]
    assert _px(t, 1, 0) == [0.2, 0.0, 0.0]
    w = read_rgb(tmp_path / "a.png")  # white: 0.2 * red + 0.8 * white
    assert _px(w, 1, 0) == [1.0, 0.8, 0.8]

    la = np.stack([np.full((2, 2), 0, np.uint8), np.array([[255, 0], [102, 0]], np.uint8)], -1)
    Image.fromarray(la).save(tmp_path / "la.png")
    t = read_rgb(tmp_path / "la.png")
    assert _px(t, 0, 0) == [0.0, 0.0, 0.0] and _px(t, 0, 1) == [1.0, 1.0, 1.0]
    assert _px(t, 1, 0) == [0.6, 0.6, 0.6]


def test_sixteen_bit_grey_keeps_precision(tmp_path: Path) -> None:
    values = np.array([[1000, 1001], [65535, 0]], np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    t = read_rgb(tmp_path / "g16.png")
    assert t.shape == (3, 2, 2)
    # Two 16-bit levels one apart stay distinct (an 8-bit detour would merge them).
    assert float(t[0, 0, 1] - t[0, 0, 0]) == pytest.approx(1 / 65535, rel=1e-3)
    assert float(t[0, 1, 0]) == 1.0 and float(t[0, 1, 1]) == 0.0
    assert torch.equal(t[0], t[2])


def test_cmyk_jpeg(tmp_path: Path) -> None:
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=95)
    t = read_rgb(tmp_path / "c.jpg")
    assert t.shape == (3, 16, 16)
    r, g, b = (float(c) for c in t[:, 8, 8])
    assert r > 0.9 and g < 0.1 and b < 0.1  # cyan 0, magenta+yellow full = red


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    arr = np.zeros((20, 40, 3), np.uint8)  # stored 40 wide, 20 high
    arr[:5, :5] = RED  # red block at the stored top-left
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    img.save(tmp_path / "r.jpg", exif=exif, quality=95)
    t = read_rgb(tmp_path / "r.jpg")
    assert t.shape == (3, 40, 20)  # displayed upright: 20 wide, 40 high
    assert float(t[0, 1, 18]) > 0.8 and float(t[1, 1, 18]) < 0.2  # top-left went to top-right
    assert float(t[0, 1, 1]) < 0.2


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"definitely not an image", "not a recognised image format"), (None, "corrupt or truncated")],
)
def test_corrupt_file_raises_with_filename(tmp_path: Path, content: bytes | None, reason: str) -> None:
    path = tmp_path / "broken_file.png"
    if content is None:  # a real PNG cut in half
        buf = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(buf, "PNG")
        content = buf.getvalue()[: len(buf.getvalue()) // 2]
    path.write_bytes(content)
    with pytest.raises(ImageReadError) as info:
        read_rgb(path)
    assert "broken_file.png" in str(info.value) and reason in str(info.value)
    assert isinstance(info.value, OSError)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match=r"nope\.png: file not found"):
        read_rgb(tmp_path / "nope.png")
    with pytest.raises(ImageReadError, match="directory"):
        read_rgb(tmp_path)


def test_decompression_bomb_guard(tmp_path: Path) -> None:
    Image.new("RGB", (100, 80)).save(tmp_path / "big.png")
    with pytest.raises(ImageReadError, match=r"big\.png: 100x80 = 8000 pixels exceeds max_pixels=5000"):
        read_rgb(tmp_path / "big.png", max_pixels=5000)
    assert read_rgb(tmp_path / "big.png", max_pixels=8000).shape == (3, 80, 100)
    assert read_rgb(tmp_path / "big.png", max_pixels=None).shape == (3, 80, 100)


def test_bad_background_is_refused(tmp_path: Path) -> None:
    Image.new("RGB", (2, 2)).save(tmp_path / "x.png")
    with pytest.raises(ValueError, match="background"):
        read_rgb(tmp_path / "x.png", background=(255, 255, 255))


def _animated_gif(path: Path) -> None:
    first = Image.new("RGB", (8, 8), RED)
    # second frame: a blue 2x2 square, the rest transparent -> keeps frame 1 underneath (disposal 1)
    second = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    second.paste(Image.new("RGBA", (2, 2), (*BLUE, 255)), (3, 3))
    third = Image.new("RGB", (8, 8), (0, 255, 0))
    first.save(path, save_all=True, append_images=[second, third], duration=50, loop=0, disposal=1)


def test_read_frames_composites_gif_frames(tmp_path: Path) -> None:
    _animated_gif(tmp_path / "anim.gif")
    frames = read_frames(tmp_path / "anim.gif")
    assert len(frames) == 3 and all(f.shape == (3, 8, 8) for f in frames)
    assert _px(frames[0], 0, 0) == [1.0, 0.0, 0.0]
    assert _px(frames[1], 4, 4) == [0.0, 0.0, 1.0]  # the new square
    assert _px(frames[1], 0, 0) == [1.0, 0.0, 0.0]  # the previous frame shows through
    assert _px(frames[2], 0, 0) == [0.0, 1.0, 0.0]
    assert torch.equal(read_rgb(tmp_path / "anim.gif"), frames[0])  # read_rgb: first frame
    assert len(read_frames(tmp_path / "anim.gif", max_frames=2)) == 2


def test_read_frames_gif_disposal_restore_to_background(tmp_path: Path) -> None:
    first = Image.new("RGBA", (8, 8), (*RED, 255))
    first.putpixel((7, 7), (0, 0, 0, 0))  # a transparent index, as sprite GIFs have
    second = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    second.paste(Image.new("RGBA", (2, 2), (*BLUE, 255)), (3, 3))
    # disposal 2: frame 1's area is cleared (to the transparent index) before frame 2 is drawn
    first.save(tmp_path / "d.gif", save_all=True, append_images=[second], duration=50, disposal=2)
    frames = read_frames(tmp_path / "d.gif", background=(0.0, 1.0, 0.0))
    assert _px(frames[1], 4, 4) == [0.0, 0.0, 1.0]
    assert _px(frames[1], 0, 0) == [0.0, 1.0, 0.0]  # no red ghost of frame 1: the background shows


def test_read_frames_of_a_still_image(tmp_path: Path) -> None:
    Image.new("RGB", (3, 3), BLUE).save(tmp_path / "s.png")
    frames = read_frames(tmp_path / "s.png")
    assert len(frames) == 1 and torch.equal(frames[0], read_rgb(tmp_path / "s.png"))


def test_write_png_roundtrip_atomic_and_parents(tmp_path: Path) -> None:
    t = torch.rand(3, 9, 11, generator=torch.Generator().manual_seed(0))
    out = write_rgb(tmp_path / "a" / "b" / "x.png", t)
    back = read_rgb(out)
    assert torch.equal(back, (t * 255).round() / 255)
    assert sorted(p.name for p in out.parent.iterdir()) == ["x.png"]  # no temporary file left


def test_write_png_compression_is_lossless_at_every_setting(tmp_path: Path) -> None:
    low = torch.rand(3, 6, 6, generator=torch.Generator().manual_seed(1))
    t = torch.nn.functional.interpolate(low[None], size=(64, 64), mode="bicubic")[0]
    t = t * 1.4 - 0.2  # some values outside [0, 1]: clamped on write
    expected = (t.clamp(0, 1) * 255).round() / 255
    sizes = {}
    for level in (None, 0, 9):
        out = write_rgb(tmp_path / f"{level}.png", t, compress_level=level)
        assert torch.equal(read_rgb(out), expected)
        sizes[level] = out.stat().st_size
    assert sizes[0] > sizes[None]  # level 0 stores, the fast default compresses
    with pytest.raises(ValueError, match="compress_level must be 0-9"):
        write_rgb(tmp_path / "bad.png", t, compress_level=10)


def test_write_jpeg_grey_and_quality(tmp_path: Path) -> None:
    t = torch.linspace(0, 1, 32).expand(3, 32, 32).clone()
    write_rgb(tmp_path / "hi.jpg", t, quality=95)
    write_rgb(tmp_path / "lo.jpeg", t, quality=10)
    assert (tmp_path / "hi.jpg").stat().st_size > (tmp_path / "lo.jpeg").stat().st_size
    assert (read_rgb(tmp_path / "hi.jpg") - t).abs().mean() < 0.02
    write_rgb(tmp_path / "g.png", t[:1])
    with Image.open(tmp_path / "g.png") as img:
        assert img.mode == "L"


def test_write_refuses_overwrite_bad_suffix_and_shape(tmp_path: Path) -> None:
    t = torch.zeros(3, 2, 2)
    write_rgb(tmp_path / "x.png", t)
    write_rgb(tmp_path / "x.png", t + 1)  # overwrite=True by default
    assert float(read_rgb(tmp_path / "x.png").min()) == 1.0
    with pytest.raises(FileExistsError, match=r"x\.png"):
        write_rgb(tmp_path / "x.png", t, overwrite=False)
    with pytest.raises(ValueError, match="suffix"):
        write_rgb(tmp_path / "x.xyz", t)
    with pytest.raises(ValueError, match=r"\(3, H, W\)"):
        write_rgb(tmp_path / "y.png", torch.zeros(1, 3, 2, 2))


def test_list_images_filters_sorts_and_skips_hidden(tmp_path: Path) -> None:
    for rel in ["b/2.png", "b/1.JPG", "a.webp", "b/c/3.tiff", ".hidden.png", ".git/x.png", "b/.x.png",
                "NOTICE", "notes.txt", "b/c/readme.md"]:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")
    rels = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert rels == ["a.webp", "b/1.JPG", "b/2.png", "b/c/3.tiff"]
    assert [p.name for p in list_images(tmp_path, recursive=False)] == ["a.webp"]
    with pytest.raises(FileNotFoundError, match="missing"):
        list_images(tmp_path / "missing")


def test_emoji_fixture_is_readable_colour_64px(emoji_dir: Path) -> None:
    paths = list_images(emoji_dir)
    assert len(paths) == 30
    assert {p.parent.name for p in paths} == {"face-smiling", "plant-other", "heart", "animal-marine",
                                             "plant-flower", "food-vegetable"}
    for p in paths:
        t = read_rgb(p)
        assert t.shape == (3, 64, 64) and not is_grey(t)
    assert (emoji_dir / "NOTICE").is_file()
    total = sum(p.stat().st_size for p in emoji_dir.rglob("*") if p.is_file())
    assert total < 300 * 1024


def test_as_saved_8bit_is_what_the_written_file_holds(tmp_path: Path) -> None:
    image = torch.rand(3, 9, 11, generator=torch.Generator().manual_seed(0)) * 1.4 - 0.2  # some out of [0, 1]
    write_rgb(tmp_path / "x.png", image)
    torch.testing.assert_close(as_saved_8bit(image), read_rgb(tmp_path / "x.png"), rtol=0, atol=1e-7)


def test_read_alpha_matches_read_rgb_in_size_and_is_none_when_opaque(tmp_path):
    from fewcolor.io.image import keeps_alpha, read_rgb_alpha

    def read_alpha(path, **kw):
        return read_rgb_alpha(path, **kw)[1]

    rgba = np.zeros((40, 60, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[10:30, 10:50, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "s.png")
    alpha = read_alpha(tmp_path / "s.png")
    assert alpha is not None and alpha.shape == (1, 40, 60) and alpha.sum() == 20 * 40
    reduced = read_alpha(tmp_path / "s.png", pixel_budget=600)  # reduced on decode as read_rgb reduces
    assert reduced is not None and reduced.shape[-2:] == read_rgb(tmp_path / "s.png", pixel_budget=600).shape[-2:]
    Image.fromarray(rgba[..., :3]).save(tmp_path / "opaque.png")
    rgba[..., 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "full.png")
    assert read_alpha(tmp_path / "opaque.png") is None and read_alpha(tmp_path / "full.png") is None
    assert keeps_alpha("x.png") and keeps_alpha("x.WEBP") and not keeps_alpha("x.jpg")


def test_write_rgb_with_alpha_round_trips_and_refuses_what_cannot_hold_it(tmp_path):
    rgb, alpha = torch.rand(3, 8, 6), (torch.rand(1, 8, 6) * 255).round() / 255
    write_rgb(tmp_path / "a.png", rgb, alpha=alpha)
    with Image.open(tmp_path / "a.png") as img:
        assert img.mode == "RGBA"
        assert torch.equal(torch.from_numpy(np.asarray(img)[..., 3].copy()).float()[None] / 255, alpha)
    with pytest.raises(ValueError, match="holds no transparency"):
        write_rgb(tmp_path / "a.jpg", rgb, alpha=alpha)
    with pytest.raises(ValueError, match="expected"):
        write_rgb(tmp_path / "b.png", rgb, alpha=alpha[:, :4])


def test_uncomposite_takes_the_background_out_of_half_transparent_pixels():
    from fewcolor.io.image import uncomposite

    fg = torch.tensor([0.8, 0.2, 0.1]).view(3, 1, 1).expand(3, 2, 2)
    alpha = torch.tensor([[[1.0, 0.5], [0.25, 0.0]]])
    composited = fg * alpha + 1.0 * (1 - alpha)  # on white, as read_rgb composites
    out = uncomposite(composited, alpha)
    assert torch.allclose(out[:, 0, 0], fg[:, 0, 0]) and torch.allclose(out[:, 0, 1], fg[:, 0, 1], atol=1e-6)
    assert torch.allclose(out[:, 1, 0], fg[:, 1, 0], atol=1e-6)
    assert torch.equal(out[:, 1, 1], composited[:, 1, 1])  # fully transparent: left as it is
