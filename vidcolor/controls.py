"""Every user-facing default and bound, declared once: the CLI's options, `Colorizer`, `OutputOptions`,
the smoothers, eval and the benchmarks all read them from here.

No torch, media or click imports, so the CLI can read them without slowing its start.
"""

from __future__ import annotations

import math

from .errors import OptionError

# -- the model and the colour
DEVICE = "auto"
ENGINE = "auto"  # `engine`: the int8 copy in ONNX Runtime on a CPU when it can, else torch
ENGINES = ("auto", "torch", "onnxruntime")
RENDER_SIZE = 256  # short side the model sees
RENDER_SIZE_RANGE = (32, 4096)
BATCH_SIZE_RANGE = (1, 256)
DEFAULT_SATURATION = 1.0
SATURATION_RANGE = (0.0, 3.0)  # 0 gives gray output; past 3 nearly every colour clips to the RGB gamut
BIN_TEMPERATURE = 0.38  # the bins head's annealed mean (Zhang et al. 2016)

# -- colours the user chooses (`--reference`, `--keyframe`; `exemplar`, `keyframes`)
REFERENCE_STRENGTH = 0.8  # how far matched reference colour overrides the model's, where the match is sure
REFERENCE_STRENGTH_RANGE = (0.0, 1.0)
MIN_REFERENCE_CHROMA = 4.0  # mean a*b* chroma below which an image counts as gray (refused as a reference)
MATCH_TEMPERATURE = 0.01  # softmax temperature over reference positions' cosine similarities
MATCH_CONFIDENCE = (0.6, 0.9)  # best cosine similarity mapped to confidence 0 .. 1 (unrelated footage: median 0.42)
KEYFRAME_REACH_SECONDS = 10.0  # a keyframe is carried along the flow this far each way (within its shot)
KEYFRAME_FLOW_SHORT_SIDE = 540  # keyframes are carried on the frame's own grid, scaled down only past this short side
KEYFRAME_HALF_LIFE_SECONDS = 60.0  # its weight halves over this time, fading to the reference match and model (chosen on validation clips)
FLOW_MISMATCH_KEEP = 0.97  # its weight is multiplied by this where the forward-backward flow check fails

# -- temporal smoothing (`temporal.SMOOTHERS` has one class per mode)
SMOOTHING_MODES = ("ema", "flow", "none", "window")
DEFAULT_SMOOTHING = "flow"
EMA_STRENGTH = 0.5  # keeps (1-a)/(1+a) = 1/3 of per-frame noise
FLOW_STRENGTH = 0.7  # keeps 0.18 of per-frame noise where the flow is trusted
WINDOW = 5  # frames of the `window` mode (weights 1,2,3,2,1)
WINDOW_RANGE = (1, 99)

# -- the encoder and the output files
CODEC = "libx264"
CRF = 18
CRF_RANGE = (0, 51)
PRESET = "medium"
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
                "veryslow", "placebo")
PIX_FMT_AUTO = "auto"  # the source's bit depth and chroma subsampling, where the encoder takes them (media.formats)
PIX_FMT = PIX_FMT_AUTO
PIX_FMTS = ("yuv420p", "yuv422p", "yuv444p", "yuv420p10le", "yuv422p10le", "yuv444p10le",
            "yuv420p12le", "yuv422p12le", "yuv444p12le", "yuv420p16le", "yuv422p16le", "yuv444p16le")
PIX_FMT_CHOICES = (PIX_FMT_AUTO, *PIX_FMTS)
SUFFIX = "_color"  # film.mp4 -> film_color.mp4
PREVIEW_SUFFIX = "_preview"  # film.mp4 -> film_preview.png
PREVIEW_FRAMES = 8  # frames on a `vidcolor preview` sheet
PREVIEW_FRAMES_RANGE = (1, 64)
QSCALE_RANGE = (1, 31)  # fixed quantiser of encoders without crf (MPEG-2 ...): --crf / 6, so crf 18 -> 3
LOSSLESS_AUDIO_CODECS = ("flac", "alac")  # for audio the output container cannot hold, tried in this order
SEQUENCE_FPS = 24.0  # frame rate of image-sequence inputs (--fps)
FPS_RANGE = (1.0, 300.0)  # frame rates outside it are a container's mistake (raw DV: 60000), not the video's
PROGRESS_SECONDS = 10.0  # off a terminal (a pipe, a log), `run` prints a progress line per file this often
SEGMENT_SECONDS = 30.0  # resumable segments
SEGMENT_SECONDS_RANGE = (1.0, 86400.0)

# -- eval
FLOW_MAX_SIDE = 480  # long side of the warp error's optical flow
FD_EVERY = 2  # fd_lite0 uses every 2nd frame of each video (neighbouring frames are near copies)


def check_saturation(value: float) -> float:
    """`value` as a float if it is a usable saturation, else OptionError, one line the CLI prints as is.

    Not-a-number and infinities are refused too: they would turn every pixel into garbage.
    """
    lo, hi = SATURATION_RANGE
    try:
        s = float(value)
    except (TypeError, ValueError):
        s = math.nan
    if not lo <= s <= hi:  # False for NaN as well
        raise OptionError(f"saturation must be a number from {lo:g} to {hi:g} (0: gray, 1: as predicted), "
                          f"got {value}")
    return s


def qscale_of_crf(crf: int) -> int:
    """The fixed quantiser (`qscale`) that `--crf` means for encoders without a crf (MPEG-2, MPEG-4, MJPEG)."""
    lo, hi = QSCALE_RANGE
    return max(lo, min(hi, round(crf / 6)))
