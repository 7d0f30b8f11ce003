"""Clustering images by content: MAC descriptors → PCA → K-means, cached (MetalGAN §3.1).

MetalGAN (Fontanini et al., ICIAP 2019, §3.1) describes each training image by the MAC descriptor
(Tolias et al. 2016: the channel-wise max of a pretrained conv layer, L2-normalised) of its grey
version, reduces it with PCA to 512 dimensions and clusters the result with K-means (k = 64). MetalGAN
uses the clusters as meta-learning tasks; Iizuka uses them as class labels for its side loss when the
images have no class folders. Both call :func:`cluster_dataset`.

Descriptors and clusters are cached (:mod:`fewcolor.data.cache`) keyed by the dataset fingerprint
(root, paths, file sizes and modification times), the backbone and the settings, so a rerun, or
another k on the same images, does not run the backbone again. In-memory datasets are not cached.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from fewcolor.backbones.features import FeatureExtractor, choose_backbone
from fewcolor.backbones.int8 import CALIBRATION_IMAGES, Int8Descriptor, int8_taps_supported
from fewcolor.backbones.weights import WeightsNotFoundError
from fewcolor.color.lab import rgb_to_l
from fewcolor.color.normalize import normalize_l
from fewcolor.data.cache import cache_file, data_fingerprint, load_tensors, save_tensors
from fewcolor.data.protocol import Dataset
from fewcolor.data.tasks import ClusterTasks, fit_tasks
from fewcolor.hardware import int8_engine, native_bf16

log = logging.getLogger(__name__)

#: descriptor backbones in order of preference: MetalGAN's ResNet50 ``activation_43`` (= ``layer4.0``, 2048-d),
#: else the MAC of VGG16's conv3_3, conv4_3 and conv5_3 concatenated (1280-d). VGG16 conv5 alone is 512-d,
#: which would make MetalGAN's PCA to 512 a rotation that reduces nothing.
VGG16_MULTI_MAC = "features.15,features.22,features.29"
PREFERRED_BACKBONES: tuple[tuple[str, str], ...] = (("resnet50", "layer4.0"), ("vgg16", VGG16_MULTI_MAC))
#: input side of the descriptors unless a caller sets one: the smallest side whose fp32 clusters agree with
#: those at 224 px at least 0.9x as well as 224 px agrees with itself under another K-means seed (970
#: Imagenette photos, docs/PERFORMANCE.md; 128 px passed on a 288-photo sample, not on this larger one).
#: int8 at this side keeps fp32's clusters (and reads 0.96x / 0.89x of that floor at k = 10 / 32)
DEFAULT_FEATURE_SIZE = 160
#: how the descriptor network computes: fp32, bf16 autocast (where the hardware has it), int8 (quantized copy)
DESCRIPTOR_PRECISIONS = ("fp32", "bf16", "int8")


def resolve_backbone(spec: str, pretrained: bool = True) -> tuple[str, str, bool]:
    """``(name, layer, pretrained)`` for ``"auto"`` or ``"name:layer"``.

    ``"auto"`` takes the first of :data:`PREFERRED_BACKBONES` whose weights resolve offline; when none
    does, randomly initialised VGG16 (seeded), with a warning. ``pretrained=False`` asks for random weights.
    """
    if spec != "auto":
        name, _, layer = spec.partition(":")
        if not layer:
            raise ValueError(f"backbone must be 'auto' or 'name:layer' (e.g. vgg16:features.29), got {spec!r}")
        return name, layer, pretrained
    if not pretrained:
        return (*PREFERRED_BACKBONES[-1], False)
    try:
        name, layer = choose_backbone(PREFERRED_BACKBONES)
        return name, layer, True
    except WeightsNotFoundError as exc:
        log.warning("no pretrained backbone for the cluster descriptors (%s); using randomly initialised "
                    "VGG16: the clusters will be much less meaningful", str(exc).splitlines()[0])
        return "vgg16", VGG16_MULTI_MAC, False


def build_extractor(name: str, layer: str, pretrained: bool, seed: int = 0) -> FeatureExtractor:
    """The frozen MAC descriptor net. Building it draws random weights from the global RNG: it is forked
    and seeded, so random weights (``pretrained=False``) are reproducible and the caller's RNG untouched.

    Its weights are channels-last: about 1.5× faster convolutions on CPU than the default layout (VGG16 at
    64 and 96 px, docs/PERFORMANCE.md); the descriptors agree with the default layout's to float rounding.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        extractor = FeatureExtractor(name, layer, pooling="mac", pretrained=pretrained)
    extractor.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # not in the stubs
    return extractor


#: images per descriptor batch: VGG16 at 160 px ran 11–13 % faster per image in batches of 8 than of 32 in
#: int8, bf16 and fp32 alike (the activations of a smaller batch stay in cache; docs/PERFORMANCE.md)
DESCRIPTOR_BATCH = 8


