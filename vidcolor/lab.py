"""CIE L*a*b* (sRGB, D65, 2° observer) in plain torch: the same maths as kornia's `rgb_to_lab` and
`lab_to_rgb`, so that training runs on a machine that has torch and nothing else, and the product and
the trainer share one definition. L in [0, 100]; a and b within about +-110 for real images."""

from __future__ import annotations

import torch

from .colorspec import AB_SCALE, L_SCALE

_RGB_TO_XYZ = ((0.412453, 0.357580, 0.180423),
               (0.212671, 0.715160, 0.072169),
               (0.019334, 0.119193, 0.950227))
_XYZ_TO_RGB = ((3.2404813432005266, -1.5371515162713185, -0.4985363261688878),
               (-0.9692549499965682, 1.8759900014898907, 0.0415559265582928),
               (0.0556466391351772, -0.2040413383665112, 1.0573110696453443))
_WHITE_D65 = (0.95047, 1.0, 1.08883)
_EPS = 0.008856


def _mix(image: torch.Tensor, matrix: tuple) -> torch.Tensor:
    m = torch.tensor(matrix, dtype=image.dtype, device=image.device)
    return torch.einsum("ij,...jhw->...ihw", m, image)


def _white(image: torch.Tensor) -> torch.Tensor:
    return torch.tensor(_WHITE_D65, dtype=image.dtype, device=image.device)[:, None, None]


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) sRGB in [0,1] -> Lab, always in fp32 (autocast off: the cube roots need it)."""
    with torch.autocast(rgb.device.type, enabled=False):
        x = rgb.float().clamp(0.0, 1.0)
        linear = torch.where(x > 0.04045, ((x + 0.055).clamp(min=0.0) / 1.055).pow(2.4), x / 12.92)
        xyz = _mix(linear, _RGB_TO_XYZ) / _white(linear)
        f = torch.where(xyz > _EPS, xyz.clamp(min=_EPS).pow(1 / 3.0), 7.787 * xyz + 4.0 / 29.0)
        fx, fy, fz = f.unbind(-3)
        return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=-3)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) Lab -> sRGB clamped to [0,1], in fp32."""
    with torch.autocast(lab.device.type, enabled=False):
        L, a, b = lab.float().unbind(-3)
        fy = (L + 16.0) / 116.0
        f = torch.stack([a / 500.0 + fy, fy, (fy - b / 200.0).clamp(min=0.0)], dim=-3)
        xyz = torch.where(f > 0.2068966, f.pow(3.0), (f - 4.0 / 29.0) / 7.787) * _white(f)
        linear = _mix(xyz, _XYZ_TO_RGB)
        rgb = torch.where(linear > 0.0031308, 1.055 * linear.clamp(min=0.0031308).pow(1 / 2.4) - 0.055,
                          12.92 * linear)
        return rgb.clamp(0.0, 1.0)


def normalize_l(L: torch.Tensor) -> torch.Tensor:
    """L in [0,100] -> network input in [-1,1]."""
    return L / L_SCALE - 1.0


def denormalize_l(x: torch.Tensor) -> torch.Tensor:
    return (x + 1.0) * L_SCALE


def normalize_ab(ab: torch.Tensor) -> torch.Tensor:
    """ab in about [-110,110] -> training target in about [-1,1] (matches the generator's tanh)."""
    return ab / AB_SCALE


def denormalize_ab(x: torch.Tensor) -> torch.Tensor:
    return x.float() * AB_SCALE


def join_lab(L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Concatenate (B,1,H,W) L and (B,2,H,W) ab into Lab."""
    return torch.cat([L.float(), ab.float()], dim=1)
