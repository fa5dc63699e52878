"""People coloured at their own scale (InstColorization's idea, Su et al. 2020).

The generator learned people from photos where they fill much of the frame; in video a face is 20-60 pixels
and the model gives it the gray-green of its surroundings. Faces found in the full-resolution luma mark each
person's head-and-shoulders box; the model colours that crop again at render size, and its ab is blended
into the frame's with a feathered mask. A frame with no face found keeps its ab untouched (bit-identical).

The maths here is pure tensor functions; the face detector (`FaceFinder`, dlib's HOG detector, which needs
no weights file) is the optional `vidcolor[people]` extra, imported only when used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from .errors import OptionError
from .geometry import resize

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels of the image it was found in; ends exclusive

PERSON_ASPECT = (4, 3)  # the person box's height : width, fixed so that every crop is coloured in one batch
PERSON_FACES = 3.0  # the person box is this many face widths wide: the head, shoulders and upper clothing
FACE_ROW = 0.3  # where the face's centre sits in the box, from its top, as a fraction of its height
MIN_GAIN = 1.5  # a person is coloured again only if the crop shows them at least this much larger
FEATHER = 0.2  # the blend mask's soft border, as a fraction of the box's width
MAX_PEOPLE = 8  # the largest faces of a frame that are coloured again (each costs a model pass at render size)
DETECT_SIDE = 720  # the luma is searched for faces at most at this short side
EXTRA = "pip install 'vidcolor[people]'"


def person_box(face: Box, height: int, width: int) -> Box:
    """The head-and-shoulders box around a face, `PERSON_ASPECT`, moved inside the image (and clipped only
    where it is larger than the image)."""
    fx0, fy0, fx1, fy1 = face
    bw = PERSON_FACES * (fx1 - fx0)
    bh = bw * PERSON_ASPECT[0] / PERSON_ASPECT[1]
    cx, cy = (fx0 + fx1) / 2, (fy0 + fy1) / 2
    x0, y0 = cx - bw / 2, cy - FACE_ROW * bh
    x0 = min(max(0.0, x0), max(0.0, width - bw))
    y0 = min(max(0.0, y0), max(0.0, height - bh))
    return (round(x0), round(y0), min(width, round(x0 + bw)), min(height, round(y0 + bh)))


def scale_box(box: Box, sy: float, sx: float) -> tuple[float, float, float, float]:
    return box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy


def feather_mask(h: int, w: int, border: float) -> torch.Tensor:
    """(h,w) weights: 1 inside, falling to 0 at the edges along a raised cosine `border` pixels wide."""
    def ramp(n: int) -> torch.Tensor:
        d = torch.minimum(torch.arange(n) + 0.5, n - 0.5 - torch.arange(n))
        t = (d / max(border, 1e-6)).clamp(max=1.0)
        return 0.5 - 0.5 * torch.cos(torch.pi * t)
    return ramp(h)[:, None] * ramp(w)[None, :]


def crop_shape(render_size: int) -> tuple[int, int]:
    """The size a person's crop is coloured at: short side `render_size`, `PERSON_ASPECT`."""
    return round(render_size * PERSON_ASPECT[0] / PERSON_ASPECT[1]), render_size


