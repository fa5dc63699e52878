"""Quality and temporal-consistency metrics for `vidcolor eval`.

Pure functions on tensors, so every number can be checked without a video file. A *video* is a
tensor of frames (T,3,H,W) RGB, either float in [0,1] or uint8 in [0,255]; a single frame (3,H,W)
is read as T = 1. Float frames are clamped to [0,1], scaled by 255 and rounded to the nearest
integer (`frames_to_uint8`) before anything is measured: every metric here is defined on 8-bit RGB, as
the published tables that use them (PSNR, SSIM, colourfulness, CDC, warp error) measure the
8-bit frames written to disk. The feature distance fd_lite0 (a model, not a formula) lives in
`vidcolor.fd`; `scoring.score_video` only feeds it frames. Frames are sRGB as decoded; no colour management is applied.

Every video-level number is a plain mean over frames (or frame pairs) of a per-frame value, so
`scoring.score_video` can compute it in one streaming pass and get the same result as the functions
that take whole videos.

Optical flow, warping and the occlusion mask live in `vidcolor.flow` (shared with the
motion-compensated smoother); here flow is OpenCV's DIS (preset MEDIUM) on 8-bit BT.601 luma of
the reference, computed on frames scaled down so the long side is at most `FLOW_MAX_SIDE`.
"""

from __future__ import annotations

import math
from collections import deque

import torch

from .colorspec import LUMA_WEIGHTS
from .flow import FLOW_MAX_SIDE, non_occluded_mask, optical_flow, warp
from .yuv import to_uint8

PSNR_CAP_DB = 100.0
"""Per-frame PSNR is clipped to this, so identical frames (MSE 0) keep the mean finite."""

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5  # kornia.metrics.ssim fixes sigma at 1.5; kept here for the docs
CDC_GAPS = (1, 2, 4)

_KR, _KB = LUMA_WEIGHTS["bt601"]
_LUMA = (_KR, 1.0 - _KR - _KB, _KB)  # BT.601, as cv2.COLOR_RGB2GRAY (in float32 exactly 0.299, 0.587, 0.114)


# --------------------------------------------------------------------------------------------
# Input handling


def frames_to_uint8(frames: torch.Tensor) -> torch.Tensor:
    """(T,3,H,W) or (3,H,W) float RGB in [0,1] or uint8 -> (T,3,H,W) uint8 on the CPU.

    Float values are clamped to [0,1], multiplied by 255 and rounded to nearest (ties to even,
    `yuv.to_uint8`), which is how a frame in [0,1] becomes the 8-bit frame an encoder would be given.
    """
    if not isinstance(frames, torch.Tensor):
        raise TypeError(f"frames must be a torch.Tensor, got {type(frames).__name__}")
    if frames.dim() == 3:
        frames = frames.unsqueeze(0)
    if frames.dim() != 4 or frames.shape[1] != 3:
        raise ValueError(f"frames must be (T,3,H,W) or (3,H,W), got {tuple(frames.shape)}")
    frames = frames.detach().cpu()
    if frames.dtype == torch.uint8:
        return frames
    if not frames.is_floating_point():
        raise TypeError(f"frames must be float in [0,1] or uint8, got {frames.dtype}")
    return to_uint8(frames.float().clamp(0.0, 1.0))


