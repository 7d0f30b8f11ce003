"""Set-level metrics of an evaluation: FID, KID and the Inception Score on Inception pool3 features,
with the truth's features cached per reference set (:mod:`fewcolor.data.cache`).

On fewer than :data:`MIN_SET_IMAGES` images FID and KID are computed as on any set, but flagged: the
result says ``set_reliable: false`` and carries ``set_warning`` (:func:`set_size_warning`), which the
evaluation also logs.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from fewcolor.metrics.fid import (
    FID_RESIZE,
    InceptionFeatures,
    fid_from_features,
    inception_score,
    kernel_inception_distance,
    load_cached_features,
    reference_key,
    store_cached_features,
)

#: Fewer images than this and FID/KID are flagged as unreliable (still computed, unchanged). Measured
#: (docs/METRICS.md, "How many images"): FID of a half-chroma colouring against its own 200 Flowers-12 photos
#: is 8.5; on N of them, 20 draws each, it is 16.7 ± 5.7 at N = 3, 13.2 ± 3.0 at 10, 12.0 ± 1.7 at 20,
#: 10.8 ± 0.7 at 50, 9.6 ± 0.4 at 100. From 50 on, which images were drawn moves FID by under a tenth (7 %);
#: below, by a sixth to a third. The upward bias shrinks slowly at every N: compare only equal N.
MIN_SET_IMAGES = 50


def set_size_warning(n: int) -> str | None:
    """The one-line caveat for FID/KID computed on ``n`` images; None from :data:`MIN_SET_IMAGES` on."""
    if n >= MIN_SET_IMAGES:
        return None
    return f"FID/KID on {n} images are unreliable below {MIN_SET_IMAGES}; compare only runs with the same N"


def _to_299(img: torch.Tensor) -> torch.Tensor:
    return F.interpolate(img[None], size=(299, 299), mode="bilinear", align_corners=False)[0]


class InceptionSet:
    """Collects Inception features of predictions (and truths, unless cached) in batches.

    ``reference_description`` (e.g. the truth files with sizes and mtimes) keys the cache of the truth's
    features; without it they are recomputed.
    """

    def __init__(self, weights: str | None, device: torch.device, batch_size: int, size: int | None,
                 reference_description: dict[str, object] | None = None) -> None:
        self.inception = InceptionFeatures(weights, device=device)
        self.batch_size = batch_size
        self.ref_key: str | None = None
        self.ref_cached: torch.Tensor | None = None
        if reference_description is not None:
            self.ref_key = reference_key({"truth": reference_description, "size": size, "resize": FID_RESIZE,
                                          "inception": self.inception.fingerprint, "lab_round_trip": True})
            self.ref_cached = load_cached_features(self.ref_key)
        self.pred_feats: list[torch.Tensor] = []
        self.truth_feats: list[torch.Tensor] = []
        self.pred_logits: list[torch.Tensor] = []
        self._preds: list[torch.Tensor] = []
        self._truths: list[torch.Tensor] = []

    def add(self, pred: torch.Tensor, truth: torch.Tensor) -> None:
        self._preds.append(_to_299(pred))
        self._truths.append(_to_299(truth))
        if len(self._preds) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self._preds:
            return
        preds = torch.stack(self._preds)
        self.pred_feats.append(self.inception.pool3(preds))
        if self.inception.has_logits:
            self.pred_logits.append(self.inception.logits(preds))
        if self.ref_cached is None:
            self.truth_feats.append(self.inception.pool3(torch.stack(self._truths)))
        self._preds.clear()
        self._truths.clear()

    def results(self, kid_subsets: int, kid_subset_size: int, seed: int) -> dict[str, Any]:
        """FID, KID (mean, std) and the Inception Score (when the weights have the 1008-way logits), with
        what they were computed on: ``set_images`` (predictions; the truth's count too, as
        ``reference_images``), ``kid_subset_size`` (the size used: at most the images there are),
        ``set_reliable`` and ``set_warning`` (:func:`set_size_warning`; None when reliable)."""
        self.flush()
        out: dict[str, Any] = {}
        fp = torch.cat(self.pred_feats)
        if self.ref_cached is not None:
            ft = self.ref_cached
        else:
            ft = torch.cat(self.truth_feats)
            if self.ref_key is not None:
                store_cached_features(self.ref_key, ft)
        n = len(fp)
        out["set_images"], out["reference_images"] = n, len(ft)
        if n >= 2:
            out["fid"] = fid_from_features(fp.numpy(), ft.numpy())
            out["kid_mean"], out["kid_std"] = kernel_inception_distance(fp, ft, kid_subsets, kid_subset_size, seed)
            out["kid_subset_size"] = min(kid_subset_size, n, len(ft))  # what kernel_inception_distance drew
            out["set_warning"] = set_size_warning(n)
        else:
            out["fid"] = out["kid_mean"] = None
            out["fid_note"] = "FID/KID need at least 2 images"
        out["set_reliable"] = n >= MIN_SET_IMAGES
        if self.pred_logits:
            is_mean, is_std = inception_score(torch.cat(self.pred_logits))
            out["inception_score"] = {"available": True, "mean": is_mean, "std": is_std}
        else:
            out["inception_score"] = {
                "available": False,
                "reason": "the Inception weights in use have no 1008-way classifier; supply pytorch-fid's "
                          "pt_inception-2015-12-05-6726825d.pth (inception_weights / --inception-weights)",
            }
        return out

    def protocol(self, kid_subsets: int, kid_subset_size: int, seed: int) -> dict[str, Any]:
        return {"features": "InceptionV3 (TF inception-2015-12-05) pool3, 2048-d", "resize": FID_RESIZE,
                "weights": self.inception.weights_source,
                "kid": {"kernel": "(x.y/d + 1)^3", "subsets": kid_subsets, "subset_size": kid_subset_size,
                        "subset_size_used": "min(subset_size, images): set.kid_subset_size", "seed": seed},
                "min_images": MIN_SET_IMAGES,
                "reference_features_cached": self.ref_cached is not None}
