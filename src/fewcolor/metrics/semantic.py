"""Classifier-based scores of colourized images: semantic interpretability and an Inception-Score stand-in.

**Semantic interpretability** (Zhang, Isola & Efros 2016, §3.1, Table 1 "VGG Top-1 Class Acc"): a
pretrained ImageNet classifier, never trained on colourized images, labels the colourized images; the
better the colours, the nearer its top-1 accuracy comes to that on the original colour images, and the
further above that on the grey inputs. Zhang et al. used VGG-16 on 10,000 ImageNet validation images; the
stand-in here is EfficientNet-Lite0 (the ImageNet classifier whose weights install offline), so the numbers
are this classifier's, named ``*_efficientnet_lite0``. :func:`semantic_scores` reports, for colourized /
grey / original images:

- ``accuracy``: top-1 accuracy against ImageNet-1k class indices, where the images' labels map to them
  (:data:`IMAGENETTE_IMAGENET_INDEX` for Imagenette's wnids, or a mapping the caller gives); images whose
  label has no index are left out;
- ``agreement``: the share of images whose top-1 class equals the classifier's top-1 class on the original
  colour image — needs no labels, so it also works for Tiny-ImageNet (whose 200 wnids we cannot map to the
  1k indices offline) and unlabelled folders. The originals agree with themselves (1.0).

**IS (EfficientNet-Lite0)**: the Inception Score formula (Salimans et al. 2016; MetalGAN's Table 1) applied to
EfficientNet-Lite0's 1000-way softmax. It is *not* the Inception Score: that needs the 1008-way Inception
head (``fewcolor.metrics.fid.InceptionFeatures.logits``, available when the user supplies pytorch-fid's
weights), and :func:`classifier_inception_score` is always reported under its own name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from fewcolor.metrics.fid import inception_score

#: Imagenette's 10 wnids → their ImageNet-1k class index (the index of the wnid among the 1000 sorted
#: wnids). Checked on this machine: EfficientNet-Lite0's most frequent top-1 class on 12 Imagenette val
#: images per class is this index for 9 classes; for the cassette player (482) it is the tape player (848),
#: with 482 second.
IMAGENETTE_IMAGENET_INDEX: dict[str, int] = {
    "n01440764": 0,  # tench
    "n02102040": 217,  # English springer
    "n02979186": 482,  # cassette player
    "n03000684": 491,  # chain saw
    "n03028079": 497,  # church
    "n03394916": 566,  # French horn
    "n03417042": 569,  # garbage truck
    "n03425413": 571,  # gas pump
    "n03445777": 574,  # golf ball
    "n03888257": 701,  # parachute
}

CLASSIFIER = "efficientnet_lite0"
CLASSIFIER_SIZE = 224


class ImageNetClassifier(nn.Module):
    """EfficientNet-Lite0 on RGB in [0, 1] of any size: resized to 224×224 (bilinear, antialiased), TF
    preprocessing ``(x − 127) / 128`` on 0–255; returns the 1000 ImageNet logits. ``pretrained=False``
    builds random weights (tests)."""

    mean: torch.Tensor  # registered buffer
    std: torch.Tensor  # registered buffer

    def __init__(self, pretrained: bool = True) -> None:
        super().__init__()
        from fewcolor.backbones.registry import backbone_info, load_backbone

        info = backbone_info(CLASSIFIER)
        self.net = load_backbone(CLASSIFIER, pretrained=pretrained)
        self.weights_source = str(getattr(self.net, "weights_source", ""))
        self.register_buffer("mean", torch.tensor(info.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(info.std).view(1, 3, 1, 1), persistent=False)
        self.eval()

    @torch.no_grad()
    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(rgb.float(), size=(CLASSIFIER_SIZE, CLASSIFIER_SIZE), mode="bilinear",
                          align_corners=False, antialias=True)
        return self.net((x - self.mean) / self.std)


def classifier_logits(classifier: Callable[[torch.Tensor], torch.Tensor], images: Iterable[torch.Tensor],
                      batch_size: int = 32, size: int = CLASSIFIER_SIZE) -> torch.Tensor:
    """Logits ``(N, classes)`` of a sequence of ``(3, H, W)`` images (sizes may differ), each resized to
    ``size``² (the classifier's input side: 224 here, 299 for Inception) and classified in batches."""
    out: list[torch.Tensor] = []
    batch: list[torch.Tensor] = []
    for img in images:
        batch.append(F.interpolate(img[None].float(), size=(size, size), mode="bilinear",
                                   align_corners=False, antialias=True)[0])
        if len(batch) == batch_size:
            out.append(classifier(torch.stack(batch)))
            batch = []
    if batch:
        out.append(classifier(torch.stack(batch)))
    if not out:
        raise ValueError("classifier_logits: no images")
    return torch.cat(out)


@dataclass
class SemanticScores:
    """Top-1 accuracy (None without mapped labels) and agreement with the originals, per image set."""

    accuracy: dict[str, float | None]
    agreement: dict[str, float]
    n: int
    n_labelled: int
    classifier: str

    def as_dict(self) -> dict[str, object]:
        suffix = f"_{CLASSIFIER}"
        out: dict[str, object] = {"n": self.n, "n_labelled": self.n_labelled, "classifier": self.classifier}
        for name, value in self.accuracy.items():
            out[f"top1_{name}{suffix}"] = value
        for name, value in self.agreement.items():
            out[f"agreement_{name}{suffix}"] = value
        return out


def semantic_scores(
    logits: Mapping[str, torch.Tensor], imagenet_labels: Sequence[int] | None = None, reference: str = "original"
) -> SemanticScores:
    """Scores from classifier logits per image set (e.g. ``{"colourized": ..., "grey": ..., "original":
    ...}``, each ``(N, 1000)``, image i the same picture in every set). ``imagenet_labels`` (N,): the
    ImageNet-1k index of each image, −1 where unknown. ``reference`` names the set the agreement is
    measured against."""
    if reference not in logits:
        raise ValueError(f"semantic_scores: the reference set {reference!r} is missing (sets: {sorted(logits)})")
    top1 = {name: z.argmax(dim=1) for name, z in logits.items()}
    n = top1[reference].numel()
    if any(t.numel() != n for t in top1.values()):
        raise ValueError(f"semantic_scores: every set needs {n} images, got {[t.numel() for t in top1.values()]}")
    agreement = {name: float((t == top1[reference]).float().mean()) for name, t in top1.items()}
    accuracy: dict[str, float | None] = {name: None for name in top1}
    n_labelled = 0
    if imagenet_labels is not None:
        labels = torch.as_tensor(list(imagenet_labels), dtype=torch.long)
        known = labels >= 0
        n_labelled = int(known.sum())
        if n_labelled:
            accuracy = {name: float((t[known] == labels[known]).float().mean()) for name, t in top1.items()}
    return SemanticScores(accuracy, agreement, n, n_labelled, CLASSIFIER)


def classifier_inception_score(logits: torch.Tensor, splits: int = 10) -> dict[str, float | str]:
    """"IS (EfficientNet-Lite0)": Salimans et al.'s formula ``exp E_x KL(p(y|x) ‖ p(y))`` on this classifier's
    1000-way softmax (mean and std over ``splits``). A stand-in, not comparable with published IS values."""
    mean, std = inception_score(logits, splits)
    return {"is_efficientnet_lite0": mean, "is_efficientnet_lite0_std": std, "classifier": CLASSIFIER}
