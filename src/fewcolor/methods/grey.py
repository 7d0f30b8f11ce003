"""The "do nothing" baseline: the grey input itself (ab = 0 everywhere).

No paper: every table needs it, because a colourisation that scores worse than leaving the image grey
has made things worse. It has no weights; training and adaptation change nothing (``adapt`` reports
its own — empty — mechanism, so no fine-tuning run is spent on it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from fewcolor.data.protocol import Dataset
from fewcolor.methods.base import AdaptSettings, Method, Phase
from fewcolor.methods.registry import register_method


@dataclass
class GreyConfig:
    image_size: int = 256  #: working resolution (irrelevant to the output; kept for the pipeline)


@register_method
class Grey(Method):
    name = "grey"
    summary = "baseline: the grey input itself (zero chroma); no weights, nothing to train or adapt"
    Config = GreyConfig
    presets: ClassVar[dict[str, dict[str, Any]]] = {"paper": {}, "cpu": {"image_size": 64}, "tiny": {"image_size": 32}}
    adapt_defaults = AdaptSettings(steps=0)
    learns_in_steps = False

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {}

    def training_step(self, batch: dict[str, Any], step: int) -> Iterator[Phase]:
        yield from ()

    def adapt(self, support_data: Dataset, steps: int, seed: int = 0, progress: bool = False) -> bool:
        return True  # nothing to adapt: the support is ignored

    def predict_ab(self, l: torch.Tensor, **options: Any) -> torch.Tensor:
        self.check_options(options)
        return torch.zeros(l.shape[0], 2, *l.shape[-2:], device=l.device, dtype=l.dtype)
