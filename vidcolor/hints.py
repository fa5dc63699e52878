"""Colour hints (`--hints WHEN=IMAGE`): a few strokes on one frame colour the regions they touch, through the shot.

A hint image is an RGBA picture of the frame: pixels with alpha >= `HINT_ALPHA` are hints, their RGB the colour
wanted there, of which only the chroma (a*b*) is used, with the film's own luma. On the hinted frame the hinted
a*b* are spread over the regions the hints touch, following the luma's edges (`spread`, on a grid of at most
`HINT_SOLVE_SHORT_SIDE`), and blended into the model's colours by the hints' reach, so regions no hint reaches
keep the model's colours. (Spreading the correction, hint minus predicted, instead measured 1.6-1.9 dB worse on
the pack's validation split: the model's own colours inside a hinted region are mostly what is wrong.) The
hinted frame is then carried forward and backward through its shot like a keyframe (`keyframes.propagate`:
the same flow, cuts and fading), blended in by the reach.

Two hints for the same frame position are merged: where both paint a pixel, the one given later wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .color import luma_lightness, rgb_to_lab
from .controls import KEYFRAME_HALF_LIFE_SECONDS, KEYFRAME_REACH_SECONDS
from .errors import InputError, OptionError
from .finish import chroma_from_lab
from .geometry import resize
from .keyframes import Carried, FrameSource, carry_grid, check_aspect, propagate
from .media import VideoInfo
from .references import When, file_digest, parse_when
from .spread import spread
from .temporal import CutDetector, l_to_gray_u8
from .yuv import to_uint8

HINT_ALPHA = 128  # alpha from which a pixel of a hint image is a hint
HINT_MIN_L, HINT_MAX_L = 5.0, 97.0  # hint colours darker or lighter than this (L*) carry no usable chroma
HINT_SOLVE_SHORT_SIDE = 360  # the hints are spread on the frame's grid scaled down past this short side
HINT_COVER = 0.01  # on the solve grid, a cell is hinted where any hinted pixel falls (a 1-pixel point included)

@dataclass(frozen=True)
class Hint:
    """One frame's hints: where (the image's pixels, (h,w) bool) and which a*b* ((2,h,w) float32), the image
    it came from (its size gives the aspect) and its digest (for the resume identity)."""

    when: When
    mask: np.ndarray
    ab: np.ndarray
    path: Path
    digest: str

    @property
    def aspect(self) -> float:
        return self.mask.shape[1] / self.mask.shape[0]


def parse_hint(spec: str) -> tuple[When, Path]:
    """`WHEN=IMAGE` -> (When, image path)."""
    when, sep, image = spec.partition("=")
    if not sep or not when.strip() or not image:
        raise OptionError(f"--hints {spec!r}: expected WHEN=IMAGE, e.g. 120=hints120.png or 00:01:23.480=hints.png")
    return parse_when(when), Path(image)


def read_hint_image(path: Path, when: When) -> Hint:
    """Read an RGBA hint image and check it, before any work: one line naming the file for a missing,
    unreadable or alpha-less image, one with no hinted pixel, or hint colours too dark or light for chroma."""
    import cv2

    if not path.is_file():
        raise InputError(f"hint {when.text} image not found: {path}")
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return hint_from_image(img, when, path, file_digest(path) if img is not None else "")


def hint_from_image(img: np.ndarray | None, when: When, path: Path, digest: str) -> Hint:
    """A decoded hint image (OpenCV's BGRA, any bit depth) as a `Hint`, with `read_hint_image`'s checks; `path`
    names it in the messages (for `vidcolor paint`, the image a page sent)."""
    what = f"hint {when.text}"
    if img is None or img.size == 0:
        raise InputError(f"{what} image cannot be read (not an image, or corrupt): {path}")
    if img.ndim != 3 or img.shape[2] != 4:
        raise InputError(f"{what} image has no alpha channel (paint the hints on a transparent layer and save "
                         f"as PNG; pixels with alpha {HINT_ALPHA} or more are hints): {path}")
    if img.dtype != np.uint8:
        img = (img.astype(np.float32) / np.iinfo(img.dtype).max * 255).round().astype(np.uint8)
    mask = img[..., 3] >= HINT_ALPHA
    if not mask.any():
        raise InputError(f"{what} image has no hinted pixels (none with alpha {HINT_ALPHA} or more): {path}")
    rgb = torch.from_numpy(np.ascontiguousarray(img[..., 2::-1])).permute(2, 0, 1)[None].float() / 255.0
    lab = rgb_to_lab(rgb)[0].numpy()
    for bad, words in ((mask & (lab[0] < HINT_MIN_L), f"too dark to carry a colour (L* under {HINT_MIN_L:g})"),
                       (mask & (lab[0] > HINT_MAX_L), f"too light to carry a colour (L* over {HINT_MAX_L:g})")):
        if bad.any():
            ys, xs = np.nonzero(bad)
            raise InputError(f"{what}: {len(ys)} hinted pixels are {words}, the first at x={xs[0]} y={ys[0]}; "
                             f"paint the hue wanted, the film keeps its own brightness: {path}")
    return Hint(when, mask, np.where(mask, lab[1:], 0.0).astype(np.float32), path, digest)


def merge(hints: Sequence[Hint]) -> Hint:
    """Hints for one position as one: later ones win where they overlap; all must have the same size."""
    base = hints[0]
    mask, ab = base.mask.copy(), base.ab.copy()
    for h in hints[1:]:
        if h.mask.shape != mask.shape:
            raise InputError(f"two hint images for {base.when.text} differ in size: {base.path}, {h.path}")
        mask |= h.mask
        ab = np.where(h.mask, h.ab, ab)
    return Hint(base.when, mask, ab, base.path, "+".join(h.digest for h in hints))


def load_hints(specs: Sequence[str]) -> list[Hint]:
    """Parse, read and check every `--hints`; those for the same position are merged (`merge`)."""
    by_position: dict[tuple, list[Hint]] = {}
    for spec in specs:
        when, path = parse_hint(spec)
        by_position.setdefault((when.frame, when.seconds), []).append(read_hint_image(path, when))
    return [merge(group) if len(group) > 1 else group[0] for group in by_position.values()]


def solve_grid(height: int, width: int) -> tuple[int, int]:
    scale = min(1.0, HINT_SOLVE_SHORT_SIDE / min(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def hint_targets(hint: Hint, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The hints at `size`: (mask (h,w) bool, a*b* (2,h,w)); a cell is hinted where hinted pixels cover
    `HINT_COVER` of it, with their mean colour (so thin strokes survive scaling down)."""
    m = torch.from_numpy(hint.mask).float()[None, None]
    ab = torch.from_numpy(hint.ab)[None] * m
    cover, ab = resize(m, size)[0, 0], resize(ab, size)[0]
    return (cover >= HINT_COVER).numpy(), (ab / cover.clamp(min=1e-6)).numpy()


def hinted_ab(L: torch.Tensor, hint: Hint) -> tuple[torch.Tensor, torch.Tensor]:
    """The hints spread over a frame with L* (1,1,h,w): ((1,2,h,w) a*b*, (1,1,h,w) reach in [0,1]); blend
    into the model's colours by the reach, so what no hint reaches keeps them."""
    mask, target = hint_targets(hint, tuple(L.shape[-2:]))
    ab, reach = spread(L[0, 0].cpu().numpy(), mask, target)
    return torch.from_numpy(ab).float()[None], torch.from_numpy(reach).float()[None, None]


def hinted_frame(y: torch.Tensor, hint: Hint, video: VideoInfo) -> tuple[torch.Tensor, torch.Tensor]:
    """The hinted frame's colour where its hints reach, on the carrying grid (`keyframes.carry_grid`):
    (Cb/Cr (2,h,w) in [0,1], reach (1,h,w)), from its Y' plane (1,1,H,W) on any device."""
    spec = video.color.yuv_spec
    grid, solve = carry_grid(video.height, video.width), solve_grid(video.height, video.width)
    hinted, weight = hinted_ab(luma_lightness(y, solve, spec).cpu(), hint)
    colour = chroma_from_lab(luma_lightness(y, grid, spec).cpu(), resize(hinted, grid), spec)[0]
    return colour, resize(weight, grid)[0]


def hint_tracks(frames: FrameSource, hints: Sequence[Hint], video: VideoInfo, render_hw: tuple[int, int],
                first_pts: int, end_pts: int | None, chroma_stride: tuple[int, int]) -> dict[int, list[tuple[int, Carried]]]:
    """pts -> [(distance in frames, the hint's carried colour)], for every frame within reach of a hinted frame
    in its shot (`keyframes.keyframe_tracks`' reading, with the hinted frame's own corrected colour and the
    hints' reach as its weight)."""
    tb, fps, spec = video.time_base, video.fps, video.color.yuv_spec
    step_seconds = 1 / float(fps) if fps else 1 / 25
    decay = 0.5 ** (step_seconds / KEYFRAME_HALF_LIFE_SECONDS)
    reach = round(KEYFRAME_REACH_SECONDS / tb)
    targets = [first_pts + round(h.when.time(fps) / tb) for h in hints]
    for hint, target in zip(hints, targets):  # all checked before any frame is read
        check_aspect(hint.aspect, hint.mask.shape, video, f"hint {hint.when.text}", hint.path)
        if end_pts is not None and target > end_pts:
            raise InputError(f"hint {hint.when.text} is past the end of the video "
                             f"({float((end_pts - first_pts) * tb):.3f} s)")
    grid = carry_grid(video.height, video.width)

    def compact(colour: torch.Tensor, weight: torch.Tensor) -> Carried:
        return Carried(to_uint8(F.avg_pool2d(colour[None], chroma_stride, ceil_mode=True)[0]),
                       F.avg_pool2d(weight[None], chroma_stride, ceil_mode=True)[0].half())

    tracks: dict[int, list[tuple[int, Carried]]] = {}
    for hint, target in zip(hints, targets):
        pts_list, grays, cuts, key_y, key_index = [], [], [], None, -1
        detector = CutDetector()
        for batch_pts, y in frames(max(first_pts, target - reach)):
            frame_cuts = detector.update(luma_lightness(y, render_hw, spec)).tolist()
            for i, (pts, frame_L, cut) in enumerate(zip(batch_pts, luma_lightness(y, grid, spec), frame_cuts)):
                if target - reach <= pts <= target + reach:
                    if key_index < 0 or abs(pts - target) < abs(pts_list[key_index] - target):
                        key_y, key_index = y[i:i + 1], len(pts_list)
                    pts_list.append(pts)
                    grays.append(l_to_gray_u8(frame_L))
                    cuts.append(cut)
            if batch_pts[-1] > target + reach:
                break
        if key_y is None or target > pts_list[-1] + round(step_seconds / tb):
            raise InputError(f"hint {hint.when.text} is past the end of the video")
        cuts[0] = False
        colour, weight = hinted_frame(key_y, hint, video)
        carried = propagate(grays, cuts, key_index, colour, decay, compact, key_weight=weight)
        del grays
        for i, (pts, entry) in enumerate(zip(pts_list, carried)):
            if entry is not None:
                if i == key_index:  # the hinted frame itself at the grid's full detail
                    entry = Carried(to_uint8(colour), weight.half())
                tracks.setdefault(pts, []).append((abs(i - key_index), entry))
    return tracks
