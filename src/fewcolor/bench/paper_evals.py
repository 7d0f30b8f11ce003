"""The evaluations the papers report, reproducible offline with named stand-ins (``fewcolor paper-eval``).

- :func:`semantic_eval` — Zhang et al. 2016 §3.1 "semantic interpretability": an ImageNet classifier's top-1
  accuracy on colourized vs grey vs original images (EfficientNet-Lite0 instead of their VGG-16; see
  :mod:`fewcolor.metrics.semantic`).
- :func:`inception_score_eval` — MetalGAN's Table 1 (Inception Score of colourized test images):
  "IS (EfficientNet-Lite0)" always, and the real IS when Inception weights with the 1008-way head are given.
- :func:`representation_eval` — Zhang et al. §3.2 (Fig. 9 / Table 4, "self-supervised representation
  learning"): a linear classifier on frozen, globally average-pooled features of each block of a trained
  CIC network vs the same network randomly initialised vs ImageNet VGG16, all seeing grey images, on the
  classes of a labelled folder (e.g. Tiny-ImageNet's).
- :func:`retrieval_eval` and :func:`memory_sweep` — MemoPainter's Table 2 (top-1 memory retrieval accuracy)
  and its memory-size / threshold study (Fig. 9), with :func:`fewcolor.bench.retrieval.retrieval_accuracy`.

Every function returns a JSON-ready dict and takes a seed; images are picked per class from sorted paths by a
seeded draw.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

log = logging.getLogger(__name__)


def pick_per_class(labels: Sequence[int], per_class: int, seed: int, max_classes: int | None = None) -> list[int]:
    """Indices of up to ``per_class`` images of each class (label ≥ 0), a seeded draw, classes in label order;
    ``max_classes`` keeps the first classes only."""
    by_class: dict[int, list[int]] = {}
    for i, lab in enumerate(labels):
        if lab >= 0:
            by_class.setdefault(int(lab), []).append(i)
    if not by_class:
        raise ValueError("the folder has no class subfolders: arrange it as root/<class>/<image>")
    rng = random.Random(seed)
    chosen: list[int] = []
    for c in sorted(by_class)[:max_classes]:
        idx = by_class[c]
        chosen += sorted(rng.sample(idx, min(per_class, len(idx))))
    return chosen


def _eval_dataset(data_dir: str | Path, size: int) -> Any:
    from fewcolor.data.folder import ImageFolderDataset
    from fewcolor.data.transforms import eval_transform

    return ImageFolderDataset(data_dir, transform=eval_transform(size))


def _grey(rgb: torch.Tensor) -> torch.Tensor:
    from fewcolor.color.lab import grey_rgb_from_l, rgb_to_l

    return grey_rgb_from_l(rgb_to_l(rgb[None]))[0]


def _colourized_sets(model: str | Path, data: Any, indices: Sequence[int], device: str | None,
                     options: dict[str, Any] | None = None) -> dict[str, list[torch.Tensor]]:
    from fewcolor.io.image import as_saved_8bit
    from fewcolor.pipeline import Colorizer

    colorizer = Colorizer.from_checkpoint(model, device=device)
    sets: dict[str, list[torch.Tensor]] = {"colourized": [], "grey": [], "original": []}
    for i in tqdm(indices, desc="colorize", unit="img", disable=len(indices) < 20):
        rgb = data[i]["rgb"]
        with torch.no_grad():
            out = colorizer.colorize(rgb, **(options or {}))
        # all three as an 8-bit file holds them: the colourized photo is scored as its output file, so the
        # grey and original ones it is compared with are rounded alike (the classifier notices the rounding)
        sets["colourized"].append(as_saved_8bit(out))
        sets["grey"].append(as_saved_8bit(_grey(rgb)))
        sets["original"].append(as_saved_8bit(rgb))
    return sets


def imagenet_labels(data: Any, indices: Sequence[int], label_map: dict[str, int] | None) -> list[int]:
    """ImageNet-1k index per picked image from its class folder name (a wnid), −1 when unmapped;
    ``label_map`` None = Imagenette's wnids."""
    from fewcolor.metrics.semantic import IMAGENETTE_IMAGENET_INDEX

    mapping = IMAGENETTE_IMAGENET_INDEX if label_map is None else label_map
    return [int(mapping.get(data.classes[data.labels[i]], -1)) if data.labels[i] >= 0 else -1 for i in indices]


