"""Clips: read and write the frames of a video file, an animated image or a folder of frames.

* a video file (``.mp4 .mov .mkv .avi .webm``), decoded with PyAV (the optional ``video`` extra:
  ``pip install 'fewcolor[video]'``); written as H.264 (``yuv420p`` when both sides are even, else
  ``yuv444p`` so the size is kept exactly; MPEG-4 Part 2 when the PyAV build has no libx264);
* an animated image (``.gif``, animated ``.png``/``.webp``), read with Pillow
  (:func:`fewcolor.io.image.read_frames`) and written as an animated GIF (Pillow merges identical
  consecutive frames, adding their durations: timing kept, frame count possibly smaller);
* a folder of frames in the order of their names (bad files are reported and skipped), written as
  ``frame_00000.png ...`` into a folder.

Frames are ``(3, H, W)`` float tensors in [0, 1], as everywhere in fewcolor.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from fewcolor.io.atomic import atomic_path
from fewcolor.io.image import ImageReadError, list_images, read_frames, read_rgb, write_rgb

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm"})
ANIMATED_EXTENSIONS = frozenset({".gif", ".png", ".apng", ".webp"})
_CONTAINERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi"}
DEFAULT_FPS = 25.0


class VideoError(ValueError):
    """A clip that cannot be read or written (the message names the file and the fix)."""


@dataclass
class Clip:
    """The frames of a clip, its frame rate and the frame files skipped as unreadable (folders only)."""

    frames: list[torch.Tensor]
    fps: float = DEFAULT_FPS
    skipped: list[str] = field(default_factory=list)


def is_clip(path: str | os.PathLike[str]) -> bool:
    """True for a video file or an animated GIF; a still GIF, any other image or a plain folder is not a clip
    (a GIF Pillow cannot open is not one either: it is reported as a bad image where images are read)."""
    p = Path(path)
    if not p.is_file():
        return False
    suffix = p.suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        return True
    if suffix != ".gif":
        return False
    try:
        with warnings.catch_warnings():  # a huge GIF is the reader's to refuse, naming it
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(p) as img:
                return bool(getattr(img, "is_animated", False))  # stops at the second frame
    except (OSError, ValueError, Image.DecompressionBombError):
        return False


def _av() -> Any:
    try:
        import av
    except ImportError as exc:
        raise VideoError("reading or writing video files needs PyAV: pip install 'fewcolor[video]' "
                         "(or use a GIF or a folder of frames)") from exc
    return av


def read_clip(path: str | os.PathLike[str], max_frames: int | None = None) -> Clip:
    """The frames of a video file, an animated image or a folder of frames (see the module docstring)."""
    p = Path(path)
    if p.is_dir():
        frames: list[torch.Tensor] = []
        skipped: list[str] = []
        first: Path | None = None
        for f in list_images(p, recursive=False):
            if max_frames is not None and len(frames) >= max_frames:
                break
            try:
                frame = read_rgb(f)
            except ImageReadError as exc:
                skipped.append(str(exc))
                continue
            if first is None:
                first = f
            elif frame.shape[-2:] != frames[0].shape[-2:]:  # said now, not after every frame is coloured
                (h, w), (h0, w0) = frame.shape[-2:], frames[0].shape[-2:]
                raise VideoError(f"{f}: {w}x{h}, but the clip's first frame {first.name} is {w0}x{h0}; all frames "
                                 "of a clip must have one size (resize them, or colour them as images without --clip)")
            frames.append(frame)
        if not frames:
            raise VideoError(f"{p}: no readable frames in this folder")
        return Clip(frames, DEFAULT_FPS, skipped)
    if not p.is_file():
        raise VideoError(f"{p}: no such file or folder")
    suffix = p.suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        return _read_video(p, max_frames)
    if suffix in ANIMATED_EXTENSIONS:
        frames = read_frames(p, max_frames=max_frames)
        with Image.open(p) as img:
            duration_ms = float(img.info.get("duration") or 0)
        return Clip(frames, 1000.0 / duration_ms if duration_ms > 0 else DEFAULT_FPS)
    raise VideoError(f"{p}: not a clip; give a video ({', '.join(sorted(VIDEO_EXTENSIONS))}), an animated "
                     f"GIF/PNG/WebP or a folder of frames")


def _read_video(p: Path, max_frames: int | None) -> Clip:
    av = _av()
    frames: list[torch.Tensor] = []
    try:
        with av.open(str(p)) as container:
            if not container.streams.video:
                raise VideoError(f"{p}: the file has no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate) if stream.average_rate else DEFAULT_FPS
            for frame in container.decode(stream):
                if max_frames is not None and len(frames) >= max_frames:
                    break
                array = frame.to_ndarray(format="rgb24")
                frames.append(torch.from_numpy(array).permute(2, 0, 1).float() / 255.0)
    except av.error.FFmpegError as exc:
        raise VideoError(f"{p}: cannot decode the video ({exc})") from exc
    if not frames:
        raise VideoError(f"{p}: the video has no frames")
    return Clip(frames, fps)


def check_clip_output(path: str | os.PathLike[str]) -> None:
    """Raise :class:`VideoError` unless :func:`write_clip` can write a clip at ``path`` (its suffix, and PyAV
    for a video file): checked before any frame is coloured."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in ("", ".gif") and suffix not in _CONTAINERS:
        raise VideoError(f"{p}: cannot write {suffix!r} clips; use {', '.join(sorted(_CONTAINERS))}, .gif, "
                         f"or a path without a suffix for a folder of PNGs")
    if suffix in _CONTAINERS:
        _av()


def write_clip(path: str | os.PathLike[str], frames: list[torch.Tensor], fps: float = DEFAULT_FPS) -> Path:
    """Write frames as a video file, an animated GIF, or (a path without a suffix) a folder of PNGs."""
    p = Path(path)
    if not frames:
        raise VideoError(f"{p}: no frames to write")
    size = tuple(frames[0].shape[-2:])
    if any(tuple(f.shape[-2:]) != size for f in frames):
        raise VideoError(f"{p}: all frames of a clip must have one size")
    check_clip_output(p)
    suffix = p.suffix.lower()
    if suffix == "":
        for i, frame in enumerate(frames):
            write_rgb(p / f"frame_{i:05d}.png", frame)
        return p
    arrays = [(f.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
              for f in frames]
    p.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".gif":
        images = [Image.fromarray(a) for a in arrays]
        with atomic_path(p) as tmp:
            images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                           duration=round(1000 / fps), loop=0)
        return p
    _write_video(p, arrays, fps)
    return p


def _write_video(p: Path, arrays: list[Any], fps: float) -> None:
    av = _av()
    height, width = arrays[0].shape[:2]
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with atomic_path(p) as tmp, av.open(str(tmp), "w", format=_CONTAINERS[p.suffix.lower()]) as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height = width, height
        even = height % 2 == 0 and width % 2 == 0
        stream.pix_fmt = "yuv420p" if even or codec != "libx264" else "yuv444p"
        if codec == "libx264":
            stream.options = {"crf": "18"}
        for array in arrays:
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
