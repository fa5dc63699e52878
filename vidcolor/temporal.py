"""Temporal consistency of the predicted colour: scene-cut detection and ab smoothers.

Frames are colorized independently, so colour flickers; smoothing ab over time hides that,
but must restart at every cut or one shot's colours bleed into the next. Smoothers share one
interface so look-ahead modes (which hold frames back) drop into the pipeline unchanged:
`push()` returns only the frames that are ready, `flush()` the rest at the end of the stream.

Modes (`SMOOTHERS`): `none`; `ema`, a causal running average; `window`, a centred triangular
average over `window` frames (look-ahead of window // 2 frames); `flow`, a running average
along optical flow (OpenCV DIS on L at half the render size) that falls back to the frame's own
prediction where the flow is not trustworthy. Every mode restarts at each cut.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .controls import EMA_STRENGTH, FLOW_STRENGTH, WINDOW
from .flow import non_occluded_mask, optical_flow, resize_flow, warp


class CutDetector:
    """Flags the frames that start a new shot, carrying its state from batch to batch.

    A cut is a mean absolute L difference (on a coarse grid, so grain and small motion
    average out) above `threshold` L units that is also `ratio` times the previous frame's
    difference (fast pans raise both), at least `min_interval` frames after the last cut.
    On the shared clips cuts measure 17-52 and the busiest motion about 8. The start of the
    stream is not a cut: a cut in the first frames is found too (a segment's warm-up frames
    start a stream, and a cut among them must reset the smoother before the segment's frames).
    """

    def __init__(self, threshold: float = 10.0, ratio: float = 2.5, min_interval: int = 8, grid: int = 32):
        self.threshold = threshold
        self.ratio = ratio
        self.min_interval = min_interval
        self.grid = grid
        self._previous: torch.Tensor | None = None
        self._previous_diff = 0.0
        self._since_cut = min_interval

    def update(self, L: torch.Tensor) -> torch.Tensor:
        """(B,1,h,w) L in [0,100] -> (B,) bool, True where a frame starts a new shot."""
        small = F.adaptive_avg_pool2d(L.float(), self.grid)
        previous = small[:1] if self._previous is None else self._previous
        diffs = (small - torch.cat([previous, small[:-1]])).abs().mean(dim=(1, 2, 3)).tolist()
        cuts = []
        for diff in diffs:
            self._since_cut += 1
            cut = (diff > self.threshold and diff > self.ratio * self._previous_diff
                   and self._since_cut >= self.min_interval)
            if cut:
                self._since_cut = 0
            cuts.append(cut)
            self._previous_diff = diff
        self._previous = small[-1:]
        return torch.tensor(cuts, dtype=torch.bool, device=L.device)


class Smoother:
    """Base smoother: `strength` in [0,1) is how much of the past each frame keeps.

    Every smoother restarts at a cut and at the start of the stream: a frame flagged as a cut
    is output exactly as predicted (for `window`, averaged only with frames of its own shot).
    """

    DEFAULT_STRENGTH = 0.0

    def __init__(self, strength: float | None = None):
        strength = self.DEFAULT_STRENGTH if strength is None else strength
        if not 0.0 <= strength < 1.0:
            raise ValueError(f"smoothing strength must be in [0, 1), got {strength}")
        self.strength = strength

    def push(self, ab: torch.Tensor, L: torch.Tensor, cuts: torch.Tensor) -> torch.Tensor:
        """ab (B,2,h,w), L (B,1,h,w), cuts (B,) -> the (k,2,h,w) frames now ready, oldest first."""
        raise NotImplementedError

    def flush(self) -> torch.Tensor:
        """The frames still held back at the end of the stream (none for causal smoothers)."""
        return torch.empty(0, 2, 0, 0)

    @property
    def lookahead(self) -> int:
        """Frames after frame t that frame t's output depends on (a segment reads that many past its end)."""
        return 0


class NoSmoothing(Smoother):
    def push(self, ab: torch.Tensor, L: torch.Tensor, cuts: torch.Tensor) -> torch.Tensor:
        return ab


class EmaSmoother(Smoother):
    """Exponential moving average of ab, restarted at each cut: s_t = (1-a) ab_t + a s_{t-1}."""

    DEFAULT_STRENGTH = EMA_STRENGTH

    def __init__(self, strength: float | None = None):
        super().__init__(strength)
        self._state: torch.Tensor | None = None

    def push(self, ab: torch.Tensor, L: torch.Tensor, cuts: torch.Tensor) -> torch.Tensor:
        out = []
        for frame, cut in zip(ab.split(1), cuts.tolist()):
            if self._state is None or cut:
                self._state = frame
            else:
                self._state = torch.lerp(frame, self._state, self.strength)
            out.append(self._state)
        return torch.cat(out)


def window_weights(window: int) -> torch.Tensor:
    """Triangular weights (1, 2, .., h+1, .., 2, 1) for offsets -h..h, h = window // 2."""
    h = window // 2
    return torch.tensor([h + 1 - abs(k) for k in range(-h, h + 1)], dtype=torch.float32)


class WindowSmoother(Smoother):
    """Centred weighted average of ab over `window` frames (odd), truncated at cuts.

    Frame t is the triangular-weighted mean of frames t-h..t+h (h = window // 2) of its own
    shot; the weights of frames across a cut or past either end of the stream are dropped and
    the rest renormalised. It needs h frames of look-ahead, so `push` returns h frames fewer
    than it has received in all (fewer still at the start) and `flush` returns the last h.
    `strength` is unused (accepted so every mode takes the same options).
    """

    DEFAULT_WINDOW = WINDOW

    def __init__(self, strength: float | None = None, window: int | None = None):
        super().__init__(strength)
        window = self.DEFAULT_WINDOW if window is None else window
        if window < 1 or window % 2 == 0:
            raise ValueError(f"smoothing window must be a positive odd number of frames, got {window}")
        self.window = window
        self.half = window // 2
        self.weights = window_weights(window)
        self._frames: list[torch.Tensor] = []  # (1,2,h,w), from frame `_first` on
        self._shots: list[int] = []
        self._shot = -1
        self._first = 0  # stream index of _frames[0]
        self._next = 0  # stream index of the next frame to output

    @property
    def lookahead(self) -> int:
        return self.half

    def push(self, ab: torch.Tensor, L: torch.Tensor, cuts: torch.Tensor) -> torch.Tensor:
        for frame, cut in zip(ab.split(1), cuts.tolist()):
            if cut or self._shot < 0:
                self._shot += 1
            self._frames.append(frame)
            self._shots.append(self._shot)
        return self._emit(self._first + len(self._frames) - self.half)

    def flush(self) -> torch.Tensor:
        out = self._emit(self._first + len(self._frames))
        return out if len(out) else torch.empty(0, 2, 0, 0)

    def _emit(self, until: int) -> torch.Tensor:
        """Output frames `_next` .. `until`-1, then drop those no later frame needs."""
        out = []
        end = self._first + len(self._frames)
        for t in range(self._next, until):
            i = t - self._first
            lo, hi = max(0, i - self.half), min(end - self._first, i + self.half + 1)
            idx = [j for j in range(lo, hi) if self._shots[j] == self._shots[i]]
            w = self.weights[[j - i + self.half for j in idx]].to(self._frames[i])
            stack = torch.cat([self._frames[j] for j in idx])
            out.append((stack * (w / w.sum()).view(-1, 1, 1, 1)).sum(0, keepdim=True))
        self._next = max(self._next, until)
        drop = max(0, self._next - self.half - self._first)
        del self._frames[:drop], self._shots[:drop]
        self._first += drop
        return torch.cat(out) if out else torch.empty(0, 2, *(self._frames[0].shape[-2:] if self._frames else (0, 0)))


def l_to_gray_u8(L: torch.Tensor) -> np.ndarray:
    """(1,h,w) or (h,w) L* in [0,100] -> (h,w) uint8 (L * 2.55), the frames flow is computed on."""
    return (L.detach().float().cpu().reshape(L.shape[-2:]) * 2.55).round().clamp(0, 255).to(torch.uint8).numpy()


class FlowSmoother(Smoother):
    """Motion-compensated recursive average of ab, restarted at each cut.

    For each frame t, the backward flow B (t -> t-1) and forward flow F (t-1 -> t) are computed
    on L (OpenCV DIS, at `FLOW_SCALE` of the render size: chroma is smooth, so coarse motion
    is enough, and DIS costs about half as much at half size); the previous output s_{t-1} is
    warped onto frame t along B, and where the flow is trustworthy
    (`flow.non_occluded_mask(B, F)`: forward-backward agreement, no motion boundary, inside the
    frame) s_t = (1-a) ab_t + a warp(s_{t-1}, B); elsewhere (occlusions, newly visible
    content) s_t = ab_t. Colour thus follows moving objects instead of smearing across them as
    `ema` does.
    """

    DEFAULT_STRENGTH = FLOW_STRENGTH
    PRESET = "fast"
    FLOW_SCALE = 0.5
    MIN_FLOW_SIDE = 64  # below this DIS finds little; small renders keep their size

    def __init__(self, strength: float | None = None):
        super().__init__(strength)
        self._state: torch.Tensor | None = None
        self._gray: np.ndarray | None = None

    def _flow_gray(self, L: torch.Tensor) -> np.ndarray:
        """The frame flow is computed on: L as uint8, scaled down by FLOW_SCALE."""
        h, w = L.shape[-2:]
        scale = max(self.FLOW_SCALE, min(1.0, self.MIN_FLOW_SIDE / min(h, w)))
        if scale < 1.0:
            L = F.interpolate(L.reshape(1, 1, h, w).float(), size=(max(1, round(h * scale)), max(1, round(w * scale))),
                              mode="area")
        return l_to_gray_u8(L)

    def push(self, ab: torch.Tensor, L: torch.Tensor, cuts: torch.Tensor) -> torch.Tensor:
        out = []
        for frame, luma, cut in zip(ab.split(1), L.split(1), cuts.tolist()):
            gray = self._flow_gray(luma)
            if self._state is None or cut or self.strength == 0.0:
                self._state = frame
            else:
                bw = optical_flow(gray, self._gray, max_side=None, preset=self.PRESET)
                fw = optical_flow(self._gray, gray, max_side=None, preset=self.PRESET)
                size = tuple(frame.shape[-2:])
                mask = non_occluded_mask(bw, fw)[None, None].float()
                mask = F.interpolate(mask, size=size, mode="nearest").to(frame.device, torch.bool)[0]
                previous = warp(self._state, resize_flow(bw, size).to(frame.device)).to(frame.dtype)
                self._state = torch.where(mask, torch.lerp(frame, previous, self.strength), frame)
            self._gray = gray
            out.append(self._state)
        return torch.cat(out)


SMOOTHERS: dict[str, type[Smoother]] = {  # one per `controls.SMOOTHING_MODES`
    "none": NoSmoothing, "ema": EmaSmoother, "window": WindowSmoother, "flow": FlowSmoother,
}


def make_smoother(mode: str, strength: float | None = None, window: int | None = None) -> Smoother:
    """Build a smoother by name (`SMOOTHERS`); None picks the mode's default strength/window.

    `window` is used by the `window` mode only, `strength` by `ema` and `flow`.
    """
    if mode not in SMOOTHERS:
        raise ValueError(f"unknown smoothing mode {mode!r} (known: {', '.join(SMOOTHERS)})")
    if mode == "window":
        return WindowSmoother(strength, window=window)
    return SMOOTHERS[mode](strength=strength)
