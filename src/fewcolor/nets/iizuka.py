"""Iizuka, Simo-Serra & Ishikawa 2016 "Let there be Color!" (SIGGRAPH), Fig. 2 and Table 1.

- low-level features: six 3×3 convs, stride 2 at convs 1, 3, 5: 64-128-128-256-256-512 → H/8×W/8;
  the same weights run on the image at its own size (local path) and on a 224×224 resize (global path);
- mid-level: two 3×3 convs → 512, 256;
- global features: four 3×3 convs 512 (stride 2 at 1 and 3) then FC 1024 → 512 → 256;
- fusion (§3.3, Eq. 1): ``y_fusion(u,v) = σ(b + W [y_global; y_mid(u,v)])`` at every pixel, i.e. a 1×1 conv
  over the concatenation of the broadcast global vector and the mid-level map; σ = ReLU (the paper's
  transfer function) or sigmoid;
- colorization: conv 128, nearest ×2, conv 64, conv 64, nearest ×2, conv 32, conv 2 + sigmoid → ab at
  H/2×W/2, up-sampled to the input size (§3.4);
- classification (§3.5): FC 256 → classes from the global net's 512-d layer.

Batch normalisation follows every conv/FC except the outputs (§4.1). ``width`` scales every channel count
(1.0 = paper). ``global_size`` is the global path's square input (224; a multiple of 32).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fewcolor.nets.norm import BatchNorm1dAnyBatch, BatchNorm2dAnyBatch


def kaiming_init(module: nn.Module) -> None:
    """He-normal weights (fan-in, ReLU gain) and zero biases for every conv and linear layer: PyTorch's
    default init shrinks activations layer after layer, which leaves a deep untrained net near-constant."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _c(width: float, n: int) -> int:
    return max(4, round(n * width))


def _conv(cin: int, cout: int, stride: int = 1, bn: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=not bn)]
    if bn:
        layers.append(BatchNorm2dAnyBatch(cout))
    layers.append(nn.ReLU(inplace=True))
    return layers


def _fc(cin: int, cout: int, bn: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Linear(cin, cout, bias=not bn)]
    if bn:
        layers.append(BatchNorm1dAnyBatch(cout))
    layers.append(nn.ReLU(inplace=True))
    return layers