def _pair(pred: torch.Tensor, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    p, r = frames_to_uint8(pred), frames_to_uint8(ref)
    if p.shape != r.shape:
        raise ValueError(f"pred and ref differ in shape: {tuple(p.shape)} vs {tuple(r.shape)}")
    return p, r


def _mean(values: list[float]) -> float:
    return float(sum(values) / len(values)) if values else math.nan


# --------------------------------------------------------------------------------------------
# Per-frame fidelity and colourfulness


def psnr_frames(pred: torch.Tensor, ref: torch.Tensor) -> list[float]:
    """Per-frame PSNR in dB on 8-bit RGB: 10*log10(255^2 / MSE), MSE over all pixels and
    channels of the frame, clipped to `PSNR_CAP_DB` (identical frames give exactly the cap)."""
    p, r = _pair(pred, ref)
    out = []
    for i in range(p.shape[0]):
        mse = float((p[i].double() - r[i].double()).square().mean())
        out.append(PSNR_CAP_DB if mse == 0.0 else min(PSNR_CAP_DB, 10.0 * math.log10(255.0**2 / mse)))
    return out


def psnr(pred: torch.Tensor, ref: torch.Tensor) -> float:
    """Video PSNR (dB, higher is better) = mean over frames of `psnr_frames`.

    Definition: both videos quantised to 8-bit RGB; per frame PSNR = 10*log10(255^2 / MSE) with
    MSE over all H*W*3 values; each frame's PSNR capped at 100 dB; the video's PSNR is the
    arithmetic mean of the per-frame values (not the PSNR of the pooled MSE).
    """
    return _mean(psnr_frames(pred, ref))


def ssim_frames(pred: torch.Tensor, ref: torch.Tensor) -> list[float]:
    """Per-frame SSIM on 8-bit RGB (see `ssim`). Frames must be at least 11x11."""
    p, r = _pair(pred, ref)
    if min(p.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs frames of at least {SSIM_WINDOW}x{SSIM_WINDOW}")
    out = []
    import kornia.metrics  # here, not above: training imports this module on machines without kornia

    for i in range(p.shape[0]):  # one frame at a time: kornia holds ~6 float maps per input
        m = kornia.metrics.ssim(
            p[i : i + 1].float(), r[i : i + 1].float(), SSIM_WINDOW, max_val=255.0, eps=0.0, padding="valid"
        )
        out.append(float(m.double().mean()))
    return out


def ssim(pred: torch.Tensor, ref: torch.Tensor) -> float:
    """Video SSIM (higher is better, 1 for identical) = mean over frames of per-frame SSIM.

    Definition (Wang et al. 2004): on 8-bit RGB values (data range L = 255), each channel
    separately; local statistics from an 11x11 Gaussian window with sigma 1.5 (normalised to sum
    1); C1 = (0.01 L)^2, C2 = (0.03 L)^2; population (biased) local variances; the SSIM map is
    kept only where the window fits inside the frame ("valid", i.e. 5 px cropped on each side,
    as the authors' MATLAB code); frame SSIM = mean of the map over valid pixels and the three
    channels. No downsampling of large frames. Computed with `kornia.metrics.ssim(window_size=11,
    max_val=255., eps=0., padding="valid")`, which matches this definition exactly.
    """
    return _mean(ssim_frames(pred, ref))


def colorfulness_frames(frames: torch.Tensor) -> list[float]:
    """Per-frame colourfulness M of Hasler and Suesstrunk (2003) on 8-bit RGB (see `colorfulness`)."""
    u8 = frames_to_uint8(frames)
    out = []
    for i in range(u8.shape[0]):
        r, g, b = u8[i].double().unbind(0)
        rg = r - g
        yb = 0.5 * (r + g) - b
        std = math.hypot(float(rg.std(correction=0)), float(yb.std(correction=0)))
        mean = math.hypot(float(rg.mean()), float(yb.mean()))
        out.append(std + 0.3 * mean)
    return out


def colorfulness(frames: torch.Tensor) -> float:
    """Colourfulness (Hasler and Suesstrunk 2003; 0 for gray, higher is more colourful).

    Definition: on 8-bit RGB values in [0,255], rg = R - G and yb = 0.5(R + G) - B per pixel;
    M = sqrt(s_rg^2 + s_yb^2) + 0.3 sqrt(m_rg^2 + m_yb^2) with s the population standard
    deviation and m the mean over the frame's pixels; the video's value is the mean of M over
    frames.
    """
    return _mean(colorfulness_frames(frames))


def colorfulness_ratio(pred_cf: float, ref_cf: float) -> float:
    """Prediction's colourfulness over the truth's (1 is the truth's amount of colour, 0 gray,
    above 1 oversaturated); NaN for a colourless truth (nothing to be a fraction of).

    PSNR rewards gray output; this (and `delta_cf`) says how much colour there is. Taken on the
    set-level means (mean over frames of each), not per frame, so near-gray frames cannot blow up.
    """
    return pred_cf / ref_cf if ref_cf > 0 else math.nan


def delta_cf(pred_cf: float, ref_cf: float) -> float:
    """Delta-CF = prediction's colourfulness - truth's (0 is right, negative too gray), as
    colorization papers tabulate it (e.g. DDColor); same scale as `colorfulness`."""
    return pred_cf - ref_cf


# --------------------------------------------------------------------------------------------
# Colour distribution consistency (CDC)


def _histograms(u8: torch.Tensor) -> torch.Tensor:
    """(3,H,W) uint8 -> (3,256) float64 per-channel histograms, each summing to 1."""
    c, h, w = u8.shape
    idx = (u8.reshape(c, -1).long() + torch.arange(c).unsqueeze(1) * 256).reshape(-1)
    return torch.bincount(idx, minlength=c * 256).reshape(c, 256).double() / (h * w)


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence in nats over the last dim of two distributions (0 .. ln 2)."""
    m = 0.5 * (p + q)
    safe_m = torch.where(m > 0, m, torch.ones_like(m))
    kl_pm = torch.xlogy(p, p / safe_m).sum(-1)
    kl_qm = torch.xlogy(q, q / safe_m).sum(-1)
    return 0.5 * kl_pm + 0.5 * kl_qm


class CdcState:
    """Streaming CDC: only the last max(CDC_GAPS) frames' histograms are kept."""

    def __init__(self) -> None:
        self.hists: deque[torch.Tensor] = deque(maxlen=max(CDC_GAPS))
        self.sums = {d: 0.0 for d in CDC_GAPS}
        self.counts = {d: 0 for d in CDC_GAPS}

    def add(self, frame_u8: torch.Tensor) -> None:
        h = _histograms(frame_u8)
        for d in CDC_GAPS:
            if len(self.hists) >= d:
                self.sums[d] += float(js_divergence(self.hists[-d], h).mean())  # mean over R,G,B
                self.counts[d] += 1
        self.hists.append(h)

    def value(self) -> float:
        return _mean([self.sums[d] / self.counts[d] for d in CDC_GAPS if self.counts[d]])


def to_chroma_u8(frames: torch.Tensor) -> torch.Tensor:
    """(T,3,H,W) or (3,H,W) RGB -> (T,2,H,W) uint8 Cb, Cr: full-range BT.601 (JPEG) YCbCr,
    Cb = 128 - 0.168736 R - 0.331264 G + 0.5 B, Cr = 128 + 0.5 R - 0.418688 G - 0.081312 B,
    rounded to nearest and clamped to [0,255]. Gray pixels give exactly (128, 128)."""
    u8 = frames_to_uint8(frames).float()
    r, g, b = u8[:, 0], u8[:, 1], u8[:, 2]
    cb = 128.0 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128.0 + 0.5 * r - 0.418688 * g - 0.081312 * b
    return torch.stack([cb, cr], dim=1).round().clamp(0, 255).to(torch.uint8)


def cdc_chroma(frames: torch.Tensor) -> float:
    """Chroma CDC: `cdc` exactly, but on the two chroma channels of `to_chroma_u8` (mean over
    Cb, Cr of the per-channel JS divergences) instead of R, G, B: the colour part of CDC, which
    a colorization's luma (copied from the source) does not change."""
    state = CdcState()
    for frame in to_chroma_u8(frames):
        state.add(frame)
    return state.value()


def cdc(frames: torch.Tensor) -> float:
    """Colour distribution consistency (Liu et al., TCVC 2021; lower is better, 0 for a video
    whose frames all share the same colour histograms).

    Definition, as the authors' `compute_hist.py`: for each 8-bit RGB frame, per-channel 256-bin
    histograms normalised to sum 1; JS(P, Q) = 0.5 KL(P||M) + 0.5 KL(Q||M), M = (P + Q)/2, with
    the natural log (nats, as scipy.stats.entropy), so 0 <= JS <= ln 2; for each gap d in
    {1, 2, 4}: the mean over t of JS(frame t, frame t+d), averaged over R, G, B; CDC = mean of
    those three per-gap means. Gaps with no frame pair (videos of <= d frames) are left out of
    the mean (the reference code would give NaN); a one-frame video gives NaN.
    """
    state = CdcState()
    for frame in frames_to_uint8(frames):
        state.add(frame)
    return state.value()


# --------------------------------------------------------------------------------------------
# Optical flow, warping and warp error


def rgb_to_gray_u8(frames: torch.Tensor) -> torch.Tensor:
    """(T,3,H,W) or (3,H,W) RGB -> (T,H,W) uint8 BT.601 luma, as cv2.COLOR_RGB2GRAY."""
    u8 = frames_to_uint8(frames).float()
    y = _LUMA[0] * u8[:, 0] + _LUMA[1] * u8[:, 1] + _LUMA[2] * u8[:, 2]
    return y.round().clamp(0, 255).to(torch.uint8)


def _warp_mse(prev_u8: torch.Tensor, next_u8: torch.Tensor, flow_fw: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean over the mask's pixels and the channels of (prev - warp(next, flow_fw))^2,
    frames (C,H,W) uint8 taken as [0,1]; 0 if the mask is empty (a pair with no trusted
    correspondence, e.g. across a cut: Lai et al.'s script masks the difference, so it adds 0)."""
    n = int(mask.sum())
    if n == 0:
        return 0.0
    prev = prev_u8.float() / 255.0
    nxt = warp(next_u8.float() / 255.0, flow_fw)
    sq = (prev - nxt).square()  # (3,H,W)
    return float(sq[:, mask].double().sum() / (sq.shape[0] * n))


class WarpState:
    """Streaming warp error of the prediction (and of the reference itself, as a floor): keeps
    only the previous frame of each and the previous reference luma."""

    def __init__(self, flow_max_side: int | None) -> None:
        self.flow_max_side = flow_max_side
        self.prev: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self.pred_sum = self.ref_sum = 0.0
        self.chroma_sums = [0.0, 0.0]  # of the prediction, of the reference
        self.pairs = 0

    def add(self, pred_u8: torch.Tensor, ref_u8: torch.Tensor) -> None:
        gray = rgb_to_gray_u8(ref_u8)[0]
        if self.prev is not None:
            p0, r0, g0 = self.prev
            fw = optical_flow(g0, gray, self.flow_max_side)
            mask = non_occluded_mask(fw, optical_flow(gray, g0, self.flow_max_side))
            self.pred_sum += _warp_mse(p0, pred_u8, fw, mask)
            self.ref_sum += _warp_mse(r0, ref_u8, fw, mask)
            self.chroma_sums[0] += _warp_mse(to_chroma_u8(p0)[0], to_chroma_u8(pred_u8)[0], fw, mask)
            self.chroma_sums[1] += _warp_mse(to_chroma_u8(r0)[0], to_chroma_u8(ref_u8)[0], fw, mask)
            self.pairs += 1
        self.prev = (pred_u8, ref_u8, gray)

    def value(self, of_ref: bool = False) -> float:
        return (self.ref_sum if of_ref else self.pred_sum) / self.pairs if self.pairs else math.nan

    def chroma_value(self, of_ref: bool = False) -> float:
        return self.chroma_sums[of_ref] / self.pairs if self.pairs else math.nan


def warp_error(pred: torch.Tensor, ref: torch.Tensor, flow_max_side: int | None = FLOW_MAX_SIDE) -> float:
    """Warp error (Lai et al. 2018, "Learning blind video temporal consistency"; lower is better).

    Definition, following the authors' `evaluate_WarpError.py`: for each pair (t-1, t), the
    forward flow F (t-1 -> t) and backward flow B (t -> t-1) are computed on the REFERENCE
    video's 8-bit BT.601 luma (DIS MEDIUM, long side <= `flow_max_side`, see `optical_flow`);
    the prediction's frame t is warped back onto frame t-1, W(x) = pred_t(x + F(x)) (bilinear);
    E_t = sum over non-occluded x and channels of (pred_{t-1}(x) - W(x))^2 / (3 * #non-occluded),
    with RGB in [0,1] (8-bit values / 255) and the mask of `non_occluded_mask`; the video's
    warp error is the mean of E_t over its T-1 pairs (NaN for a one-frame video). Published
    tables usually print it multiplied by 10^3 (or 10^2): compare like with like.
    """
    return _warp_state(pred, ref, flow_max_side).value()


def warp_error_chroma(pred: torch.Tensor, ref: torch.Tensor, flow_max_side: int | None = FLOW_MAX_SIDE) -> float:
    """Chroma warp error: `warp_error` exactly (same flow on the reference's luma, same mask),
    but on the prediction's two chroma channels (`to_chroma_u8`, / 255) instead of R, G, B.

    Colorization keeps the source's luma, so the luma part of the RGB warp error is the same
    for every colorization of a clip (roughly the reference's own warp error); this isolates
    the colour flicker that temporal smoothing is meant to remove.
    """
    return _warp_state(pred, ref, flow_max_side).chroma_value()


def _warp_state(pred: torch.Tensor, ref: torch.Tensor, flow_max_side: int | None) -> WarpState:
    """Every frame pair of (pred, ref) added to one `WarpState` (RGB and chroma sums together)."""
    p, r = _pair(pred, ref)
    state = WarpState(flow_max_side)
    for i in range(p.shape[0]):
        state.add(p[i], r[i])
    return state
