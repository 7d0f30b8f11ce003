"""The look-up-table baseline: the support images' mean chroma per lightness level.

No paper: the cheapest genuine few-shot colouriser, and the bar a learned method must clear. From the
support images (or a training folder) it accumulates, for each of ``bins`` equal-width L bins over
[0, 100], the sum of a and b and the pixel count; it colours a pixel with the mean (a, b) of its L bin,
or of the nearest filled bin (by bin distance; on a tie, the darker one) when its own is empty. Nothing
is learned by gradients:

- ``adapt`` (its own mechanism) RESETS the table and fills it from the support images — their full
  decoded pixels when the dataset can ``read`` them, else the samples' crops — in one pass, whatever the
  step count;
- ``train`` accumulates every pixel of every training batch into the table (augmented crops, so
  images are counted as often as they are drawn). Under torchrun only rank 0's batches count: the loop
  broadcasts rank 0's buffers after each step.

An empty table colours everything grey.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from fewcolor.color.lab import rgb_to_lab
from fewcolor.color.luminance_lut import band_index, nearest_filled
from fewcolor.color.normalize import denormalize_ab, denormalize_l, normalize_ab
from fewcolor.data.protocol import Dataset
from fewcolor.methods.base import AdaptSettings, Method, Phase
from fewcolor.methods.registry import register_method


@dataclass
class LUTConfig:
    image_size: int = 256  #: working resolution at inference (and the training crop)
    bins: int = 100  #: L bins over [0, 100] (100: one L unit each)


def l_bins(l: torch.Tensor, bins: int) -> torch.Tensor:
    """The bin index of lightness values ``l`` in [0, 100] (L = 100 goes into the last bin)."""
    return band_index(l, 0.0, 100.0, bins)


@register_method
class LUT(Method):
    name = "lut"
    summary = "baseline: mean a,b of the support images per narrow L bin (nearest filled bin elsewhere)"
    Config = LUTConfig
    presets: ClassVar[dict[str, dict[str, Any]]] = {"paper": {}, "cpu": {"image_size": 64},
                                                    "tiny": {"image_size": 32, "bins": 20}}
    adapt_defaults = AdaptSettings(steps=1)  # one pass over the support, whatever the count
    adapts_in_steps = False
    ab_sum: torch.Tensor  #: (bins, 2) float64 buffer: sum of a and b per L bin
    count: torch.Tensor  #: (bins,) float64 buffer: pixels per L bin

    def __init__(self, config: LUTConfig) -> None:
        super().__init__(config)
        if config.bins < 1:
            raise ValueError(f"lut: bins must be >= 1, got {config.bins}")
        self.register_buffer("ab_sum", torch.zeros(config.bins, 2, dtype=torch.float64))
        self.register_buffer("count", torch.zeros(config.bins, dtype=torch.float64))

    # ----- the table ------------------------------------------------------------------------------
    @torch.no_grad()
    def accumulate(self, l: torch.Tensor, ab: torch.Tensor) -> None:
        """Add pixels to the table: L (..., 1, H, W) in [0, 100] and ab (..., 2, H, W) in Lab units."""
        idx = l_bins(l.reshape(-1).to(self.count.device), self.config.bins)
        ab_flat = ab.movedim(-3, -1).reshape(-1, 2).to(self.ab_sum)
        self.ab_sum.index_add_(0, idx, ab_flat)
        self.count.index_add_(0, idx, torch.ones_like(idx, dtype=self.count.dtype))

    def reset(self) -> None:
        self.ab_sum.zero_()
        self.count.zero_()

    def table(self) -> torch.Tensor:
        """The (bins, 2) ab colour of every L bin in Lab units: its mean, or the nearest filled bin's."""
        if not bool((self.count > 0).any()):
            return torch.zeros_like(self.ab_sum)
        mean = self.ab_sum / self.count.clamp_min(1)[:, None]
        return mean[nearest_filled(self.count)]

    # ----- training / adaptation --------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {}

    def training_step(self, batch: dict[str, Any], step: int) -> Iterator[Phase]:
        self.accumulate(denormalize_l(batch["l"].float()), denormalize_ab(batch["ab"].float()))
        yield from ()

    def adapt(self, support_data: Dataset, steps: int, seed: int = 0, progress: bool = False) -> bool:
        """The table of the support images alone (the previous table is discarded)."""
        self.reset()
        for i in range(len(support_data)):
            if hasattr(support_data, "read"):
                lab = rgb_to_lab(support_data.read(i).float())
                self.accumulate(lab[:1], lab[1:])
            else:
                sample = support_data[i]
                self.accumulate(denormalize_l(sample["l"].float()), denormalize_ab(sample["ab"].float()))
        return True

    # ----- inference ----------------------------------------------------------------------------------
    def predict_ab(self, l: torch.Tensor, **options: Any) -> torch.Tensor:
        self.check_options(options)
        idx = l_bins(denormalize_l(l.float()), self.config.bins)[:, 0]  # (B, H, W)
        ab = self.table().to(l.device)[idx]  # (B, H, W, 2)
        return normalize_ab(ab.permute(0, 3, 1, 2)).to(l.dtype)  # not movedim(-1, 1): its ONNX export is invalid
