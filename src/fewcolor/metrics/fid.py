"""FID, KID and the Inception Score on InceptionV3 (TF inception-2015-12-05) features.

- Images: RGB in [0, 1], resized to 299×299 with bilinear interpolation (``align_corners=False``, no
  antialiasing, as pytorch-fid does), then mapped to [−1, 1] (= ``(x − 128) / 128`` on 0..255).
- FID (Heusel et al., NeurIPS 2017, eq. 6): ||μ₁ − μ₂||² + Tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^½) on pool3 (2048-d),
  in float64. Tr((Σ₁Σ₂)^½) is computed as Σ √λᵢ(Σ₁^½ Σ₂ Σ₁^½), the eigenvalues of a symmetric PSD
  matrix, which avoids the complex round-off of a general matrix square root.
- KID (Bińkowski et al., ICLR 2018, §3/eq. 3): unbiased MMD² with the cubic polynomial kernel
  k(x, y) = (xᵀy / d + 1)³, averaged over random subsets (mean and std reported).
- Inception Score (Salimans et al., NeurIPS 2016, §4): exp E_x KL(p(y|x) || p(y)) over 10 splits of the
  1008-way softmax. Only available with weights that carry the 1008-way classifier (pytorch-fid's
  ``pt_inception-2015-12-05-6726825d.pth``, supplied by the user); otherwise it is reported unavailable.
"""

from __future__ import annotations

import hashlib
import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fewcolor.backbones.inception import FID_SIZE
from fewcolor.backbones.registry import load_backbone
from fewcolor.data.cache import cache_file, load_tensors, save_tensors

FID_RESIZE = "bilinear to 299×299 (align_corners=False, no antialias), then 2·x − 1"


def fid_preprocess(rgb: torch.Tensor) -> torch.Tensor:
    """``(B,3,H,W)`` RGB in [0, 1] -> the Inception input ``(B,3,299,299)`` in [−1, 1]."""
    if rgb.shape[-2:] != (FID_SIZE, FID_SIZE):
        rgb = F.interpolate(rgb.float(), size=(FID_SIZE, FID_SIZE), mode="bilinear", align_corners=False)
    return rgb.float() * 2.0 - 1.0


