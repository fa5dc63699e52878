"""The output video encoder's settings: each encoder gets only the options it has.

x264's `crf` and `preset` are not options of every encoder (MPEG-2 refuses to open with them), so
`--crf` is mapped to the encoder's own quality setting: its `crf` where it has one (x264, x265, VP9,
AV1), else a fixed quantiser (`qscale`, MPEG-1/2/4, MJPEG), else nothing (lossless FFV1). Interlaced
sources keep their field order, and AVI outputs get no B-frames (AVI cannot hold reordered frames:
FFmpeg delays the video by a frame there).
"""

from __future__ import annotations

from fractions import Fraction

import av

from ..controls import qscale_of_crf
from .probe import VideoInfo
from .streams import tag_video_stream

WEBM_CODECS = ("libvpx-vp9", "libvpx", "libaom-av1", "libsvtav1")  # what a .webm output can hold
_CONSTANT_QUALITY_BITRATE = ("libvpx-vp9", "libvpx", "libaom-av1")  # crf is a cap unless the bit rate is 0
_QSCALE_CODECS = ("mpeg1video", "mpeg2video", "mpeg4", "mjpeg", "msmpeg4", "msmpeg4v2", "h263", "h263p")
_NO_B_FRAME_FORMATS = ("avi",)
_FIXED_RATE_CODECS = ("mpeg1video", "mpeg2video")  # their time base must be a standard frame rate
TOP_FIRST, BOTTOM_FIRST = (2, 4), (3, 5)  # AVFieldOrder: TT, TB (top coded and shown first), BB, BT


def private_options(codec: str) -> set[str]:
    """The encoder's own AVOptions (`crf`, `preset`, ...)."""
    return {o.name for o in av.CodecContext.create(codec, "w").supported_options.private}


def encoder_options(codec: str, crf: int, preset: str, fmt: str | None = None, field_order: int = 0
                    ) -> dict[str, str]:
    """The AVOptions to open `codec` with, for an output of muxer `fmt` and a source of `field_order`."""
    own = private_options(codec)
    options: dict[str, str] = {}
    if "crf" in own:
        options["crf"] = str(crf)
        if codec in _CONSTANT_QUALITY_BITRATE:
            options["b"] = "0"
    elif codec in _QSCALE_CODECS:  # a fixed quantiser: the rate control may use only that one
        options["qmin"] = options["qmax"] = str(qscale_of_crf(crf))
    if "preset" in own and codec in ("libx264", "libx265"):
        options["preset"] = preset
    if fmt in _NO_B_FRAME_FORMATS:
        options["bf"] = "0"
    if field_order in TOP_FIRST + BOTTOM_FIRST and codec in ("libx264", "mpeg2video"):
        options["flags"] = "+ildct+ilme"
        if codec == "libx264":
            options["x264opts"] = "tff=1" if field_order in TOP_FIRST else "bff=1"
    return options


def add_video_stream(container: av.container.OutputContainer, video: VideoInfo, codec: str, crf: int, preset: str,
                     pix_fmt: str, fmt: str | None = None) -> av.video.VideoStream:
    """The coloured video's stream in `container`, as it is encoded: size, rate, time base, quality, field order."""
    stream = container.add_stream(codec, rate=video.fps,
                                  options=encoder_options(codec, crf, preset, fmt, video.field_order))
    stream.width, stream.height, stream.pix_fmt = video.width, video.height, pix_fmt
    ctx = stream.codec_context
    if codec in _FIXED_RATE_CODECS and video.fps:
        stream.time_base = ctx.time_base = Fraction(1) / video.fps
    else:
        # The source's time base, so every source timestamp (also variable frame rate) is exact.
        stream.time_base = ctx.time_base = video.time_base
    tag_video_stream(stream, video)
    return stream


class FieldFlags:
    """Marks each new frame interlaced with the source's field order: frames built from planes carry no
    interlacing flags, and encoders such as MPEG-2's take the field order of each picture from its frame
    (FFmpeg's `setfield` filter sets them; PyAV cannot). Progressive or unknown order: frames pass as they are."""

    def __init__(self, field_order: int, width: int, height: int, pix_fmt: str, time_base: Fraction):
        self.graph = None
        if field_order in TOP_FIRST + BOTTOM_FIRST:
            self.graph = av.filter.Graph()
            source = self.graph.add_buffer(width=width, height=height, format=pix_fmt, time_base=time_base)
            mark = self.graph.add("setfield", "tff" if field_order in TOP_FIRST else "bff")
            sink = self.graph.add("buffersink")
            source.link_to(mark)
            mark.link_to(sink)
            self.graph.configure()

    def __call__(self, frame: av.VideoFrame) -> av.VideoFrame:
        if self.graph is None:
            return frame
        self.graph.push(frame)
        return self.graph.pull()
