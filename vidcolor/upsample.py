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

import torch
import torch.nn.functional as F

GUIDED_RADIUS = 4  # window 9 x 9 px at render size (3.5 % of a 256-px short side)
GUIDED_EPS = 1e-3  # on L / 100: luma steps well above ~3 L* units steer the colour


def box_mean(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over the (2r+1)^2 window around each pixel, windows clipped at the borders.

    Two 1-D passes (separable), so the cost grows with r, not r^2.
    """
    k = 2 * radius + 1
    x = F.avg_pool2d(x, (1, k), stride=1, padding=(0, radius), count_include_pad=False)
    return F.avg_pool2d(x, (k, 1), stride=1, padding=(radius, 0), count_include_pad=False)


def guided_upsample(ab: torch.Tensor, L_low: torch.Tensor, L_high: torch.Tensor,
                    radius: int = GUIDED_RADIUS, eps: float = GUIDED_EPS) -> torch.Tensor:
    """ab (B,2,h,w) with its L (B,1,h,w) -> ab at L_high's size (B,2,H,W), edges following L_high.

    L in [0,100]. The fast guided filter: per-window linear coefficients at (h,w), box-smoothed,
    upsampled bilinearly, applied to L_high.
    """
    size = tuple(L_high.shape[-2:])
    guide = L_low.float() / 100.0
    ab = ab.float()
    mean_i, mean_p = box_mean(guide, radius), box_mean(ab, radius)
    cov = box_mean(guide * ab, radius) - mean_i * mean_p
    var = box_mean(guide * guide, radius) - mean_i * mean_i
    a = cov / (var + eps)
    b = mean_p - a * mean_i
    coeffs = torch.cat([box_mean(a, radius), box_mean(b, radius)], dim=1)
    if tuple(coeffs.shape[-2:]) != size:
        coeffs = F.interpolate(coeffs, size=size, mode="bilinear", align_corners=False)
    a_up, b_up = coeffs.split(ab.shape[1], dim=1)
    return a_up * (L_high.float() / 100.0) + b_up