class IizukaNet(nn.Module):
    """Global + local colorization network. ``forward(l)`` returns ``(ab_norm, class_logits | None)``."""

    size_multiple = 8

    def __init__(
        self,
        width: float = 1.0,
        global_size: int = 224,
        fusion_activation: str = "relu",
        num_classes: int = 0,
        batch_norm: bool = True,
        use_global: bool = True,
    ) -> None:
        super().__init__()
        #: False: the ablation without global features — the fusion layer sees zeros in their place, so it
        #: is a 1×1 conv of the mid-level features alone (the global net is kept, unused, for its shapes)
        self.use_global = use_global
        if global_size % 32:
            raise ValueError(f"IizukaNet global_size must be a multiple of 32, got {global_size}")
        if fusion_activation not in ("relu", "sigmoid"):
            raise ValueError(f"unknown fusion activation {fusion_activation!r}; use relu or sigmoid")
        c = lambda n: _c(width, n)  # noqa: E731 - local shorthand
        bn = batch_norm
        self.global_size = global_size
        self.fusion_activation = fusion_activation
        self.low = nn.Sequential(
            *_conv(1, c(64), 2, bn), *_conv(c(64), c(128), 1, bn),
            *_conv(c(128), c(128), 2, bn), *_conv(c(128), c(256), 1, bn),
            *_conv(c(256), c(256), 2, bn), *_conv(c(256), c(512), 1, bn),
        )
        self.mid = nn.Sequential(*_conv(c(512), c(512), 1, bn), *_conv(c(512), c(256), 1, bn))
        self.global_conv = nn.Sequential(
            *_conv(c(512), c(512), 2, bn), *_conv(c(512), c(512), 1, bn),
            *_conv(c(512), c(512), 2, bn), *_conv(c(512), c(512), 1, bn),
        )
        side = global_size // 32
        self.global_fc1 = nn.Sequential(*_fc(c(512) * side * side, c(1024), bn), *_fc(c(1024), c(512), bn))
        self.global_fc2 = nn.Sequential(*_fc(c(512), c(256), bn))
        self.fusion = nn.Conv2d(c(256) + c(256), c(256), 1)
        self.colorize = nn.Sequential(
            *_conv(c(256), c(128), 1, bn), nn.Upsample(scale_factor=2, mode="nearest"),
            *_conv(c(128), c(64), 1, bn), *_conv(c(64), c(64), 1, bn),
            nn.Upsample(scale_factor=2, mode="nearest"),
            *_conv(c(64), c(32), 1, bn), nn.Conv2d(c(32), 2, 3, padding=1),
        )
        self.class_width = c(512)
        self.hidden_class_width = c(256)
        self.classifier: nn.Module | None = None
        self.set_num_classes(num_classes)
        kaiming_init(self)

    def set_num_classes(self, num_classes: int) -> None:
        """(Re)build the classification head (FC 256 → classes); 0 removes it."""
        self.num_classes = int(num_classes)
        if self.num_classes > 0:
            self.classifier = nn.Sequential(
                nn.Linear(self.class_width, self.hidden_class_width, bias=False),
                BatchNorm1dAnyBatch(self.hidden_class_width), nn.ReLU(inplace=True),
                nn.Linear(self.hidden_class_width, self.num_classes),
            )
            kaiming_init(self.classifier)
        else:
            self.classifier = None

    def global_features(self, l: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised L of any size → ``(y_global (B,256·w), mid-global (B,512·w))`` on a
        ``global_size``² resize, sharing the low-level weights (§3.2)."""
        g = F.interpolate(l, size=(self.global_size, self.global_size), mode="bilinear",
                          align_corners=False, antialias=True)
        h = self.global_conv(self.low(g)).flatten(1)
        h512 = self.global_fc1(h)
        return self.global_fc2(h512), h512

    def forward(
        self, l: torch.Tensor, global_from: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Normalised L ``(B,1,H,W)`` → normalised ab ``(B,2,H,W)`` and class logits of ``l``'s global
        features (None without a classifier). ``global_from`` (B or 1 images, any size) supplies the
        global features instead of ``l`` — the paper's style transfer (§5.3)."""
        chroma, logits = self.chrominance(l, global_from)
        ab = F.interpolate(chroma, size=l.shape[-2:], mode="bilinear", align_corners=False)
        return ab * 2 - 1, logits

    def chrominance(
        self, l: torch.Tensor, global_from: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The colorization network's own output (§3.4): chrominance in ``[0, 1]`` (the sigmoid's range; ab
        "globally normalised" as ``(ab/110 + 1)/2``) at H/2×W/2, and the class logits; :meth:`forward`
        up-samples it to the input size."""
        m = self.size_multiple
        if l.shape[-1] % m or l.shape[-2] % m:
            raise ValueError(f"IizukaNet needs sides divisible by {m}, got {tuple(l.shape[-2:])}")
        mid = self.mid(self.low(l))
        h512 = None
        if self.use_global:
            y_global, h512 = self.global_features(l if global_from is None else global_from)
            if y_global.shape[0] != mid.shape[0]:
                if y_global.shape[0] != 1:
                    raise ValueError(f"global_from has batch {y_global.shape[0]}, expected 1 or {mid.shape[0]}")
                y_global = y_global.expand(mid.shape[0], -1)
            glob = y_global[:, :, None, None].expand(-1, -1, *mid.shape[-2:])
        elif global_from is not None:
            raise ValueError("global_from needs the global features; this net was built without them")
        else:  # the ablation: zeros in the global features' place
            glob = mid.new_zeros(mid.shape[0], self.fusion.in_channels - mid.shape[1], *mid.shape[-2:])
        fused = self.fusion(torch.cat([glob, mid], dim=1))
        fused = torch.relu(fused) if self.fusion_activation == "relu" else torch.sigmoid(fused)
        chroma = torch.sigmoid(self.colorize(fused))
        logits = None
        if self.classifier is not None and h512 is not None and global_from is None:
            logits = self.classifier(h512)
        return chroma, logits
