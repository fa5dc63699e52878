"""Streaming evaluation of a whole video: every metric of `vidcolor.metrics` in one pass over two
batch streams, memory flat whatever the length (`score_video`)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import torch

from .controls import FLOW_MAX_SIDE
from .metrics import (CdcState, WarpState, colorfulness_frames, colorfulness_ratio, delta_cf, frames_to_uint8,
                      psnr_frames, ssim_frames, to_chroma_u8)


@dataclass(frozen=True)
class VideoScores:
    """Per-video means of every metric (definitions in the functions of the same names)."""

    frames: int
    psnr: float  # dB, higher is better
    ssim: float  # higher is better
    colorfulness: float  # of the prediction
    colorfulness_ref: float  # of the reference, the target to get close to
    cdc: float  # of the prediction, lower is better
    cdc_ref: float  # of the reference: what natural motion alone scores
    warp_error: float  # of the prediction, lower is better
    warp_error_ref: float  # of the reference: the floor set by flow errors and real change
    cdc_chroma: float = math.nan  # CDC on Cb, Cr only (`cdc_chroma`), of the prediction
    cdc_chroma_ref: float = math.nan
    warp_error_chroma: float = math.nan  # warp error on Cb, Cr only (`warp_error_chroma`)
    warp_error_chroma_ref: float = math.nan
    colorfulness_ratio: float = math.nan  # colorfulness / colorfulness_ref (`colorfulness_ratio`), 1 is right
    delta_cf: float = math.nan  # colorfulness - colorfulness_ref (`delta_cf`), 0 is right
    fd_lite0: float = math.nan  # Fréchet distance on Lite0 features (`vidcolor.fd`), NaN if not computed


class FrameSetSink(Protocol):
    """What `score_video` feeds aligned chunks to for a set-level score (`vidcolor.fd.FdPair`)."""

    def add(self, pred: torch.Tensor, ref: torch.Tensor) -> None: ...

    def value(self) -> float: ...


class MismatchError(ValueError):
    """The prediction and the reference are not the same video's frames (count or size)."""


def _next_nonempty(it: Iterator[torch.Tensor]) -> torch.Tensor | None:
    for batch in it:
        u8 = frames_to_uint8(batch)
        if u8.shape[0]:
            return u8
    return None


def _aligned(
    preds: Iterable[torch.Tensor], refs: Iterable[torch.Tensor]
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Re-cut two batch streams into equal-length uint8 chunks, whatever each side's batch sizes."""
    pi, ri = iter(preds), iter(refs)
    pbuf: torch.Tensor | None = None
    rbuf: torch.Tensor | None = None
    done = 0
    while True:
        if pbuf is None:
            pbuf = _next_nonempty(pi)
        if rbuf is None:
            rbuf = _next_nonempty(ri)
        if pbuf is None or rbuf is None:
            if pbuf is not None or rbuf is not None:
                longer = "prediction" if pbuf is not None else "reference"
                raise MismatchError(f"different numbers of frames: the {longer} goes on after frame {done}")
            return
        n = min(pbuf.shape[0], rbuf.shape[0])
        yield pbuf[:n], rbuf[:n]
        done += n
        pbuf = pbuf[n:] if pbuf.shape[0] > n else None
        rbuf = rbuf[n:] if rbuf.shape[0] > n else None


def score_video(
    pred_frames_iter: Iterable[torch.Tensor],
    ref_frames_iter: Iterable[torch.Tensor],
    flow_max_side: int | None = FLOW_MAX_SIDE,
    fd: FrameSetSink | None = None,
) -> VideoScores:
    """All metrics of a predicted video against its reference in one streaming pass.

    `fd`: also given every aligned uint8 chunk, its `value()` becomes `fd_lite0` (NaN without).

    Both arguments yield batches (T_i,3,H,W) (or single frames (3,H,W)), float in [0,1] or
    uint8; the two sides may be cut into batches differently. Memory stays flat whatever the
    length: per-frame values are summed as they come, CDC keeps the last 4 histograms and warp
    error the previous frame. Results equal the whole-video functions (`psnr`, `ssim`, ...) on
    the concatenated frames. Raises MismatchError if the frame counts or sizes differ.
    """
    n = 0
    sums = {"psnr": 0.0, "ssim": 0.0, "colorfulness": 0.0, "colorfulness_ref": 0.0}
    cdc_pred, cdc_ref = CdcState(), CdcState()
    cdc_pred_c, cdc_ref_c = CdcState(), CdcState()
    warp_state = WarpState(flow_max_side)
    for p, r in _aligned(pred_frames_iter, ref_frames_iter):
        if p.shape[1:] != r.shape[1:]:
            raise MismatchError(f"frame sizes differ: {p.shape[-1]}x{p.shape[-2]} vs {r.shape[-1]}x{r.shape[-2]}")
        n += p.shape[0]
        sums["psnr"] += sum(psnr_frames(p, r))
        sums["ssim"] += sum(ssim_frames(p, r))
        sums["colorfulness"] += sum(colorfulness_frames(p))
        sums["colorfulness_ref"] += sum(colorfulness_frames(r))
        for i in range(p.shape[0]):
            cdc_pred.add(p[i])
            cdc_ref.add(r[i])
            cdc_pred_c.add(to_chroma_u8(p[i])[0])
            cdc_ref_c.add(to_chroma_u8(r[i])[0])
            warp_state.add(p[i], r[i])
        if fd is not None:
            fd.add(p, r)
    means = {k: (v / n if n else math.nan) for k, v in sums.items()}
    return VideoScores(
        frames=n,
        cdc=cdc_pred.value(),
        cdc_ref=cdc_ref.value(),
        warp_error=warp_state.value(),
        warp_error_ref=warp_state.value(of_ref=True),
        cdc_chroma=cdc_pred_c.value(),
        cdc_chroma_ref=cdc_ref_c.value(),
        warp_error_chroma=warp_state.chroma_value(),
        warp_error_chroma_ref=warp_state.chroma_value(of_ref=True),
        colorfulness_ratio=colorfulness_ratio(means["colorfulness"], means["colorfulness_ref"]),
        delta_cf=delta_cf(means["colorfulness"], means["colorfulness_ref"]),
        fd_lite0=fd.value() if fd is not None and n else math.nan,
        **means,
    )