def semantic_eval(model: str | Path, data_dir: str | Path, per_class: int = 10, size: int = 224,
                  label_map: dict[str, int] | None = None, seed: int = 0, device: str | None = None,
                  pretrained: bool = True, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Zhang et al.'s semantic-interpretability test on ``per_class`` images of each class of ``data_dir``
    (``options``: the method's inference options, e.g. ``{"temperature": 0.6}``)."""
    from fewcolor.metrics.semantic import ImageNetClassifier, classifier_logits, semantic_scores

    data = _eval_dataset(data_dir, size)
    indices = pick_per_class(data.labels, per_class, seed)
    sets = _colourized_sets(model, data, indices, device, options)
    classifier = ImageNetClassifier(pretrained=pretrained)
    logits = {name: classifier_logits(classifier, images) for name, images in sets.items()}
    scores = semantic_scores(logits, imagenet_labels(data, indices, label_map))
    return {"evaluation": "semantic interpretability (Zhang et al. 2016 §3.1), stand-in classifier",
            "model": str(model), "data_dir": str(data_dir), "size": size, "per_class": per_class, "seed": seed,
            "options": {k: str(v) for k, v in (options or {}).items()},
            "classifier_weights": classifier.weights_source, **scores.as_dict()}


def inception_score_eval(model: str | Path, data_dir: str | Path, per_class: int = 10, size: int = 64,
                         inception_weights: str | Path | None = None, splits: int = 10, seed: int = 0,
                         device: str | None = None, pretrained: bool = True) -> dict[str, Any]:
    """MetalGAN Table 1: "IS (EfficientNet-Lite0)" of the colourized, grey and original images, and the real
    Inception Score when ``inception_weights`` carry the 1008-way head (else it says why it is absent)."""
    from fewcolor.metrics.semantic import ImageNetClassifier, classifier_inception_score, classifier_logits

    data = _eval_dataset(data_dir, size)
    indices = pick_per_class(data.labels, per_class, seed)
    sets = _colourized_sets(model, data, indices, device)
    classifier = ImageNetClassifier(pretrained=pretrained)
    result: dict[str, Any] = {
        "evaluation": "Inception Score (MetalGAN Table 1); IS (EfficientNet-Lite0) is a stand-in, not the IS",
        "model": str(model), "data_dir": str(data_dir), "size": size, "n": len(indices), "seed": seed,
        "classifier_weights": classifier.weights_source,
    }
    for name, images in sets.items():
        result[name] = classifier_inception_score(classifier_logits(classifier, images), splits)
    result["inception_score"] = _real_inception_score(sets, inception_weights, splits)
    return result


def _real_inception_score(sets: dict[str, list[torch.Tensor]], weights: str | Path | None,
                          splits: int) -> dict[str, Any]:
    from fewcolor.backbones.weights import WeightsNotFoundError
    from fewcolor.metrics.fid import FID_SIZE, InceptionFeatures, inception_score
    from fewcolor.metrics.semantic import classifier_logits

    if weights is None:
        return {"available": False, "why": "no --inception-weights with the 1008-way Inception head given"}
    try:
        net = InceptionFeatures(weights)
    except WeightsNotFoundError as exc:
        return {"available": False, "why": str(exc).splitlines()[0]}
    if not net.has_logits:
        return {"available": False, "why": f"{weights} has no 1008-way logits (pytorch-fid's "
                                           "pt_inception-2015-12-05-6726825d.pth has them)"}
    out: dict[str, Any] = {"available": True}
    for name, images in sets.items():
        mean, std = inception_score(classifier_logits(net.logits, images, size=FID_SIZE), splits)
        out[name] = {"is": mean, "is_std": std}
    return out


# ----- Zhang §3.2: linear classification on frozen features -------------------------------------------
def _cic_block_features(method: Any, l: torch.Tensor) -> list[torch.Tensor]:
    """Globally average-pooled output of each of the CIC body's 7 conv blocks (conv1..conv7)."""
    feats = []
    x = l
    blocks = list(method.net.body)[:7] if hasattr(method.net, "body") else list(method.net.net.body)[:7]
    for block in blocks:
        x = block(x)
        feats.append(x.mean(dim=(2, 3)))
    return feats


#: VGG16 stages tapped for the ImageNet baseline (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3)
VGG16_STAGES = ("features.3", "features.8", "features.15", "features.22", "features.29")


def linear_probe_accuracy(train_x: torch.Tensor, train_y: Sequence[int], test_x: torch.Tensor,
                          test_y: Sequence[int], seed: int = 0) -> float:
    """Top-1 test accuracy of a multinomial logistic regression (standardised features, L2 C = 1) trained on
    frozen features: Zhang et al.'s linear classifier on each layer."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_x.numpy())
    clf = LogisticRegression(max_iter=2000, random_state=seed)
    clf.fit(scaler.transform(train_x.numpy()), list(train_y))
    return float((clf.predict(scaler.transform(test_x.numpy())) == list(test_y)).mean())


def representation_eval(model: str | Path, data_dir: str | Path, classes: int = 20, train_per_class: int = 30,
                        test_per_class: int = 20, size: int = 64, seed: int = 0, vgg: str = "imagenet",
                        batch_size: int = 32) -> dict[str, Any]:
    """Linear probes on each block of the trained CIC net, the same net randomly initialised (seeded), and
    VGG16's five stages (``vgg``: "imagenet" weights, "random", or "none" to leave it out), all on grey
    images, ``classes`` classes of ``data_dir``."""
    if vgg not in ("imagenet", "random", "none"):
        raise ValueError(f"vgg must be 'imagenet', 'random' or 'none', got {vgg!r}")
    from fewcolor.backbones import FeatureExtractor
    from fewcolor.methods.registry import get_method_class, load_method

    trained = load_method(model)
    if trained.name != "cic":
        raise ValueError(f"{model} is a {trained.name!r} model; the representation test takes a cic checkpoint")
    cls = get_method_class("cic")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        random_net = cls(trained.config).eval()
    data = _eval_dataset(data_dir, size)
    picked = pick_per_class(data.labels, train_per_class + test_per_class, seed, classes)
    by_class: dict[int, list[int]] = {}
    for i in picked:
        by_class.setdefault(data.labels[i], []).append(i)
    train_idx = [i for idx in by_class.values() for i in idx[:train_per_class]]
    test_idx = [i for idx in by_class.values() for i in idx[train_per_class:]]
    if not test_idx:
        raise ValueError(f"{data_dir}: too few images per class for {train_per_class} training + test images")
    nets: dict[str, Any] = {"cic_trained": trained, "cic_random": random_net}
    extractors = {}
    if vgg != "none":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for layer in VGG16_STAGES:
                extractors[layer] = FeatureExtractor("vgg16", layer, pooling="avg", pretrained=vgg == "imagenet")

    def features(indices: list[int]) -> dict[str, torch.Tensor]:
        out: dict[str, list[torch.Tensor]] = {}
        for start in tqdm(range(0, len(indices), batch_size), desc="features", unit="batch", leave=False,
                          disable=len(indices) < 200):
            l = torch.stack([data[i]["l"] for i in indices[start:start + batch_size]])
            with torch.no_grad():
                for name, net in nets.items():
                    for b, f in enumerate(_cic_block_features(net, l)):
                        out.setdefault(f"{name}/conv{b + 1}", []).append(f)
                for layer, fe in extractors.items():
                    out.setdefault(f"vgg16_{vgg}/{layer}", []).append(fe(l))
        return {k: torch.cat(v) for k, v in out.items()}

    train_f, test_f = features(train_idx), features(test_idx)
    train_y = [data.labels[i] for i in train_idx]
    test_y = [data.labels[i] for i in test_idx]
    accuracy = {k: linear_probe_accuracy(train_f[k], train_y, test_f[k], test_y, seed) for k in train_f}
    return {"evaluation": "linear classifier on frozen grey-image features (Zhang et al. 2016 §3.2)",
            "model": str(model), "data_dir": str(data_dir), "classes": len(by_class), "size": size,
            "train_per_class": train_per_class, "test_images": len(test_idx), "seed": seed,
            "chance": 1 / len(by_class), "vgg16_weights": vgg,
            "accuracy": accuracy}


# ----- MemoPainter Table 2 and Fig. 9 ------------------------------------------------------------
def retrieval_eval(data_dir: str | Path, size: int = 64, seed: int = 0, **kwargs: Any) -> dict[str, Any]:
    """MemoPainter Table 2 on a labelled folder: unsupervised and supervised top-1 retrieval accuracy."""
    from fewcolor.bench.retrieval import retrieval_accuracy

    data = _eval_dataset(data_dir, size)
    out: dict[str, Any] = {"evaluation": "memory retrieval accuracy (MemoPainter Table 2)", "data_dir": str(data_dir),
                           "size": size, "seed": seed, **kwargs}
    for supervised in (False, True):
        res = retrieval_accuracy(data, supervised=supervised, seed=seed, **kwargs)
        out["supervised" if supervised else "unsupervised"] = {"accuracy": res.accuracy, "queries": res.queries,
                                                                "per_episode": res.per_episode}
        out["chance"] = res.chance
    return out


def memory_sweep(data_dir: str | Path, memory_scales: Sequence[float], thresholds: Sequence[float], size: int = 64,
                 seed: int = 0, **kwargs: Any) -> dict[str, Any]:
    """MemoPainter Fig. 9's study as a grid: unsupervised top-1 retrieval accuracy for every memory size (a
    multiple of the support-set size) and threshold δ."""
    from fewcolor.bench.retrieval import retrieval_accuracy

    data = _eval_dataset(data_dir, size)
    rows = []
    for scale in memory_scales:
        for delta in thresholds:
            res = retrieval_accuracy(data, memory_scale=scale, threshold=delta, seed=seed, progress=False, **kwargs)
            rows.append({"memory_scale": scale, "threshold": delta, "accuracy": res.accuracy,
                         "queries": res.queries})
            log.info("memory ×%g, δ %g: top-1 retrieval %.3f", scale, delta, res.accuracy)
    return {"evaluation": "memory size / threshold sweep (MemoPainter Fig. 9), top-1 retrieval accuracy",
            "data_dir": str(data_dir), "size": size, "seed": seed, **kwargs, "rows": rows,
            "chance": 1 / kwargs.get("n_way", 5)}


def write_json(result: dict[str, Any], out: str | Path) -> Path:
    """Write ``result`` to ``out`` (a .json file, or a folder that gets ``result.json``) atomically."""
    from fewcolor.io.atomic import write_text_atomic

    path = Path(out)
    if path.suffix != ".json":
        path = path / "result.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(result, indent=2, sort_keys=True, default=str))
    return path
