"""Pure tensor functions that turn stored frames into training inputs: random crops and flips, the
film-like degradations of L, Lab targets, and the YCbCr 4:2:0 storage of tensor packs. Torch only."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from vidcolor.lab import normalize_ab, normalize_l, rgb_to_lab

RATIO = (3 / 4, 4 / 3)


def crop_box(h: int, w: int, gen: torch.Generator, scale: tuple[float, float],
             ratio: tuple[float, float] = RATIO) -> tuple[int, int, int, int, bool]:
    """torchvision's RandomResizedCrop box (top, left, height, width) and a horizontal flip, drawn from `gen`."""
    area = h * w
    for _ in range(10):
        u = torch.rand(3, generator=gen).tolist()
        target = area * (scale[0] + u[0] * (scale[1] - scale[0]))
        aspect = math.exp(math.log(ratio[0]) + u[1] * (math.log(ratio[1]) - math.log(ratio[0])))
        cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            top = int(torch.randint(0, h - ch + 1, (1,), generator=gen))
            left = int(torch.randint(0, w - cw + 1, (1,), generator=gen))
            return top, left, ch, cw, u[2] < 0.5
    side = min(h, w)
    return (h - side) // 2, (w - side) // 2, side, side, u[2] < 0.5


def random_resized_crop(img: torch.Tensor, size: int, gen: torch.Generator,
                        scale: tuple[float, float] = (0.35, 1.0)) -> torch.Tensor:
    """(3,H,W) float or uint8 -> (3,size,size) float in [0,1]: a random box, resized with antialiasing,
    flipped half of the time. uint8 input is cropped before it is converted, so only the crop is made float."""
    top, left, ch, cw, flip = crop_box(img.shape[-2], img.shape[-1], gen, scale)
    region = img[None, :, top:top + ch, left:left + cw]
    if region.dtype == torch.uint8:
        region = region.float() / 255.0
    out = F.interpolate(region, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
    return (out.flip(-1) if flip else out).clamp(0, 1)


def center_crop(img: torch.Tensor, size: int) -> torch.Tensor:
    """(3,H,W) -> (3,size,size): short side resized to `size`, centre kept."""
    _, h, w = img.shape
    scale = size / min(h, w)
    if scale != 1:
        img = F.interpolate(img[None], size=(max(size, round(h * scale)), max(size, round(w * scale))),
                            mode="bilinear", antialias=True, align_corners=False)[0]
    _, h, w = img.shape
    top, left = (h - size) // 2, (w - size) // 2
    return img[:, top:top + size, left:left + size]


def box_grid(boxes: list[tuple[int, int, int, int, bool]], h: int, w: int, size: int,
             device: torch.device) -> torch.Tensor:
    """The `grid_sample` grid that crops each (top, left, height, width, flip) box of an HxW frame to
    size x size in one call for the whole batch (boxes of a frame stored at another size scale with it)."""
    t = torch.tensor([[top, left, ch, cw, -1.0 if flip else 1.0] for top, left, ch, cw, flip in boxes],
                     dtype=torch.float32)
    theta = torch.zeros(len(boxes), 2, 3)
    theta[:, 0, 0] = t[:, 3] / w * t[:, 4]
    theta[:, 0, 2] = (t[:, 1] + t[:, 3] / 2) / w * 2 - 1
    theta[:, 1, 1] = t[:, 2] / h
    theta[:, 1, 2] = (t[:, 0] + t[:, 2] / 2) / h * 2 - 1
    return F.affine_grid(theta.to(device), [len(boxes), 1, size, size], align_corners=False)


# Full-range BT.601 YCbCr (JPEG's): how tensor packs store frames, chroma at half resolution.
_TO_YCBCR = ((0.299, 0.587, 0.114), (-0.168736, -0.331264, 0.5), (0.5, -0.418688, -0.081312))
_TO_RGB = ((1.0, 0.0, 1.402), (1.0, -0.344136, -0.714136), (1.0, 1.772, 0.0))


def rgb_to_ycbcr420(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B,3,H,W) float RGB in [0,1], even H and W -> uint8 Y (B,H,W) and CbCr (B,2,H/2,W/2)."""
    m = torch.tensor(_TO_YCBCR, dtype=torch.float32)
    ycc = torch.einsum("ij,bjhw->bihw", m, rgb.float() * 255.0)
    ycc[:, 1:] += 128.0
    y = ycc[:, 0].round().clamp(0, 255).to(torch.uint8)
    cbcr = F.avg_pool2d(ycc[:, 1:], 2).round().clamp(0, 255).to(torch.uint8)
    return y, cbcr


def ycbcr_to_rgb(y: torch.Tensor, cbcr: torch.Tensor) -> torch.Tensor:
    """Float Y (B,1,H,W) and CbCr (B,2,H,W) in 0..255 (chroma already at Y's size) -> RGB in [0,1]."""
    ycc = torch.cat([y, cbcr - 128.0], 1)
    m = torch.tensor(_TO_RGB, dtype=ycc.dtype, device=ycc.device)
    return (torch.einsum("ij,bjhw->bihw", m, ycc) / 255.0).clamp(0, 1)


def to_lab_batch(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB batch -> (L normalised to [-1,1], ab/110), in fp32 on rgb's device."""
    lab = rgb_to_lab(rgb)
    return normalize_l(lab[:, :1]), normalize_ab(lab[:, 1:])


def degrade_l(L: torch.Tensor, gen: torch.Generator, strength: float = 1.0) -> torch.Tensor:
    """Film-like degradations on normalised L only: contrast/brightness jitter, slight blur, grain.

    Archival input is noisy and uneven, so the model sees such L during training while its
    target colours stay clean. The noise is drawn on `gen`'s device (the CPU's, or the GPU's so that no
    batch of noise crosses the bus) and moved to L's; nothing here waits for the GPU.
    """
    if strength <= 0:
        return L
    b = L.shape[0]
    r = torch.rand(b, 4, generator=gen, device=gen.device).to(L.device)
    contrast = 1 + (r[:, 0] - 0.5) * 0.4 * strength
    bright = (r[:, 1] - 0.5) * 0.2 * strength
    mean = L.mean(dim=(1, 2, 3), keepdim=True)
    out = (L - mean) * contrast.view(b, 1, 1, 1) + mean + bright.view(b, 1, 1, 1)
    blur = r[:, 2] < 0.3 * strength
    k = torch.tensor([1.0, 2.0, 1.0], device=L.device)
    k = (k[:, None] * k[None, :] / 16).view(1, 1, 3, 3)
    blurred = F.conv2d(F.pad(out, (1, 1, 1, 1), mode="reflect"), k)
    out = torch.where(blur.view(b, 1, 1, 1), blurred, out)
    sigma = (r[:, 3] * 0.06 * strength).view(b, 1, 1, 1)
    noise = torch.randn(L.shape, generator=gen, device=gen.device).to(L.device)
    return (out + sigma * noise).clamp(-1, 1)
