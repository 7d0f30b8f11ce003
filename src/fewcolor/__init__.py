"""fewcolor: few-shot automatic image colorization.

Three-line use::

    from fewcolor import Colorizer
    colorizer = Colorizer.from_checkpoint("model.safetensors")
    colorizer.colorize_file("grey.jpg", "colour.png")
"""

from __future__ import annotations

from fewcolor.version import __version__

__all__ = ["Colorizer", "__version__"]


def __getattr__(name: str):
    # Lazy so that `import fewcolor` stays cheap (no torch import for `--help`).
    if name == "Colorizer":
        from fewcolor.pipeline import Colorizer

        return Colorizer
    raise AttributeError(name)