def l_at(rgb: torch.Tensor, size: int) -> torch.Tensor:
    """RGB (B,3,H,W) → normalised L (B,1,size,size), the descriptor's input."""
    small = F.interpolate(rgb.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return normalize_l(rgb_to_l(small.clamp(0, 1)))


def _rgb(dataset: Dataset, index: int) -> torch.Tensor:
    """Image ``index`` untransformed (``dataset.read``) where the dataset can, else its sample's RGB."""
    return dataset.read(index) if hasattr(dataset, "read") else dataset[index]["rgb"]


@torch.no_grad()
def descriptors(extractor: nn.Module, l: torch.Tensor, bf16: bool = False) -> torch.Tensor:
    """MAC descriptors (B, D) in float32 of a batch of normalised L, under bf16 autocast when ``bf16``.

    bf16 is for hardware that computes it natively (``fewcolor.hardware``): VGG16's descriptor pass then
    runs about 2× faster on an AVX512-BF16 CPU, with the same clusters as fp32 (both measured in
    docs/PERFORMANCE.md).
    """
    x = l.contiguous(memory_format=torch.channels_last)
    if not bf16:  # fp32, or an int8 copy (which has no parameters to take the device from)
        return extractor(x).float()
    with torch.autocast(next(extractor.parameters()).device.type, dtype=torch.bfloat16):
        return extractor(x).float()


@torch.no_grad()
def dataset_descriptors(dataset: Dataset, extractor: nn.Module, size: int, batch_size: int = DESCRIPTOR_BATCH,
                        progress: bool = True, bf16: bool = False) -> torch.Tensor:
    """MAC descriptors (N, D) of every image (untransformed: ``dataset.read(i)`` when it exists).

    Batches go to the network channels-last (see :func:`build_extractor`), under bf16 autocast when
    ``bf16`` (:func:`descriptors`). The bar counts images, with the rate and an ETA.
    """
    feats = []
    n = len(dataset)
    with tqdm(total=n, desc=f"descriptors at {size}px", unit="img", disable=not progress or n < 64) as bar:
        for start in range(0, n, batch_size):
            ids = range(start, min(n, start + batch_size))
            ls = [l_at(_rgb(dataset, i)[None], size) for i in ids]
            feats.append(descriptors(extractor, torch.cat(ls), bf16).cpu())
            bar.update(len(ids))
    return torch.cat(feats)


def calibration_images(dataset: Dataset, size: int, count: int = CALIBRATION_IMAGES) -> torch.Tensor:
    """Normalised L at ``size``² of ``count`` images spread evenly over ``dataset``: the int8 calibration."""
    n = len(dataset)
    ids = sorted({i * n // min(count, n) for i in range(min(count, n))})
    return torch.cat([l_at(_rgb(dataset, i)[None], size) for i in ids])


def int8_descriptor(extractor: FeatureExtractor, info: dict[str, Any],
                    dataset: Dataset | None = None) -> Int8Descriptor:
    """The int8 copy of ``extractor`` that ``info`` describes (its stored calibration), or, when ``info`` has none
    yet, calibrated on ``dataset`` at ``info["feature_size"]`` — whose ranges are then stored in ``info``."""
    stored = info.get("int8_qparams")
    if stored:
        return Int8Descriptor(extractor, qparams=stored)
    if dataset is None:
        raise ValueError("int8 descriptors need the stored calibration (tasks.info['int8_qparams']) or a dataset")
    net = Int8Descriptor(extractor, calibration=calibration_images(dataset, int(info["feature_size"])))
    info["int8_qparams"] = net.qparams()
    return net


def embedding_network(info: dict[str, Any], seed: int = 0) -> tuple[nn.Module, bool]:
    """``(network, bf16)`` that embeds new images as the clustering described by ``info`` did (``tasks.info``).

    int8 clusterings get the int8 copy with their stored calibration (CPU: quantized kernels have no CUDA
    version); where this PyTorch build has no int8 engine, the fp32 network, with a warning (its descriptors
    agree with int8's to cosine ≥ 0.99). ``bf16`` is whether to run under bf16 autocast (the caller checks
    the hardware: :func:`fewcolor.hardware.native_bf16`).
    """
    extractor = build_extractor(info["backbone"], info["layer"], bool(info.get("pretrained", True)), seed)
    if info.get("int8"):
        engine = int8_engine()
        if engine is not None and info.get("int8_qparams"):
            if engine != info["int8"]:
                log.warning("the clusters' int8 descriptors were computed with the %s engine, this build uses %s: "
                            "new images may embed slightly differently", info["int8"], engine)
            try:
                return Int8Descriptor(extractor, qparams=info["int8_qparams"]), False
            except ValueError as exc:  # a calibration this PyTorch's quantized graph does not fit
                log.warning("the clusters' int8 calibration cannot be used here (%s); embedding in fp32 "
                            "(nearly the same descriptors)", exc)
                return extractor, False
        log.warning("the clusters were made with int8 descriptors, which this PyTorch build cannot compute; "
                    "embedding in fp32 (nearly the same descriptors)")
    return extractor, bool(info.get("bf16", False))


def backbone_precision(precision: str, name: str, layer: str) -> str:
    """``precision`` for the descriptors of ``layer`` of ``name``: int8 where it can tap them, else bf16 where
    native, else fp32 (with an info line)."""
    if precision == "int8" and not int8_taps_supported(name, layer):
        precision = "bf16" if native_bf16() else "fp32"
        log.info("int8 descriptors are not available for %s of %s (no quantized engine, or taps that are not "
                 "leaf modules of an FX-traceable network); computing them in %s", layer, name, precision)
    return precision


def cluster_dataset(dataset: Dataset, k: int, pca_dim: int = 512, backbone: str = "auto",
                    feature_size: int = DEFAULT_FEATURE_SIZE,
                    seed: int = 0, pretrained: bool = True, use_cache: bool = True,
                    precision: str = "fp32") -> ClusterTasks:
    """MAC descriptors of ``dataset`` at ``feature_size``² → PCA(``pca_dim``) → K-means(``k``), cached.

    ``precision`` (:data:`DESCRIPTOR_PRECISIONS`): ``bf16`` runs the network under bf16 autocast (for hardware
    that computes it natively), ``int8`` a quantized copy calibrated on the dataset (:mod:`fewcolor.backbones.int8`;
    a backbone whose taps it cannot quantize computes in bf16 where native, else fp32).
    ``tasks.info`` names the descriptor (``backbone``, ``layer``, ``pretrained``, ``feature_size``; ``bf16``,
    or ``int8`` = the quantized engine and ``int8_qparams`` = its calibration) so that new images can be
    embedded the same way (:func:`embedding_network`).
    """
    if precision not in DESCRIPTOR_PRECISIONS:
        raise ValueError(f"descriptor precision must be one of {', '.join(DESCRIPTOR_PRECISIONS)}, got {precision!r}")
    name, layer, pretrained = resolve_backbone(backbone, pretrained)
    precision = backbone_precision(precision, name, layer)
    info: dict[str, Any] = {"backbone": name, "layer": layer, "pretrained": pretrained, "feature_size": feature_size}
    if precision == "bf16":  # only then: fp32 descriptors keep the cache keys they always had
        info["bf16"] = True
    if precision == "int8":
        info.update({"int8": int8_engine(), "int8_calibration": CALIBRATION_IMAGES})
    fp = data_fingerprint(dataset) if use_cache else None
    feat_key = {"data": fp, **info, "seed": seed if not pretrained else None}
    task_key = {**feat_key, "k": k, "pca_dim": pca_dim, "kmeans_seed": seed}
    task_path, feat_path = cache_file("tasks", task_key, "tasks"), cache_file("tasks", feat_key, "features")
    if fp is not None:
        hit = load_tensors(task_path, task_key)
        if hit is not None:
            log.info("cluster tasks loaded from the cache (%s)", task_path)
            return ClusterTasks.from_tensors(hit[0], hit[1].get("info", {}))
    fhit = load_tensors(feat_path, feat_key) if fp is not None else None
    if fhit is not None:
        feats = fhit[0]["features"]
        info.update({"int8_qparams": fhit[1]["int8_qparams"]} if "int8_qparams" in fhit[1] else {})
    else:
        extractor = build_extractor(name, layer, pretrained, seed)
        log.info("descriptors of %d images at %d px: %s", len(dataset), feature_size,
                 f"int8 ({info['int8']} engine, calibrated on {min(CALIBRATION_IMAGES, len(dataset))} of them)"
                 if precision == "int8" else "bf16 autocast" if precision == "bf16" else "fp32")
        net = int8_descriptor(extractor, info, dataset) if precision == "int8" else extractor
        feats = dataset_descriptors(dataset, net, feature_size, bf16=precision == "bf16")
        if fp is not None:
            extra = {"int8_qparams": info["int8_qparams"]} if "int8_qparams" in info else {}
            save_tensors(feat_path, {"features": feats}, feat_key, extra)
    log.info("clustering %d descriptors (%s/%s, %d-d) into %d clusters", len(feats), name, layer, feats.shape[1], k)
    tasks = fit_tasks(feats, k, pca_dim=pca_dim, seed=seed, info={**info, "feature_dim": int(feats.shape[1])})
    if fp is not None:
        save_tensors(task_path, tasks.tensors(), task_key, {"info": tasks.info})
    return tasks
