"""Which Y'CbCr matrix and range a frame uses: names, luma weights and the rules for untagged input.

Plain data without torch, so probing a file (`vidcolor info`) does not load the tensor maths of `yuv`.
"""

from __future__ import annotations

from dataclasses import dataclass

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
