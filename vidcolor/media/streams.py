"""Output-stream helpers shared by every file vidcolor writes (writer, join, eval's gray copy, benchmarks).

One place for what an output video stream copies from its source (colour tags, pixel aspect,
display matrix), for copying audio/subtitle streams by template, and for swscale's names of
the YUV matrices, so a new tag or container rule is written once.
"""

from __future__ import annotations

import av
from av.video.reformatter import Interpolation

from ..colorspec import YuvSpec
from .probe import VideoInfo

_SWS_COLORSPACE = {"bt601": "itu601", "bt709": "itu709", "bt2020": "bt2020"}

# YUV -> RGB for scoring: swscale's default path for subsampled planes is off by -1 to -1.5 codes
# (measured against the exact matrix; 4:4:4 is exact) and, above 8 bits, interpolates chroma.
# ACCURATE_RND + FULL_CHR_H_INT with POINT give the exact matrix with each chroma sample repeated
# over its block, as the default 8-bit path does, so every pixel format is decoded alike.
RGB_EXACT = Interpolation.POINT | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT


def sws_colorspace(spec: YuvSpec) -> str:
    """swscale's name of `spec`'s matrix (for `VideoReformatter.reformat`)."""
    return _SWS_COLORSPACE[spec.matrix]


def tag_video_stream(stream: av.video.VideoStream, video: VideoInfo) -> None:
    """Give an output video stream the source's colour tags, pixel aspect ratio and display matrix."""
    ctx = stream.codec_context
    ctx.colorspace, ctx.color_range = video.color.colorspace, video.color.color_range
    ctx.color_primaries, ctx.color_trc = video.color.primaries, video.color.trc
    if video.sample_aspect_ratio:
        ctx.sample_aspect_ratio = video.sample_aspect_ratio
    if video.display_matrix:
        stream.set_display_matrix(video.display_matrix)
    if video.field_order > 1:  # interlaced: keep the field order (the container's flag and the encoder's)
        ctx.field_order = video.field_order