def recolor_people(ab: torch.Tensor, L: torch.Tensor, boxes: Sequence[Box], luma_hw: tuple[int, int],
                   predict: Callable[[torch.Tensor], torch.Tensor], render_size: int) -> torch.Tensor:
    """One frame's (1,2,h,w) ab at render size with each person of `boxes` (person boxes in pixels of the
    luma, `luma_hw`) coloured again: the crop of `L` (1,1,H,W), L* at any size of the same frame, coloured
    by `predict` at `crop_shape`, blended in with `feather_mask`. Where boxes overlap, their colours are
    averaged by weight. Boxes that would not be seen `MIN_GAIN` larger are skipped; none left: `ab` itself."""
    (h, w), (H, W) = ab.shape[-2:], L.shape[-2:]
    shape = crop_shape(render_size)
    crops, places = [], []
    for box in boxes:
        lx0, ly0, lx1, ly1 = (round(v) for v in scale_box(box, H / luma_hw[0], W / luma_hw[1]))
        ax0, ay0, ax1, ay1 = (round(v) for v in scale_box(box, h / luma_hw[0], w / luma_hw[1]))
        if lx1 - lx0 < 2 or ly1 - ly0 < 2 or ax1 - ax0 < 1 or ay1 - ay0 < 1:
            continue
        if shape[1] / (ax1 - ax0) < MIN_GAIN:
            continue
        crops.append(resize(L[..., ly0:ly1, lx0:lx1], shape))
        places.append((ax0, ay0, ax1, ay1))
    if not crops:
        return ab
    coloured = predict(torch.cat(crops)).float()
    total = torch.zeros_like(ab[0], dtype=torch.float32)
    weight = torch.zeros((h, w), dtype=torch.float32, device=ab.device)
    for crop_ab, (x0, y0, x1, y1) in zip(coloured, places):
        mask = feather_mask(y1 - y0, x1 - x0, FEATHER * (x1 - x0)).to(ab.device)
        total[:, y0:y1, x0:x1] += resize(crop_ab[None], (y1 - y0, x1 - x0))[0] * mask
        weight[y0:y1, x0:x1] += mask
    alpha = weight.clamp(max=1.0)
    mean = total / weight.clamp(min=1e-6)
    return (ab.float() * (1 - alpha) + mean[None] * alpha).to(ab.dtype)


def recolor_batch(finder: FaceFinder, ab: torch.Tensor, L: torch.Tensor, y: torch.Tensor,
                  predict: Callable[[torch.Tensor], torch.Tensor], render_size: int) -> torch.Tensor:
    """`recolor_people` for each frame of a batch: people found by their faces in the (B,1,H,W) Y plane (code
    values / 255), coloured again from L* at any size; frames where none is found keep `ab`."""
    luma = (y[:, 0] * 255).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
    return torch.cat([recolor_people(ab[i:i + 1], L[i:i + 1], finder.people(luma[i]), luma.shape[1:], predict,
                                     render_size) for i in range(ab.shape[0])])


class FaceFinder:
    """Faces in a luma plane, by dlib's frontal-face HOG detector (its model is built into dlib), searched
    at most at `DETECT_SIDE` and upsampled once, so faces from about 40 pixels at that size are found."""

    def __init__(self, upsample: int = 1, detect_side: int = DETECT_SIDE):
        try:
            import dlib
        except ImportError:
            raise OptionError(f"--people needs dlib's face detector: {EXTRA}") from None
        self._detector = dlib.get_frontal_face_detector()
        self.upsample, self.detect_side = upsample, detect_side

    def __call__(self, y: np.ndarray) -> list[Box]:
        """(H,W) uint8 luma -> face boxes in its pixels, largest first, at most `MAX_PEOPLE`."""
        import cv2
        H, W = y.shape
        scale = min(1.0, self.detect_side / min(H, W))
        small = y if scale == 1.0 else cv2.resize(y, (round(W * scale), round(H * scale)),
                                                  interpolation=cv2.INTER_AREA)
        faces = [(r.left() / scale, r.top() / scale, r.right() / scale, r.bottom() / scale)
                 for r in self._detector(np.ascontiguousarray(small), self.upsample)]
        faces.sort(key=lambda f: (f[2] - f[0]) * (f[3] - f[1]), reverse=True)
        return [(max(0, round(a)), max(0, round(b)), min(W, round(c)), min(H, round(d)))
                for a, b, c, d in faces[:MAX_PEOPLE]]

    def people(self, y: np.ndarray) -> list[Box]:
        """Person boxes (`person_box`) of the faces in `y`."""
        return [person_box(face, *y.shape) for face in self(y)]