class InceptionFeatures(nn.Module):
    """Frozen InceptionV3-FID: ``pool3(rgb01)`` -> ``(B, 2048)``; ``logits(rgb01)`` when available."""

    def __init__(self, weights: str | os.PathLike[str] | None = None, allow_download: bool = False,
                 device: str | torch.device = "cpu") -> None:
        super().__init__()
        self.net = load_backbone("inception_v3_fid", weights=weights, allow_download=allow_download)
        self.weights_source: str = self.net.weights_source  # type: ignore[assignment]
        self.net.to(torch.device(device))
        for p in self.net.parameters():
            p.requires_grad_(False)

    @property
    def fingerprint(self) -> str:
        """A hash of a few weight tensors: identifies the weights whatever file they were loaded from."""
        state = self.net.state_dict()
        digest = hashlib.sha256()
        for key in ("Conv2d_1a_3x3.conv.weight", "Mixed_7c.branch_pool.bn.running_var"):
            digest.update(state[key].float().cpu().numpy().tobytes())
        return digest.hexdigest()[:16]

    @property
    def device(self) -> torch.device:
        """Where the network is (it follows ``.to()``), so inputs go there too."""
        return next(self.net.parameters()).device

    @property
    def has_logits(self) -> bool:
        return bool(self.net.has_logits)

    @torch.no_grad()
    def pool3(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.net(fid_preprocess(rgb.to(self.device))).double().cpu()

    @torch.no_grad()
    def logits(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.net.logits(fid_preprocess(rgb.to(self.device))).double().cpu()  # type: ignore[operator]


def feature_statistics(features: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (unbiased, as in the reference FID code) in float64."""
    f = _as_float64(features).numpy()
    if f.shape[0] < 2:
        raise ValueError(f"FID needs at least 2 images per set, got {f.shape[0]}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between N(μ₁, Σ₁) and N(μ₂, Σ₂) (Heusel et al. 2017, eq. 6), float64."""
    m1, m2 = torch.as_tensor(mu1, dtype=torch.float64), torch.as_tensor(mu2, dtype=torch.float64)
    s1, s2 = torch.as_tensor(sigma1, dtype=torch.float64), torch.as_tensor(sigma2, dtype=torch.float64)
    s1, s2 = (s1 + s1.T) / 2, (s2 + s2.T) / 2
    w, v = torch.linalg.eigh(s1)
    root1 = (v * w.clamp(min=0).sqrt()) @ v.T
    inner = root1 @ s2 @ root1
    tr_covmean = torch.linalg.eigvalsh((inner + inner.T) / 2).clamp(min=0).sqrt().sum()
    value = (m1 - m2).pow(2).sum() + torch.trace(s1) + torch.trace(s2) - 2 * tr_covmean
    return float(value)


def fid_from_features(f1: torch.Tensor | np.ndarray, f2: torch.Tensor | np.ndarray) -> float:
    """FID between two feature sets ``(n, d)``.

    With fewer images than dimensions (the usual case on small evaluation sets: n < 2048) the covariances
    have rank < n and Tr((Σ₁Σ₂)^½) equals the sum of the singular values of A₁A₂ᵀ/√((n₁−1)(n₂−1)), A the
    centred features: exact, and an n₁×n₂ SVD instead of 2048×2048 eigendecompositions.
    """
    x, y = _as_float64(f1), _as_float64(f2)
    n1, n2, d = x.shape[0], y.shape[0], x.shape[1]
    if min(n1, n2) < 2:
        raise ValueError(f"FID needs at least 2 images per set, got {n1} and {n2}")
    if min(n1, n2) > d:
        return frechet_distance(*feature_statistics(x), *feature_statistics(y))
    a, b = x - x.mean(dim=0), y - y.mean(dim=0)
    tr_covmean = torch.linalg.svdvals(a @ b.T / math.sqrt((n1 - 1) * (n2 - 1))).sum()
    value = ((x.mean(dim=0) - y.mean(dim=0)).pow(2).sum() + a.pow(2).sum() / (n1 - 1)
             + b.pow(2).sum() / (n2 - 1) - 2 * tr_covmean)
    return float(value)


def _as_float64(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double()
    return torch.from_numpy(np.array(x, dtype=np.float64))


def kernel_inception_distance(f1: torch.Tensor | np.ndarray, f2: torch.Tensor | np.ndarray,
                              n_subsets: int = 100, subset_size: int = 1000, seed: int = 0
                              ) -> tuple[float, float]:
    """KID (mean, std over subsets); subsets are drawn without replacement with ``seed``."""
    x, y = _as_float64(f1), _as_float64(f2)
    m = min(subset_size, x.shape[0], y.shape[0])
    if m < 2:
        raise ValueError("KID needs at least 2 images per set")
    d = x.shape[1]
    gen = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(n_subsets):
        xs = x[torch.randperm(x.shape[0], generator=gen)[:m]]
        ys = y[torch.randperm(y.shape[0], generator=gen)[:m]]
        kxx = (xs @ xs.T / d + 1) ** 3
        kyy = (ys @ ys.T / d + 1) ** 3
        kxy = (xs @ ys.T / d + 1) ** 3
        mmd = ((kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
               + (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1)) - 2 * kxy.mean())
        values.append(float(mmd))
    arr = np.array(values)
    return float(arr.mean()), float(arr.std())


def inception_score(logits: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """IS (mean, std over ``splits``) from 1008-way logits."""
    p = torch.softmax(logits.double(), dim=1)
    splits = max(1, min(splits, p.shape[0]))
    scores = []
    for part in torch.tensor_split(p, splits):
        py = part.mean(dim=0, keepdim=True)
        kl = (part * (torch.log(part.clamp_min(1e-30)) - torch.log(py.clamp_min(1e-30)))).sum(dim=1)
        scores.append(float(torch.exp(kl.mean())))
    return float(np.mean(scores)), float(np.std(scores))


# ---- cached reference-set features -----------------------------------------------------------------

def reference_key(description: dict[str, object]) -> str:
    """A stable cache key for a reference set: files (with sizes and mtimes) plus the protocol."""
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:24]


def load_cached_features(key: str) -> torch.Tensor | None:
    """Reference-set features cached under ``key`` (see :func:`reference_key`) in
    ``FEWCOLOR_HOME/fid_stats``, or None. Features (not only μ/Σ) are kept because KID needs them."""
    hit = load_tensors(cache_file("fid_stats", key), key)
    return None if hit is None else hit[0]["features"].double()


def store_cached_features(key: str, features: torch.Tensor) -> None:
    save_tensors(cache_file("fid_stats", key), {"features": features.float()}, key)
