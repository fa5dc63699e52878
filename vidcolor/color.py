"""Colour maths: L*a*b* conversion and the network's normalisation constants.

Everything here is a pure tensor function in fp32 so it can be tested without video and
run on any device. kornia's Lab uses sRGB with a D65 white point: L in [0, 100], a and b
within about +-110 for real images.
"""

from __future__ import annotations

import kornia.color as kc
import torch

L_SCALE = 50.0
AB_SCALE = 110.0


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(B,3,H,W) RGB in [0,1] -> Lab, always computed in fp32."""
    return kc.rgb_to_lab(rgb.float().clamp(0.0, 1.0))


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """(B,3,H,W) Lab -> RGB clamped to [0,1], in fp32."""
    return kc.lab_to_rgb(lab.float(), clip=True)


def gray_lightness(v: torch.Tensor) -> torch.Tensor:
    """L* of the gray R' = G' = B' = v (v in [0,1], any shape), in fp32.

    The same maths as `rgb_to_lab` (sRGB transfer, D65, whose Y row sums to 1) on one channel:
    a B&W frame's L* needs only its luma, without building RGB or the X and Z rows.
    """
    v = v.float().clamp(0.0, 1.0)
    linear = torch.where(v > 0.04045, ((v + 0.055) / 1.055).pow(2.4), v / 12.92)
    f = torch.where(linear > 0.008856, linear.clamp(min=0.008856).pow(1 / 3.0), 7.787 * linear + 4.0 / 29.0)
    return 116.0 * f - 16.0


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


def gray_rgb(rgb: torch.Tensor) -> torch.Tensor:
    """The grayscale version of an RGB batch as seen by the model: its L with ab = 0, back to RGB."""
    lab = rgb_to_lab(rgb)
    return lab_to_rgb(join_lab(lab[:, :1], torch.zeros_like(lab[:, 1:])))
