"""Which Y'CbCr matrix and range a frame uses: names, luma weights and the rules for untagged input.

Plain data without torch, so probing a file (`vidcolor info`) does not load the tensor maths of `yuv`; the
matrices are numpy, shared by `yuv` (torch) and the preview's torch-free path (`quicklook`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

L_SCALE = 50.0  # the network sees L / L_SCALE - 1 (L* in [0, 100] -> [-1, 1])
AB_SCALE = 110.0  # and gives ab / AB_SCALE (its tanh's range)

# Luma weights (Kr, Kb) of each matrix; Kg = 1 - Kr - Kb.
LUMA_WEIGHTS: dict[str, tuple[float, float]] = {
    "bt601": (0.299, 0.114),
    "bt709": (0.2126, 0.0722),
    "bt2020": (0.2627, 0.0593),
}


@dataclass(frozen=True)
class YuvSpec:
    """Which matrix and range turn a frame's planes into R'G'B'."""

    matrix: str = "bt709"
    full_range: bool = False

    def __post_init__(self) -> None:
        if self.matrix not in LUMA_WEIGHTS:
            raise ValueError(f"unknown YUV matrix {self.matrix!r} (known: {', '.join(LUMA_WEIGHTS)})")


def untagged_matrix(height: int) -> str:
    """The matrix players assume for untagged video: BT.709 from 720 lines up, else BT.601."""
    return "bt709" if height >= 720 else "bt601"


def rgb_frame_spec(height: int) -> YuvSpec:
    """How an RGB frame (a photo, a decoded clip) gets its luma: the matrix `vidcolor run` would give
    untagged video of that height, full range (so no code value is clipped)."""
    return YuvSpec(untagged_matrix(height), full_range=True)


def yuv_matrix(spec: YuvSpec) -> tuple[np.ndarray, np.ndarray]:
    """(3x3 matrix, offset) from R'G'B' in [0,1] to Y'CbCr code values / 255 under `spec`, in float64."""
    kr, kb = LUMA_WEIGHTS[spec.matrix]
    kg = 1.0 - kr - kb
    ypbpr = np.array([
        [kr, kg, kb],
        [-kr / (2 * (1 - kb)), -kg / (2 * (1 - kb)), 0.5],
        [0.5, -kg / (2 * (1 - kr)), -kb / (2 * (1 - kr))],
    ])
    scale, offset = ((255, 255, 255), (0, 128, 128)) if spec.full_range else ((219, 224, 224), (16, 128, 128))
    return np.array(scale)[:, None] / 255 * ypbpr, np.array(offset, np.float64) / 255


def gray_of_luma(spec: YuvSpec) -> tuple[float, float]:
    """(offset, scale): Y' code values / 255 -> the R' = G' = B' of that luma with neutral chroma is
    (y - offset) * scale, clamped to [0, 1]."""
    return (0.0, 1.0) if spec.full_range else (16.0 / 255.0, 255.0 / 219.0)


def code_scale(bits: int) -> float:
    """What n-bit code values are divided by to give code values / 255: 255 x 2^(n-8), so limited-range
    10-bit Y 64..940 is 16/255..235/255 exactly. (Full-range white at 10 bits, 1023, reads as 1.003.)"""
    return 255.0 * (1 << (bits - 8))


def lightness_curve(v: Any, where: Callable[..., Any]) -> Any:
    """L* of the gray R' = G' = B' = v (v already clamped to [0, 1]): the sRGB transfer, then CIE L* (D65, whose
    Y row sums to 1). Plain arithmetic on a torch tensor or a numpy array alike (`where`: torch.where or
    numpy.where), so the pipeline (`color.gray_lightness`) and the torch-free preview share one definition."""
    linear = where(v > 0.04045, ((v + 0.055) / 1.055) ** 2.4, v / 12.92)
    f = where(linear > 0.008856, linear.clip(min=0.008856) ** (1 / 3.0), 7.787 * linear + 4.0 / 29.0)
    return 116.0 * f - 16.0
