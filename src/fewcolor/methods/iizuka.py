"""Iizuka, Simo-Serra & Ishikawa 2016, "Let there be Color!: Joint End-to-end Learning of Global and
Local Image Priors for Automatic Image Colorization with Simultaneous Classification" (SIGGRAPH).

Network: :class:`fewcolor.nets.iizuka.IizukaNet` (low-level features shared by a local path at the
image's own size and a global path on a 224×224 resize, fusion layer, colorization net).

Loss (Eq. 2 and 3): ``‖y_color − y*_color‖²_FRO + α · CE(class logits, label)`` with α = 1/300, where
``y_color`` is the colorization network's sigmoid output (chrominance in [0, 1], at H/2×W/2) and the target is
the ground-truth ab "globally normalised" to [0, 1] and scaled to that size (§3.6); per image, averaged over
the batch (``color_loss="frobenius"``). The old per-element mean squared error on [−1, 1] ab at the input size
(``color_loss="mse"``) weighs the classification term (H/2)·(W/2)·2/4 ≈ 6,300 times (224×224) more than the
paper (×4 from the [−1, 1] range, ÷ the 112·112·2 summed outputs).
Training images are resized to a shorter side of 256 and randomly cropped to 224 (``crop_resize = 256/224``;
§4.1), with the paper's batch 128 in the ``paper`` preset. The labels are the
dataset's class folders when every training image has one (and there are at least two classes);
otherwise cluster ids: MetalGAN's clustering (MAC descriptors (Tolias et al. 2016) of the grey training
images from ResNet50 ``layer4.0`` (2048-d) when its weights resolve, else the MACs of VGG16 conv3_3, conv4_3
and conv5_3 (``features.15,features.22,features.29``, after their ReLU) concatenated (1280-d), random weights
with a warning when none has → PCA to 512 → seeded K-means; :mod:`fewcolor.backbones.clustering`, cached).
``extra_metadata`` records which (``label_source``).

Optimiser: ADADELTA as in the paper (§4.1); the cpu preset uses Adam (faster to converge on tiny runs).
Style transfer (§5.3): ``predict_ab(l, global_from=other_l)`` takes the global features from ``other_l``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from fewcolor.backbones.clustering import DEFAULT_FEATURE_SIZE, cluster_dataset
from fewcolor.data.protocol import Dataset, dataset_labels
from fewcolor.data.transforms import Transform, train_transform
from fewcolor.hardware import descriptor_precision
from fewcolor.methods.base import AdaptSettings, InferenceOption, InferenceOptionError, Method, Phase
from fewcolor.methods.registry import register_method
from fewcolor.nets.iizuka import IizukaNet

log = logging.getLogger(__name__)

LABEL_MODES = ("auto", "folders", "clusters", "none")
COLOR_LOSSES = ("frobenius", "mse")


@dataclass
class IizukaConfig:
    image_size: int = 224  #: training/working resolution (the paper trains on 224×224)
    width: float = 1.0  #: channel multiplier (1.0 = the paper's 64…512)
    global_size: int = 224  #: the global path's input side
    fusion_activation: str = "relu"  #: σ of the fusion layer: "relu" (paper) or "sigmoid"
    global_features: bool = True  #: False: the ablation without the global path (no side loss, no style transfer)
    batch_norm: bool = True
    alpha: float = 1 / 300  #: weight of the classification loss (Eq. 3)
    color_loss: str = "frobenius"  #: "frobenius" (Eq. 2: summed on [0,1] chrominance) or "mse" (old: mean, [-1,1])
    crop_resize: float = 256 / 224  #: training images' shorter side → crop_resize·size, then a random size² crop
    labels: str = "auto"  #: "auto" (folders, else clusters), "folders", "clusters", "none"
    num_clusters: int = 16  #: K of K-means when labels are cluster ids (capped at the image count)
    cluster_backbone: str = "auto"  #: "auto" or "backbone:layer" for the MAC descriptors
    cluster_pretrained: bool = True  #: False: random backbone weights (tests)
    optimizer: str = "adadelta"  #: "adadelta" (paper) or "adam"
    lr: float = 1.0  #: ADADELTA's usual 1.0
    seed: int = 0  #: K-means seed


@register_method
class Iizuka(Method):
    train_labels: torch.Tensor  # registered buffer

    name = "iizuka"
    summary = "Iizuka et al. 2016 global+local fusion network with a classification side loss"
    Config = IizukaConfig
    channels_last = True  #: measured faster on the CPU (docs/PERFORMANCE.md)
    #: `fewcolor adapt` defaults, measured on the emoji fixture (docs/ADAPT.md)
    adapt_defaults = AdaptSettings(steps=30, lr_factor=1)
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "paper": {},
        "cpu": {"image_size": 64, "width": 0.25, "global_size": 64, "optimizer": "adam", "lr": 1e-3},
        "tiny": {"image_size": 32, "width": 1 / 8, "global_size": 32, "optimizer": "adam", "lr": 3e-3},
    }
    preset_batch_sizes: ClassVar[dict[str, int]] = {"paper": 128}  # §4.1
    size_multiple = 8
    inference_options = (
        InferenceOption("global_from", "image-l", "take the global (scene) features from this image's L instead "
                        "(style transfer, §3.4)"),
    )

    def __init__(self, config: IizukaConfig) -> None:
        super().__init__(config)
        c = config
        if c.labels not in LABEL_MODES:
            raise ValueError(f"iizuka: labels must be one of {LABEL_MODES}, got {c.labels!r}")
        if c.color_loss not in COLOR_LOSSES:
            raise ValueError(f"iizuka: color_loss must be one of {COLOR_LOSSES}, got {c.color_loss!r}")
        if c.crop_resize < 1:
            raise ValueError(f"iizuka: crop_resize must be >= 1 (crops come from larger images), got {c.crop_resize}")
        if c.optimizer not in ("adadelta", "adam"):
            raise ValueError(f"iizuka: optimizer must be 'adadelta' or 'adam', got {c.optimizer!r}")
        self.net = IizukaNet(c.width, c.global_size, c.fusion_activation, 0, c.batch_norm, c.global_features)
        self.label_source = "none"
        self.label_backbone = ""
        # Cluster id of each training image (by dataset index); empty unless label_source == "clusters".
        self.register_buffer("train_labels", torch.zeros(0, dtype=torch.long))
        self.class_term = True  #: off while fine-tuning on a support set (see write_support)

    # ----- set-up --------------------------------------------------------------------------
    def setup(self, train_data: Dataset) -> None:
        """Choose the class labels (folders or K-means clusters) and build the classification head."""
        c = self.config
        self.label_source, self.label_backbone = "none", ""
        self.train_labels = torch.zeros(0, dtype=torch.long)
        if c.labels == "none" or c.alpha == 0 or not c.global_features:  # the classifier reads the global net
            self.net.set_num_classes(0)
            return
        labels = dataset_labels(train_data)
        usable = bool(labels) and min(labels) >= 0 and len(set(labels)) >= 2
        if c.labels == "folders" and not usable:
            raise ValueError(
                "iizuka: labels='folders' but the training images are not all in class folders (≥2 classes); "
                "arrange them as root/<class>/image or use labels='clusters'"
            )
        if usable and c.labels != "clusters":
            n_classes = max(len(getattr(train_data, "classes", [])), max(labels) + 1)
            self.label_source = "folders"
            self.net.set_num_classes(n_classes)
            log.info("iizuka: classification loss on %d folder classes", n_classes)
            return
        ids, backbone = cluster_labels(train_data, c.num_clusters, c.cluster_backbone, c.cluster_pretrained, c.seed)
        self.label_source, self.label_backbone = "clusters", backbone
        self.train_labels = ids
        self.net.set_num_classes(int(ids.max()) + 1)
        log.info("iizuka: classification loss on %d K-means clusters of %s MAC descriptors",
                 int(ids.max()) + 1, backbone)

    def extra_metadata(self) -> dict[str, Any]:
        return {"label_source": self.label_source, "label_backbone": self.label_backbone,
                "num_classes": self.net.num_classes, "num_train_labels": int(self.train_labels.numel())}

    def load_extra_metadata(self, meta: Any) -> None:
        self.label_source = meta.get("label_source", "none")
        self.label_backbone = meta.get("label_backbone", "")
        self.net.set_num_classes(int(meta.get("num_classes", 0)))
        self.train_labels = torch.zeros(int(meta.get("num_train_labels", 0)), dtype=torch.long)

    # ----- training ------------------------------------------------------------------------
    def train_transform(self, size: int, flip: bool = True) -> Transform:
        """§4.1: random ``size`` crops of images whose shorter side is ``crop_resize · size`` (224 of 256)."""
        return train_transform(size, flip=flip, resize=round(size * self.config.crop_resize))

    def color_loss(self, l: torch.Tensor, ab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The colour term of Eq. 3 and the class logits: ``Σ (y − y*)²`` over the colorization network's
        output (chrominance in [0, 1] at H/2×W/2, target scaled to it), averaged over images; or the old
        per-element mean on normalised ab at the input size (``color_loss="mse"``)."""
        if self.config.color_loss == "mse":
            pred, logits = self.net(l)
            return F.mse_loss(pred, ab), logits
        chroma, logits = self.net.chrominance(l)
        target = F.interpolate(ab.float(), size=chroma.shape[-2:], mode="bilinear", align_corners=False,
                               antialias=True)
        return ((chroma.float() - (target + 1) / 2) ** 2).sum(dim=(1, 2, 3)).mean(), logits

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        if c.optimizer == "adadelta":
            return {"net": torch.optim.Adadelta(self.net.parameters(), lr=c.lr)}
        return {"net": torch.optim.Adam(self.net.parameters(), lr=c.lr)}

    def _labels(self, batch: dict[str, Any]) -> torch.Tensor:
        if self.label_source == "folders":
            return torch.as_tensor(batch["label"], device=self.device).long()
        index = torch.as_tensor(batch["index"], device=self.train_labels.device).long()
        return self.train_labels[index].to(self.device)

    def training_step(self, batch: dict[str, Any], step: int) -> Iterator[Phase]:
        color, logits = self.color_loss(batch["l"], batch["ab"])
        logs = {"loss/color": color.item()}
        loss = color
        labels = self._labels(batch) if logits is not None and self.config.alpha > 0 and self.class_term else None
        if logits is not None and labels is not None and bool((labels >= 0).any()):  # all -1: no class term
            # -1 labels (an image without a class folder) are ignored.
            ce = F.cross_entropy(logits.float(), labels, ignore_index=-1)
            loss = color + self.config.alpha * ce
            logs["loss/class"] = ce.item()
        logs["loss/total"] = loss.item()
        yield Phase("net", loss, logs)

    def write_support(self, support_data: Dataset, seed: int = 0) -> bool:
        """Before fine-tuning on a few support images: drop the class term. Its labels name the training
        set's classes (folders) or images (cluster ids by training index), which support images are not
        (a support image's folder label is −1, and its index would pick a training image's cluster).
        Nothing is written into the model, so this returns False."""
        self.class_term = False
        return False

    # ----- inference -----------------------------------------------------------------------
    def predict_ab(self, l: torch.Tensor, **options: Any) -> torch.Tensor:
        self.check_options(options)
        g = options.get("global_from")
        if g is not None and not self.config.global_features:
            raise InferenceOptionError("iizuka: global_from needs the global features; this model was trained "
                                       "without them (global_features=False)")
        if g is not None:
            if not torch.is_tensor(g) or g.ndim != 4 or g.shape[1] != 1 or g.shape[0] not in (1, l.shape[0]):
                raise InferenceOptionError(
                    "iizuka: global_from must be normalised L shaped (1,1,h,w) or (B,1,h,w), got "
                    f"{tuple(g.shape) if torch.is_tensor(g) else type(g).__name__}"
                )
            g = g.to(device=l.device, dtype=l.dtype)
        return self.net(l, global_from=g)[0]


def cluster_labels(
    data: Dataset, k: int, backbone: str = "auto", pretrained: bool = True, seed: int = 0,
    side: int = DEFAULT_FEATURE_SIZE,
) -> tuple[torch.Tensor, str]:
    """Seeded K-means cluster id per image of MAC descriptors of its grey version at ``side``² (the shared,
    cached :func:`fewcolor.backbones.clustering.cluster_dataset`, PCA to 512 first as MetalGAN does).
    Returns ``(ids (N,), "backbone:layer[ (random weights)]")``."""
    k = max(1, min(int(k), len(data)))
    tasks = cluster_dataset(data, k, backbone=backbone, feature_size=side, seed=seed, pretrained=pretrained,
                            precision=descriptor_precision())
    info = tasks.info
    tag = f"{info['backbone']}:{info['layer']}" + ("" if info["pretrained"] else " (random weights)")
    return tasks.assignments.long(), tag
