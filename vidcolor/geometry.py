"""Frame sizes for the model: the render size, resizing and padding to the network's multiple.

Pure tensor functions shared by the pipeline, the L* helpers (`color`) and evaluation. Torch is imported where
it is used, so that `render_shape` costs nothing to the torch-free preview (`quicklook`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def render_shape(height: int, width: int, short_side: int) -> tuple[int, int]:
    """The size the model sees: short side `short_side`, aspect ratio kept."""
    scale = short_side / min(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def box_factor(shape: tuple[int, int], size: tuple[int, int]) -> int | None:
    """The factor when `size` is `shape` reduced by one integer on both axes (4:2:0 luma to chroma size), else None."""
    (H, W), (h, w) = shape, size
    return H // h if h < H and H % h == 0 and W % w == 0 and H // h == W // w else None


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bilinear resize of a (B,C,H,W) float batch; a no-op at the same size.

    Exact integer reductions (4:2:0 luma to chroma size) are box averages, several times
    cheaper than torch's antialiased filter on CPU.
    """
    import torch.nn.functional as F

    if tuple(x.shape[-2:]) == tuple(size):
        return x
    factor = box_factor(tuple(x.shape[-2:]), size)
    if factor:
        return F.avg_pool2d(x, factor)
    return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)


@lru_cache(maxsize=32)
def antialias_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of torch's antialiased bilinear filter along one axis (align_corners=False): a
    triangle as wide as the reduction around each output pixel's centre; each row sums to 1."""
    scale = n_in / n_out
    step = 1.0 / scale if scale >= 1.0 else 1.0
    centre = scale * (np.arange(n_out)[:, None] + 0.5)
    weights = np.clip(1.0 - np.abs((np.arange(n_in)[None, :] - centre + 0.5) * step), 0.0, None)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def resize_plane(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`resize` of one float32 (H,W) plane in numpy, for the torch-free preview, equal to torch's to float
    rounding: the same box average, plain bilinear when enlarging both ways (OpenCV's, the same filter), else
    the same filter weights (`antialias_weights`)."""
    import cv2

    if x.shape == tuple(size):
        return x
    factor = box_factor(x.shape, size)
    if factor:
        return x.reshape(size[0], factor, size[1], factor).mean(axis=(1, 3), dtype=np.float32)
    if size[0] >= x.shape[0] and size[1] >= x.shape[1]:
        return cv2.resize(x, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    return antialias_weights(x.shape[0], size[0]) @ x @ antialias_weights(x.shape[1], size[1]).T


def padding(height: int, width: int, multiple: int) -> tuple[int, int, bool]:
    """Rows and columns to add at the bottom and right to reach a multiple of `multiple`, and whether to
    reflect (where the image is big enough) rather than repeat the edge."""
    ph, pw = -height % multiple, -width % multiple
    return ph, pw, ph < height and pw < width


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad right and bottom up to a multiple of `multiple` (`padding`)."""
    import torch.nn.functional as F

    ph, pw, reflect = padding(*x.shape[-2:], multiple)
    if not ph and not pw:
        return x
    return F.pad(x, (0, pw, 0, ph), mode="reflect" if reflect else "replicate")
