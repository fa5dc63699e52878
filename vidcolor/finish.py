"""The finishing stage: cut detection, temporal smoothing and L*a*b* -> Cb/Cr, in its own thread.

The model stage hands it one `Work` item a batch; it emits frames in order, each with the
source's Y plane untouched and new Cb/Cr planes in the source's matrix and range.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from .color import join_lab, lab_to_rgb
from .colorspec import YuvSpec
from .geometry import resize
from .keyframes import Carried, CarriedStack
from .media import Frame
from .temporal import CutDetector, Smoother
from .upsample import guided_upsample
from .yuv import rgb_to_yuv, to_code


@dataclass
class Work:
    """One batch between the model stage and the finishing stage."""

    frames: list[Frame]
    L_render: torch.Tensor | None = None  # (B,1,h,w) L* the model saw
    L_chroma: torch.Tensor | None = None  # (B,1,H',W') L* at the output's chroma size
    ab: torch.Tensor | None = None  # (B,2,h,w) predicted ab, not yet smoothed


def chroma_from_lab(L: torch.Tensor, ab: torch.Tensor, spec: YuvSpec, L_ab: torch.Tensor | None = None
                    ) -> torch.Tensor:
    """Cb, Cr planes (code values / 255) for L (B,1,h,w) and ab at any size, with the source's matrix.

    ab is upsampled to L's size bilinearly, or, given `L_ab` (the L* at ab's size), by the
    luma-guided filter (`upsample.guided_upsample`).
    """
    size = tuple(L.shape[-2:])
    ab = resize(ab, size) if L_ab is None else guided_upsample(ab, L_ab, L)
    return rgb_to_yuv(lab_to_rgb(join_lab(L, ab)), spec)[:, 1:]


class Finisher:
    """The finishing stage of one segment: cut detection, smoothing, L*a*b* -> Cb/Cr, to `emit`.

    Runs in its own thread (`StageThread`), in order. The smoother may hold frames back
    (look-ahead), so their source frames wait in `pending` until their ab is ready. `emit` gets
    every batch's finished frames (maybe none).
    """

    def __init__(self, smoother: Smoother, spec: YuvSpec, guided: bool,
                 download: Callable[[torch.Tensor], np.ndarray], emit: Callable[[list[Frame]], None],
                 carried: dict[int, Carried | CarriedStack] | None = None):
        """`carried`: keyframes' and hints' colours by pts (`guide.Guidance.tracks`), applied to the finished
        chroma, after smoothing, so a keyframe's own frame is exact and smoothing never dilutes it."""
        self.smoother, self.spec, self.guided = smoother, spec, guided
        self.carried = carried or {}
        self.download, self.emit = download, emit
        self.detector = CutDetector()
        self.pending: deque[tuple[Frame, torch.Tensor, torch.Tensor]] = deque()  # frame, L chroma, L render

    def process(self, work: Work | None) -> None:
        """Finish one batch (None: the end of the stream, flush what the smoother holds)."""
        if work is None:
            self.emit(self._output_frames(self.smoother.flush()))
            return
        ready: list[Frame] = []
        if work.frames:
            self.pending.extend(zip(work.frames, work.L_chroma, work.L_render))
            cuts = self.detector.update(work.L_render)
            ready = self._output_frames(self.smoother.push(work.ab, work.L_render, cuts))
        self.emit(ready)

    def _output_frames(self, ab: torch.Tensor) -> list[Frame]:
        """Join the `len(ab)` oldest pending frames with their smoothed ab: source Y, new Cb/Cr."""
        if not len(ab):
            return []
        frames, L, L_render = zip(*(self.pending.popleft() for _ in range(len(ab))))
        guide = torch.stack(L_render) if self.guided else None
        chroma = chroma_from_lab(torch.stack(L), ab, self.spec, guide)
        if self.carried:
            chroma = torch.stack([self.carried[f.pts].apply(c) if f.pts in self.carried else c
                                  for f, c in zip(frames, chroma)])
        chroma = self.download(to_code(chroma, frames[0].bits))
        return [replace(f, planes=(f.planes[0], c[0], c[1])) for f, c in zip(frames, chroma)]
