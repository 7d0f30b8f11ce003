"""Res-cGAN, the MemoPainter paper's ablation (Yoo et al., CVPR 2019, Fig. 1 and §4): MemoPainter's AdaIN
U-Net generator and conditional discriminator with no memory network; the generator is conditioned on a
learned constant colour feature. Everything else is :class:`fewcolor.methods.memopainter.MemoPainter`
with ``memory=False``."""

from __future__ import annotations

from fewcolor.methods.memopainter import MemoPainter, MemoPainterConfig
from fewcolor.methods.registry import register_method


@register_method
class ResCGAN(MemoPainter):
    """The paper's Res-cGAN ablation: MemoPainter's networks with no memory (``memory=False``)."""

    name = "res-cgan"
    summary = "Res-cGAN: MemoPainter's AdaIN U-Net cGAN without the memory (learned constant colour feature)"

    def __init__(self, config: MemoPainterConfig) -> None:
        if config.memory:
            config = MemoPainterConfig(**{**config.__dict__, "memory": False})
        super().__init__(config)
