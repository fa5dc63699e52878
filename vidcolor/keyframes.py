"""Hand-coloured keyframes carried through their shot, forward and backward, along the optical flow.

At its own frame a keyframe's chroma replaces the prediction, so with the source's own luma that frame is
the keyframe (exact up to chroma subsampling). From there its chroma is warped frame to frame (DIS flow
with the `flow` smoother's occlusion test) in both directions up to the shot's cuts, with a weight that
halves every `KEYFRAME_HALF_LIFE_SECONDS` and drops where the forward-backward check fails; `Finisher`
blends the frame's chroma towards it by that weight (in Y'CbCr, after Cb/Cr are built from the model's
L*a*b*), so far from the keyframe or where the flow is unreliable the colour fades to the reference
match (the keyframe is a reference too) and the model's.

The flow and the carried colour use the source's own luma, not the render size: carried at render size
the colour blurs a little more with every step (about 0.8 dB below full-resolution propagation on the
validation clips). The grid is the frame's, scaled down only past `KEYFRAME_FLOW_SHORT_SIDE`; cuts are
still found at render size, as in the main pass.

Carrying colour backward needs the frames before the keyframe, which the stream has passed by then, so
`keyframe_tracks` reads each keyframe's neighbourhood first, in a bounded pass of its own: at most
`KEYFRAME_REACH_SECONDS` each way. Kept per frame: the carried Cb/Cr as 8-bit values on the flow grid
subsampled as the output's chroma is (for a 4:2:0 output half the grid each way, as its chroma plane; a
finer store would be averaged away by the encoder, a coarser one would lose what a 4:4:4 output can
hold) and a weight at 1/8 of it: for 4:2:0 about 0.12 MB a frame at 640x360 and 0.26 MB from 960x540 up,
some 70 or 160 MB per keyframe at 30 fps (four times that for 4:4:4); while a keyframe's shot is carried,
its gray frames (0.23 or 0.52 MB each) are held too. Memory grows with the number of keyframes and the reach,
never with the film's length; in a shot longer than twice the reach, the frames beyond it get the
keyframe's colours through the reference match only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from .color import luma_lightness
from .controls import (FLOW_MISMATCH_KEEP, KEYFRAME_FLOW_SHORT_SIDE, KEYFRAME_HALF_LIFE_SECONDS,
                       KEYFRAME_REACH_SECONDS)
from .errors import InputError
from .flow import non_occluded_mask, optical_flow, warp
from .geometry import resize
from .media import VideoInfo
from .references import Keyframe
from .temporal import CutDetector, l_to_gray_u8
from .yuv import rgb_to_yuv, to_uint8

T = TypeVar("T")
FLOW_PRESET = "medium"  # DIS preset: the pre-pass is short, so the finer flow is affordable
CHROMA_STRIDE = (2, 2)  # default store of the carried Cb/Cr: half the flow grid, as a 4:2:0 chroma plane
WEIGHT_STRIDE = 8  # the weight map at 1/8 of it (it is smooth)


@dataclass
class Carried:
    """A keyframe's colour at one frame: Cb/Cr (2,h,w) as 8-bit code values and its weight
    (1,h',w') in [0,1], or, at the keyframe itself, its Cb/Cr at the frame's full size (`exact`)."""

    chroma: torch.Tensor
    weight: torch.Tensor
    exact: bool = False

    def apply(self, chroma: torch.Tensor) -> torch.Tensor:
        """(2,H',W') chroma planes of the frame -> blended towards the carried colour (replaced if exact)."""
        size = tuple(chroma.shape[-2:])
        carried = resize(self.chroma[None].float() / 255.0, size)[0].to(chroma.device)
        if self.exact:
            return carried
        weight = resize(self.weight[None].float(), size)[0].to(chroma.device)
        return torch.lerp(chroma.float(), carried, weight)


@dataclass
class CarriedStack:
    """Several carried colours for one frame, applied in order (the last wins where it is sure)."""

    entries: list[Carried]

    def apply(self, chroma: torch.Tensor) -> torch.Tensor:
        for entry in self.entries:
            chroma = entry.apply(chroma)
        return chroma


def carry_step(gray_to: np.ndarray, gray_from: np.ndarray, colour: torch.Tensor, weight: torch.Tensor,
               decay: float, mismatch_keep: float = FLOW_MISMATCH_KEEP) -> tuple[torch.Tensor, torch.Tensor]:
    """One frame's step: colour and weight of frame `from` warped onto frame `to` (either direction)."""
    to_from = optical_flow(gray_to, gray_from, max_side=None, preset=FLOW_PRESET)
    from_to = optical_flow(gray_from, gray_to, max_side=None, preset=FLOW_PRESET)
    trusted = non_occluded_mask(to_from, from_to)[None].float()
    colour = warp(colour, to_from)
    weight = warp(weight, to_from) * (trusted + (1.0 - trusted) * mismatch_keep) * decay
    return colour, weight


def propagate(grays: Sequence[np.ndarray], cuts: Sequence[bool], key: int, key_colour: torch.Tensor,
              decay: float, keep: Callable[[torch.Tensor, torch.Tensor], T] | None = None,
              key_weight: torch.Tensor | None = None) -> list[T | None]:
    """Carry `key_colour` (C,h,w on the grays' grid) from frame `key` through its shot, both ways.

    `cuts[i]`: frame i starts a shot. Returns per frame `keep(colour, weight)` (default: the pair itself),
    None outside the key's shot; the key's own weight is 1 (or `key_weight`, (1,h,w)) and each step multiplies it
    by `decay` (and less where the flow is unsure). Only the step's own colour is held at full precision: `keep` may shrink the
    rest, so memory is what `keep` returns.
    """
    keep = keep or (lambda colour, weight: (colour, weight))
    out: list = [None] * len(grays)
    start = (key_colour.float(), torch.ones(1, *key_colour.shape[-2:]) if key_weight is None else key_weight.float())
    out[key] = keep(*start)
    for direction, stop in ((1, len(grays)), (-1, -1)):
        state = start
        for t in range(key + direction, stop, direction):
            if cuts[t if direction > 0 else t + 1]:  # the step crosses a cut
                break
            state = carry_step(grays[t], grays[t - direction], *state, decay)
            out[t] = keep(*state)
    return out


