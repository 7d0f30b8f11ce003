"""The LPIPS v0.1 linear heads (Zhang et al., CVPR 2018, eq. 1: per-channel weights w_l), from ``lpips``.

The package files hold ``lin{k}.model.1.weight`` shaped (1, C_k, 1, 1) (CUDA tensors, loaded to CPU);
converted to ``lin{k}.weight``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from fewcolor.backbones.weights import WeightSpec, read_any, register_weights

_LPIPS_RAW = "https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/master/lpips/weights/v0.1/"
_SHA256 = {
    "alex": "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
    "vgg": "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
}


def _convert(path: Path) -> dict[str, torch.Tensor]:
    state = read_any(path)
    return {k.replace(".model.1.", "."): v for k, v in state.items()}


for _net in ("alex", "vgg"):
    register_weights(WeightSpec(
        name=f"lpips_{_net}_lin", description=f"LPIPS v0.1 linear heads for {_net}",
        filename=f"lpips_v0.1_{_net}.pth", converter=_convert,
        url=_LPIPS_RAW + f"{_net}.pth", sha256=_SHA256[_net],
        package="lpips==0.1.4", package_module="lpips", package_file=f"weights/v0.1/{_net}.pth",
    ))
