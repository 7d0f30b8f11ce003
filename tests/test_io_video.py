"""Clips: video files (PyAV), animated GIFs and folders of frames keep their frame count and size."""

from __future__ import annotations

import pytest
import torch

from fewcolor.io.image import write_rgb
from fewcolor.io.video import VideoError, is_clip, read_clip, write_clip


def frames(n: int = 4, h: int = 21, w: int = 30) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.rand(3, h, w, generator=g) for _ in range(n)]


@pytest.mark.parametrize("name", ["clip.mp4", "clip.mkv"])
def test_video_files_keep_frame_count_size_and_rate(tmp_path, name):
    pytest.importorskip("av")
    path = write_clip(tmp_path / name, frames(5, 21, 30), fps=12)  # odd height: yuv444p keeps the size
    clip = read_clip(path)
    assert len(clip.frames) == 5 and clip.frames[0].shape == (3, 21, 30)
    assert clip.fps == pytest.approx(12)
    assert is_clip(path)


def test_video_colours_survive_the_codec(tmp_path):
    pytest.importorskip("av")
    flat = [torch.tensor([0.8, 0.3, 0.1]).view(3, 1, 1).expand(3, 32, 48).clone() for _ in range(3)]
    clip = read_clip(write_clip(tmp_path / "flat.mp4", flat, fps=10))
    assert (clip.frames[1] - flat[1]).abs().mean() < 0.03


def test_gif_and_frame_folder_round_trip(tmp_path):
    gif = read_clip(write_clip(tmp_path / "clip.gif", frames(3), fps=10))
    assert len(gif.frames) == 3 and gif.frames[0].shape == (3, 21, 30) and gif.fps == pytest.approx(10)
    folder = read_clip(write_clip(tmp_path / "frames", frames(3)))
    assert len(folder.frames) == 3 and torch.allclose(folder.frames[2], frames(3)[2], atol=1 / 255)
    assert not is_clip(tmp_path / "frames")


def test_a_still_gif_or_one_too_large_to_inspect_is_not_a_clip(tmp_path):
    import struct

    from PIL import Image

    still = tmp_path / "still.gif"
    Image.new("RGB", (8, 8), (200, 10, 10)).save(still)
    bomb = tmp_path / "bomb.gif"  # a header claiming 60000x60000: the image reader refuses it, naming it
    bomb.write_bytes(b"GIF89a" + struct.pack("<HHBBB", 60000, 60000, 0, 0, 0) + b";")
    assert not is_clip(still) and not is_clip(bomb) and not is_clip(tmp_path / "absent.gif")


def test_bad_frame_in_a_folder_is_reported_and_skipped(tmp_path):
    for i, f in enumerate(frames(2)):
        write_rgb(tmp_path / f"f{i}.png", f)
    (tmp_path / "f9.png").write_bytes(b"not a png")
    clip = read_clip(tmp_path)
    assert len(clip.frames) == 2 and len(clip.skipped) == 1 and "f9.png" in clip.skipped[0]


def test_clip_errors_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(VideoError, match="no frames"):
        write_clip(tmp_path / "x.mp4", [])
    with pytest.raises(VideoError, match="one size"):
        write_clip(tmp_path / "x.gif", [torch.rand(3, 8, 8), torch.rand(3, 9, 8)])
    with pytest.raises(VideoError, match="cannot write"):
        write_clip(tmp_path / "x.flv", frames(2))
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(VideoError, match="not a clip"):
        read_clip(tmp_path / "notes.txt")


def test_a_frame_folder_of_two_sizes_is_refused_when_read_naming_the_odd_frame(tmp_path):
    write_rgb(tmp_path / "f0.png", frames(1)[0])
    write_rgb(tmp_path / "f1.png", frames(1, h=22)[0])
    with pytest.raises(VideoError, match=r"f1\.png: 30x22, but the clip's first frame f0\.png is 30x21"):
        read_clip(tmp_path)
