"""Y'CbCr <-> R'G'B' conversion on tensors, for BT.601, BT.709 and BT.2020, limited or full range.

Pure functions so the conversion runs on the compute device next to the model (uploading
8-bit planes is 4x cheaper than uploading float RGB) and so it can be tested against swscale.
Values are 8-bit code values divided by 255: Y in [16, 235]/255 and Cb/Cr in [16, 240]/255
for limited ("tv") range, [0, 255]/255 for full ("pc") range.
"""

from __future__ import annotations

import torch

from .colorspec import LUMA_WEIGHTS, YuvSpec


def _rgb_to_ypbpr(matrix: str) -> torch.Tensor:
    """3x3 matrix from R'G'B' in [0,1] to Y' in [0,1] and Pb, Pr in [-0.5, 0.5]."""
    kr, kb = LUMA_WEIGHTS[matrix]
    kg = 1.0 - kr - kb
    return torch.tensor([
        [kr, kg, kb],
        [-kr / (2 * (1 - kb)), -kg / (2 * (1 - kb)), 0.5],
        [0.5, -kg / (2 * (1 - kr)), -kb / (2 * (1 - kr))],
    ], dtype=torch.float64)


def _scale_offset(spec: YuvSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel scale and offset from Y'PbPr to code values / 255."""
    scale, offset = ((255, 255, 255), (0, 128, 128)) if spec.full_range else ((219, 224, 224), (16, 128, 128))
    return (torch.tensor(scale, dtype=torch.float64) / 255, torch.tensor(offset, dtype=torch.float64) / 255)


def _apply(matrix: torch.Tensor, offset: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    m = matrix.to(device=x.device, dtype=torch.float32)
    o = offset.to(device=x.device, dtype=torch.float32)
    return torch.einsum("ij,bjhw->bihw", m, x.float()) + o.view(1, 3, 1, 1)


def rgb_to_yuv(rgb: torch.Tensor, spec: YuvSpec) -> torch.Tensor:
    """(B,3,H,W) R'G'B' in [0,1] -> Y'CbCr code values / 255 (not rounded or clamped)."""
    scale, offset = _scale_offset(spec)
    return _apply(scale[:, None] * _rgb_to_ypbpr(spec.matrix), offset, rgb)


def yuv_to_rgb(yuv: torch.Tensor, spec: YuvSpec) -> torch.Tensor:
    """(B,3,H,W) Y'CbCr code values / 255 -> R'G'B' clamped to [0,1]."""
    scale, offset = _scale_offset(spec)
    inverse = torch.linalg.inv(scale[:, None] * _rgb_to_ypbpr(spec.matrix))
    return _apply(inverse, -(inverse @ offset), yuv).clamp(0.0, 1.0)


def luma_to_gray(y: torch.Tensor, spec: YuvSpec) -> torch.Tensor:
    """Y' code values / 255 -> the R' = G' = B' value of that luma with neutral chroma, in [0,1]."""
    if spec.full_range:
        return y.float().clamp(0.0, 1.0)
    return ((y.float() - 16.0 / 255.0) * (255.0 / 219.0)).clamp(0.0, 1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Code values / 255 -> rounded, clamped uint8 planes."""
    return (x * 255.0).round_().clamp_(0, 255).to(torch.uint8)


def code_scale(bits: int) -> float:
    """What n-bit code values are divided by to give this module's units: 255 x 2^(n-8), so limited-range
    10-bit Y 64..940 is 16/255..235/255 exactly. (Full-range white at 10 bits, 1023, reads as 1.003.)"""
    return 255.0 * (1 << (bits - 8))


def to_code(x: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """Code values / 255 -> rounded, clamped planes of `bits`: uint8 at 8, uint16 above."""
    if bits == 8:
        return to_uint8(x)
    return (x * code_scale(bits)).round_().clamp_(0, (1 << bits) - 1).to(torch.uint16)
