"""fewcolor: few-shot automatic image colorization.

Three-line use::

    from fewcolor import Colorizer
    colorizer = Colorizer.pretrained()               # or Colorizer.from_checkpoint("model.safetensors")
    colorizer.colorize_file("grey.jpg", "colour.png")

``colorizer.colorize(x)`` takes a path, a PIL image, a numpy array or a torch tensor (or a list of them) and
gives back the same kind (a PIL image for a path). A missing or unreadable image raises
:class:`ImageReadError`, a missing or unreadable model :class:`CheckpointError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fewcolor.version import __version__

if TYPE_CHECKING:  # type checkers see the classes; at run time they load on first use (below)
    from fewcolor.io.checkpoint import CheckpointError
    from fewcolor.io.image import ImageReadError
    from fewcolor.pipeline import Colorizer

__all__ = ["CheckpointError", "Colorizer", "ImageReadError", "__version__"]


def __getattr__(name: str) -> type:
    # Lazy so that `import fewcolor` stays cheap (no torch import for `--help`).
    if name == "Colorizer":
        from fewcolor.pipeline import Colorizer

        return Colorizer
    if name == "ImageReadError":
        from fewcolor.io.image import ImageReadError

        return ImageReadError
    if name == "CheckpointError":
        from fewcolor.io.checkpoint import CheckpointError

        return CheckpointError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({n for n in globals() if n.startswith("__")} | set(__all__))