def carry_grid(height: int, width: int) -> tuple[int, int]:
    """The frame's own size, scaled down (aspect kept) so its short side is at most KEYFRAME_FLOW_SHORT_SIDE."""
    scale = min(1.0, KEYFRAME_FLOW_SHORT_SIDE / min(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def check_aspect(aspect: float, shape: tuple[int, ...], video: VideoInfo, what: str, path: object) -> None:
    """A user's picture of a frame must have the video's stored or displayed aspect (1 % allowed)."""
    width, height, sar = video.width, video.height, video.sample_aspect_ratio
    stored = width / height
    shown = stored * float(sar) if sar else stored
    if min(abs(aspect / a - 1) for a in (stored, shown)) > 0.01:
        raise InputError(f"{what} image is {shape[1]}x{shape[0]}, not the video's aspect ratio "
                         f"({width}x{height}): {path}")


def keyframe_chroma(keyframe: Keyframe, video: VideoInfo) -> torch.Tensor:
    """The keyframe image's Cb/Cr (2,H,W) at the video's size, in its matrix and range; the image's aspect
    must be the video's stored or displayed one."""
    width, height = video.width, video.height
    check_aspect(keyframe.image.aspect, keyframe.image.rgb.shape, video, f"keyframe {keyframe.when.text}",
                 keyframe.image.path)
    rgb = torch.from_numpy(keyframe.image.rgb).permute(2, 0, 1)[None].float() / 255.0
    return rgb_to_yuv(resize(rgb, (height, width)), video.color.yuv_spec)[0, 1:]


FrameSource = Callable[[int], Iterable[tuple[list[int], torch.Tensor]]]


def keyframe_tracks(frames: FrameSource, keyframes: Sequence[Keyframe], video: VideoInfo,
                    render_hw: tuple[int, int], first_pts: int, end_pts: int | None,
                    chroma_stride: tuple[int, int] = CHROMA_STRIDE) -> dict[int, Carried]:
    """pts -> the keyframes' carried colour, for every frame within reach of a keyframe in its shot.

    `chroma_stride`: (rows, columns) of the flow grid per stored chroma sample, the output's subsampling.

    `frames(start_pts)` iterates batches (pts list, Y planes (B,1,H,W) as code values / 255) from the
    keyframe at or before `start_pts`; `end_pts` is the last frame's (about), None if unknown. Where two keyframes
    reach one frame, the nearer one wins.
    """
    tb = video.time_base
    fps = video.fps
    step_seconds = 1 / float(fps) if fps else 1 / 25
    decay = 0.5 ** (step_seconds / KEYFRAME_HALF_LIFE_SECONDS)
    reach = round(KEYFRAME_REACH_SECONDS / tb)
    tracks: dict[int, tuple[int, Carried]] = {}
    key_chromas = [keyframe_chroma(k, video) for k in keyframes]
    targets = [first_pts + round(k.when.time(fps) / tb) for k in keyframes]
    for keyframe, target in zip(keyframes, targets):  # all checked before any frame is read
        if end_pts is not None and target > end_pts:
            raise InputError(f"keyframe {keyframe.when.text} is past the end of the video "
                             f"({float((end_pts - first_pts) * tb):.3f} s)")
    grid = carry_grid(video.height, video.width)

    def compact(colour: torch.Tensor, weight: torch.Tensor) -> Carried:
        return Carried(to_uint8(F.avg_pool2d(colour[None], chroma_stride, ceil_mode=True)[0]),
                       F.avg_pool2d(weight[None], WEIGHT_STRIDE, ceil_mode=True)[0].half())

    for keyframe, key_chroma, target in zip(keyframes, key_chromas, targets):
        pts_list, grays = [], []
        detector = CutDetector()
        cuts: list[bool] = []
        for batch_pts, y in frames(max(first_pts, target - reach)):
            frame_cuts = detector.update(luma_lightness(y, render_hw, video.color.yuv_spec)).tolist()
            for pts, frame_L, cut in zip(batch_pts, luma_lightness(y, grid, video.color.yuv_spec), frame_cuts):
                if target - reach <= pts <= target + reach:
                    pts_list.append(pts)
                    grays.append(l_to_gray_u8(frame_L))
                    cuts.append(cut)
            if batch_pts[-1] > target + reach:
                break
        if not pts_list or target > pts_list[-1] + round(step_seconds / tb):
            raise InputError(f"keyframe {keyframe.when.text} is past the end of the video")
        key = min(range(len(pts_list)), key=lambda i: abs(pts_list[i] - target))
        cuts[0] = False
        carried = propagate(grays, cuts, key, resize(key_chroma[None], grid)[0], decay, compact)
        del grays
        for i, (pts, entry) in enumerate(zip(pts_list, carried)):
            if entry is None:
                continue
            distance = abs(i - key)
            if i == key:
                entry = Carried(to_uint8(key_chroma), torch.ones(1, 1, 1), exact=True)
            if pts not in tracks or tracks[pts][0] > distance:
                tracks[pts] = (distance, entry)
    return {pts: entry for pts, (_, entry) in tracks.items()}
