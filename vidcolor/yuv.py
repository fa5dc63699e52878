"""Y'CbCr <-> R'G'B' conversion on tensors, for BT.601, BT.709 and BT.2020, limited or full range.

Pure functions so the conversion runs on the compute device next to the model (uploading
8-bit planes is 4x cheaper than uploading float RGB) and so it can be tested against swscale.
Values are 8-bit code values divided by 255: Y in [16, 235]/255 and Cb/Cr in [16, 240]/255
for limited ("tv") range, [0, 255]/255 for full ("pc") range.
"""

from __future__ import annotations

import numpy as np
import torch

from .colorspec import YuvSpec, code_scale, gray_of_luma, yuv_matrix


def _apply(matrix: np.ndarray, offset: np.ndarray, x: torch.Tensor) -> torch.Tensor:
    m = torch.from_numpy(matrix).to(device=x.device, dtype=torch.float32)
    o = torch.from_numpy(offset).to(device=x.device, dtype=torch.float32)
    return torch.einsum("ij,bjhw->bihw", m, x.float()) + o.view(1, 3, 1, 1)


def rgb_to_yuv(rgb: torch.Tensor, spec: YuvSpec) -> torch.Tensor:
    """(B,3,H,W) R'G'B' in [0,1] -> Y'CbCr code values / 255 (not rounded or clamped)."""
    return _apply(*yuv_matrix(spec), rgb)


def yuv_to_rgb(yuv: torch.Tensor, spec: YuvSpec) -> torch.Tensor:
    """(B,3,H,W) Y'CbCr code values / 255 -> R'G'B' clamped to [0,1]."""
    matrix, offset = yuv_matrix(spec)
    inverse = np.linalg.inv(matrix)
    return _apply(inverse, -(inverse @ offset), yuv).clamp(0.0, 1.0)


def luma_to_gray(y: torch.Tensor, spec: YuvSpec) -> torch.Tensor:
    """Y' code values / 255 -> the R' = G' = B' value of that luma with neutral chroma, in [0,1]."""
    offset, scale = gray_of_luma(spec)
    return ((y.float() - offset) * scale).clamp(0.0, 1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Code values / 255 -> rounded, clamped uint8 planes."""
    return (x * 255.0).round_().clamp_(0, 255).to(torch.uint8)


def to_code(x: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """Code values / 255 -> rounded, clamped planes of `bits`: uint8 at 8, uint16 above."""
    if bits == 8:
        return to_uint8(x)
    return (x * code_scale(bits)).round_().clamp_(0, (1 << bits) - 1).to(torch.uint16)
