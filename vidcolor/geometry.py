"""Frame sizes for the model: the render size, resizing and padding to the network's multiple.

Pure tensor functions shared by the pipeline, the L* helpers (`color`) and evaluation. Torch is imported where
it is used, so that `render_shape` costs nothing to the torch-free preview (`quicklook`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def render_shape(height: int, width: int, short_side: int) -> tuple[int, int]:
    """The size the model sees: short side `short_side`, aspect ratio kept."""
    scale = short_side / min(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bilinear resize of a (B,C,H,W) float batch; a no-op at the same size.

    Exact integer reductions (4:2:0 luma to chroma size) are box averages, several times
    cheaper than torch's antialiased filter on CPU.
    """
    import torch.nn.functional as F

    (H, W), (h, w) = x.shape[-2:], size
    if (H, W) == (h, w):
        return x
    if h < H and H % h == 0 and W % w == 0 and H // h == W // w:
        return F.avg_pool2d(x, H // h)
    return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)


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
