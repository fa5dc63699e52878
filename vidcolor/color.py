"""Colour maths: L*a*b* conversion, the L* the model sees, and the network's normalisation constants.

Everything here is a pure tensor function in fp32 so it can be tested without video and
run on any device. The Lab conversion itself lives in `lab.py` (plain torch, shared with training).
"""

from __future__ import annotations

import torch

from .geometry import resize
from .colorspec import YuvSpec, lightness_curve, rgb_frame_spec
from .yuv import luma_to_gray, rgb_to_yuv
from .lab import (AB_SCALE, L_SCALE, denormalize_ab, denormalize_l, join_lab, lab_to_rgb, normalize_ab,  # noqa: F401
                  normalize_l, rgb_to_lab)


def gray_lightness(v: torch.Tensor) -> torch.Tensor:
    """L* of the gray R' = G' = B' = v (v in [0,1], any shape), in fp32.

    The same maths as `rgb_to_lab` (sRGB transfer, D65, whose Y row sums to 1) on one channel:
    a B&W frame's L* needs only its luma, without building RGB or the X and Z rows.
    """
    return lightness_curve(v.float().clamp(0.0, 1.0), torch.where)


def luma_lightness(y: torch.Tensor, size: tuple[int, int], spec: YuvSpec) -> torch.Tensor:
    """L* at `size` from a (B,1,H,W) Y plane (code values / 255), as if its chroma were neutral.

    For B&W sources this is their exact L*. For colour sources it is the L* of their gray
    version, which is what the model is trained to see; the output keeps the source's Y either
    way. The plane is resized first, so the L* curve runs only at the small sizes, and the
    chroma planes are never read (the pipeline's costliest step before: RGB and Lab twice).
    """
    return gray_lightness(luma_to_gray(resize(y, size), spec))


def frame_lightness(y: torch.Tensor, render_hw: tuple[int, int], chroma_hw: tuple[int, int], spec: YuvSpec
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """L* at render size (the model's input) and at chroma size (to rebuild Cb/Cr), from Y planes.

    Y is reduced to chroma size once; the render size is resized from that when it is no
    larger (same pixels, a third of the work at 720p), else from the full plane.
    """
    y_chroma = resize(y, chroma_hw)
    fits = render_hw[0] <= chroma_hw[0] and render_hw[1] <= chroma_hw[1]
    return luma_lightness(y_chroma if fits else y, render_hw, spec), luma_lightness(y_chroma, chroma_hw, spec)


def rgb_luma(rgb: torch.Tensor, spec: YuvSpec) -> torch.Tensor:
    """(B,3,H,W) R'G'B' in [0,1] -> its (B,1,H,W) Y' plane as code values / 255 under `spec`: the plane
    `vidcolor run` would read from that frame encoded as video, so the tensor API sees what run sees."""
    return rgb_to_yuv(rgb.float().clamp(0.0, 1.0), spec)[:, :1]


def gray_rgb(rgb: torch.Tensor, spec: YuvSpec | None = None) -> torch.Tensor:
    """The gray version of an RGB batch as `vidcolor run` gives it with ab = 0: its luma (`rgb_luma`,
    default spec `yuv.rgb_frame_spec`) with neutral chroma, back to RGB (R' = G' = B')."""
    spec = spec or rgb_frame_spec(rgb.shape[-2])
    gray = luma_to_gray(rgb_luma(rgb, spec), spec)
    return gray.expand(-1, 3, -1, -1).contiguous()
