"""What the web server refuses at the door, each refusal a 4xx with a one-line reason.

Uploads are judged by their content (Pillow's identification of the bytes, never the file name) and by
their header's pixel count before anything is decoded, so an oversized or disguised file costs only the
bytes of its upload.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

#: formats the page accepts (Pillow's names); anything else is refused as "not an image we take"
ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")


@dataclass(frozen=True)
class Limits:
    """The server's door limits (``fewcolor serve --help`` sets them)."""

    #: largest request body (all files of one request together), bytes
    max_upload_bytes: int = 20 * 1024 * 1024
    #: largest image, pixels (width × height) as its header states, checked before decoding
    max_pixels: int = 24_000_000
    #: smallest side the colorizer accepts
    min_side: int = 8
    #: requests admitted at once (working + waiting); more get 429 until one finishes
    queue_size: int = 8
    #: support images in one adaptation request
    max_support_images: int = 10
    #: adaptation steps one request may ask for
    max_adapt_steps: int = 500
    #: MemoPainter-style variants one request may ask for
    max_variants: int = 8


class Refusal(Exception):
    """A request refused at the door: an HTTP status (4xx) and the reason shown to the user."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def check_body_size(content_length: str | None, limits: Limits) -> None:
    """413 for a declared body over the limit; 411 when the size is not declared."""
    if content_length is None:
        raise Refusal(411, "the request must declare its size (Content-Length)")
    try:
        size = int(content_length)
    except ValueError as exc:
        raise Refusal(400, f"Content-Length {content_length!r} is not a number") from exc
    if size > limits.max_upload_bytes:
        raise Refusal(413, f"upload is {size / 2**20:.1f} MiB; the limit is {limits.max_upload_bytes / 2**20:.1f} MiB "
                           "per request")


def sniff_image(path: Path, name: str, limits: Limits) -> tuple[str, int, int]:
    """(format, width, height) of an uploaded file judged by its bytes; raises :class:`Refusal`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                fmt, (width, height) = img.format or "", img.size
    except Image.DecompressionBombError as exc:
        raise Refusal(413, f"{name}: refused as a possible decompression bomb") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise Refusal(415, f"{name}: not an image (its content is none of {', '.join(ACCEPTED_FORMATS)})") from exc
    if fmt not in ACCEPTED_FORMATS:
        raise Refusal(415, f"{name}: {fmt} images are not accepted; use one of {', '.join(ACCEPTED_FORMATS)}")
    if width * height > limits.max_pixels:
        raise Refusal(413, f"{name}: {width}×{height} = {width * height / 1e6:.1f} MP exceeds the pixel budget of "
                           f"{limits.max_pixels / 1e6:.1f} MP")
    if min(width, height) < limits.min_side:
        raise Refusal(422, f"{name}: {width}×{height} is too small; both sides must be at least {limits.min_side}")
    return fmt, width, height
