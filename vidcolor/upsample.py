"""Colour upsampling from render size to the output's chroma planes: bilinear, or guided by luma.

The model predicts ab at render size (short side 256); the output's chroma planes are larger
(360 lines at 720p, 540 at 1080p). Bilinear upsampling blurs colour edges across object
boundaries ("colour bleeding"). The guided mode is the fast guided filter (He and Sun 2015,
"Fast Guided Filter"; the guided filter of He, Sun and Tang 2010): at render size ab is
modelled in each small window as a linear function of L, ab ~ A L + B; A and B are smoothed,
upsampled, and applied to the full-size L, so colour edges follow the luma's edges at the
output's resolution. Where colour does not vary with luma (flat areas, film grain), A ~ 0
and the result is the smooth bilinear colour.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

GUIDED_RADIUS = 4  # window 9 x 9 px at render size (3.5 % of a 256-px short side)
GUIDED_EPS = 1e-3  # on L / 100: luma steps well above ~3 L* units steer the colour


def box_mean(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over the (2r+1)^2 window around each pixel of a (B,C,H,W) float tensor, windows clipped
    at the borders. O(1) per pixel: OpenCV's box filter on CPU (13x faster than torch's avg_pool2d
    here), running sums elsewhere."""
    if x.device.type == "cpu":
        return _box_mean_cv2(x, radius)
    return _box_mean_torch(x, radius)


def _box_sums(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Sums over the clipped windows j-r..j+r along the last axis, from a running sum."""
    n = x.shape[-1]
    c = F.pad(x, (1, 0)).cumsum(-1)  # c[k] = sum of x[:k]
    hi = torch.cat([c[..., radius + 1:], c[..., -1:].expand(*c.shape[:-1], radius)], -1)[..., :n]
    lo = torch.cat([c[..., :1].expand(*c.shape[:-1], radius), c[..., :n]], -1)[..., :n]
    return hi - lo


def _window_sizes(n: int, radius: int, like: torch.Tensor) -> torch.Tensor:
    j = torch.arange(n, device=like.device)
    return ((j + radius + 1).clamp(max=n) - (j - radius).clamp(min=0)).to(like.dtype)


def _box_mean_torch(x: torch.Tensor, radius: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    rows = _box_sums(x, radius) / _window_sizes(w, radius, x)
    return (_box_sums(rows.transpose(-1, -2), radius) / _window_sizes(h, radius, x)).transpose(-1, -2)


def _box_mean_cv2(x: torch.Tensor, radius: int) -> torch.Tensor:
    from .flow import _cv2

    cv2 = _cv2()
    k = 2 * radius + 1
    planes = x.detach().float().contiguous().numpy().reshape(-1, *x.shape[-2:])
    sums = np.stack([cv2.boxFilter(p, -1, (k, k), normalize=False, borderType=cv2.BORDER_CONSTANT) for p in planes])
    counts = cv2.boxFilter(np.ones(x.shape[-2:], np.float32), -1, (k, k), normalize=False,
                           borderType=cv2.BORDER_CONSTANT)
    return torch.from_numpy(sums / counts).reshape(x.shape)


def guided_upsample(ab: torch.Tensor, L_low: torch.Tensor, L_high: torch.Tensor,
                    radius: int = GUIDED_RADIUS, eps: float = GUIDED_EPS, subsample: int = 2) -> torch.Tensor:
    """ab (B,2,h,w) with its L (B,1,h,w) -> ab at L_high's size (B,2,H,W), edges following L_high.

    L in [0,100]. The fast guided filter: per-window linear coefficients computed at 1/`subsample`
    of (h,w) (radius scaled alike; the coefficients are smooth, and this makes the filter ~8x
    cheaper), box-smoothed, upsampled bilinearly, applied to L_high.
    """
    size = tuple(L_high.shape[-2:])
    guide, ab = L_low.float() / 100.0, ab.float()
    if subsample > 1 and min(guide.shape[-2:]) >= 8 * subsample:
        guide, ab = F.avg_pool2d(guide, subsample, ceil_mode=True), F.avg_pool2d(ab, subsample, ceil_mode=True)
        radius = max(1, radius // subsample)
    mean_i, mean_p = box_mean(guide, radius), box_mean(ab, radius)
    cov = box_mean(guide * ab, radius) - mean_i * mean_p
    var = box_mean(guide * guide, radius) - mean_i * mean_i
    a = cov / (var + eps)
    b = mean_p - a * mean_i
    coeffs = F.interpolate(torch.cat([box_mean(a, radius), box_mean(b, radius)], dim=1), size=size,
                           mode="bilinear", align_corners=False)
    a_up, b_up = coeffs.split(ab.shape[1], dim=1)
    return a_up * (L_high.float() / 100.0) + b_up
