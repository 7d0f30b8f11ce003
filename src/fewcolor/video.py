"""Colour a clip (video, animated image, folder of frames) from one or more coloured keyframes.

With the ``exemplar`` method every frame is matched to the supports — the keyframes given, else the
model's stored supports — *and* to the previous coloured frame, which enters as one more support whose
pixels carry the confidence they were coloured with (``fewcolor.methods.exemplar``): colours that were
sure stay put from frame to frame, colours that were guesses do not spread. ``propagate=False`` colours
every frame on its own (the per-frame baseline of the temporal-stability numbers,
``fewcolor.metrics.temporal``). Any other method colours frame by frame through the pipeline.
"""

from __future__ import annotations

from typing import Any

import torch
from tqdm.auto import tqdm

from fewcolor.color.lab import merge_l_ab
from fewcolor.methods.base import InferenceOptionError
from fewcolor.methods.exemplar import Exemplar, Supports
from fewcolor.pipeline import Colorizer


def colorize_clip(colorizer: Colorizer, frames: list[torch.Tensor], keyframes: list[torch.Tensor] | None = None,
                  propagate: bool = True, progress: bool = True, **options: Any) -> list[torch.Tensor]:
    """Coloured frames ``(3,H,W)`` for the (grey or colour) ``frames``; only their lightness is used.

    ``keyframes``: coloured RGB images ``(3,h,w)`` to colour from (exemplar models only).
    ``options``: inference options of the method (e.g. ``fallback``).
    """
    method = colorizer.method
    bar = tqdm(frames, desc="colorize clip", unit="frame", disable=not progress)
    if not isinstance(method, Exemplar):
        if keyframes:
            raise InferenceOptionError(f"{method.name}: keyframes need an exemplar model "
                                       f"(fewcolor adapt exemplar --data KEYFRAMES -o model.safetensors)")
        return [colorizer.colorize(frame, **options) for frame in bar]
    method.check_options(options)
    if options.get("reference") is not None:
        raise InferenceOptionError("exemplar: give a clip's references as keyframes, not as reference")
    fallback = options.get("fallback")
    out: list[torch.Tensor] = []
    with torch.no_grad():
        base = Supports.concat([method.encode_rgb(k) for k in keyframes]) if keyframes else method.stored_supports()
        previous: Supports | None = None
        for frame in bar:
            l_full, l_small = colorizer.working_l(frame)
            supports = base if previous is None else Supports.concat([base, previous])
            pyramid = method.pyramid_of(l_small)
            ab, confidence = method.transfer(l_small, supports, fallback, pyramid=pyramid)
            if propagate:
                previous = method.encode(l_small, ab, confidence, pyramid=pyramid)
            out.append(merge_l_ab(l_full[0], colorizer.full_size_ab(ab, *l_full.shape[-2:])))
    return out
