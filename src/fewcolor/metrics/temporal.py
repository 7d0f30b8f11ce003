"""Temporal stability of a coloured clip: how much colour flickers where the picture does not change.

``temporal_ab_change`` is the mean over consecutive frame pairs of the mean ab distance
``‖ab_t − ab_{t−1}‖₂`` (CIELAB units) over the pixels whose lightness changes by less than
``l_threshold`` between the two frames (static pixels). Computed on the ground truth it is the clip's
own colour change there (≈ 0 for an animation); a colorizer that flickers scores higher. Give every
clip compared the same lightness (a colorizer keeps the input's L), so all use the same pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fewcolor.color.lab import rgb_to_lab

#: a pixel is static when its L changes by less than this between two frames (CIELAB L units)
STATIC_L = 1.0


def temporal_ab_change(frames: Sequence[torch.Tensor], l_threshold: float = STATIC_L,
                       reference_l: Sequence[torch.Tensor] | None = None) -> tuple[float, float]:
    """(mean ab change on static pixels, share of pixels that are static) for RGB frames ``(3,H,W)``.

    ``reference_l``: the frames whose lightness decides which pixels are static (default: ``frames``'
    own), e.g. the ground truth, so several colourings are scored on exactly the same pixels.
    """
    if len(frames) < 2:
        raise ValueError("temporal_ab_change needs at least two frames")
    lab = rgb_to_lab(torch.stack([f.float() for f in frames]))
    l_src = lab[:, :1] if reference_l is None else rgb_to_lab(torch.stack([f.float() for f in reference_l]))[:, :1]
    if l_src.shape[0] != lab.shape[0] or l_src.shape[-2:] != lab.shape[-2:]:
        raise ValueError("temporal_ab_change: reference_l must have as many frames of the same size")
    static = (l_src[1:] - l_src[:-1]).abs()[:, 0] < l_threshold
    change = (lab[1:, 1:] - lab[:-1, 1:]).norm(dim=1)
    if not static.any():
        return float("nan"), 0.0
    return float(change[static].mean()), float(static.float().mean())
