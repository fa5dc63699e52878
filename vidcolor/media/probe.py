"""What a media file holds: streams, size, colour tags, rotation, frame count.

The colour tags decide both how frames are converted on the device and how the output is
tagged, so they are resolved once here (missing tags get the usual defaults: BT.709 from
720 lines up, BT.601 below, limited range except for full-range pixel formats).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.sidedata.sidedata import Type as SideDataType
from av.video.reformatter import ColorPrimaries, ColorRange, ColorTrc

from ..errors import InputError
from ..colorspec import YuvSpec, untagged_matrix

# Pixel formats that are full range whatever the range tag says (FFmpeg's convention).
FULL_RANGE_FORMATS = ("yuvj", "gray")



class ColorSpace(IntEnum):
    """FFmpeg's AVColorSpace (PyAV's `Colorspace` is swscale's list, which lacks SMPTE170M)."""

    RGB = 0
    BT709 = 1
    UNSPECIFIED = 2
    FCC = 4
    BT470BG = 5
    SMPTE170M = 6
    SMPTE240M = 7
    BT2020_NCL = 9
    BT2020_CL = 10


_MATRIX_OF_COLORSPACE = {
    ColorSpace.BT709: "bt709",
    ColorSpace.FCC: "bt601",
    ColorSpace.BT470BG: "bt601",
    ColorSpace.SMPTE170M: "bt601",
    ColorSpace.BT2020_NCL: "bt2020",
    ColorSpace.BT2020_CL: "bt2020",
}
# Tags written for each matrix when the source has none.
_DEFAULT_TAGS = {
    "bt709": (ColorSpace.BT709, ColorPrimaries.BT709, ColorTrc.BT709),
    "bt601": (ColorSpace.SMPTE170M, ColorPrimaries.SMPTE170M, ColorTrc.SMPTE170M),
    "bt2020": (ColorSpace.BT2020_NCL, ColorPrimaries.BT2020, ColorTrc.BT2020_10),
}
_UNSPECIFIED = (0, 2)  # 2 is AVCOL_*_UNSPECIFIED; 0 is reserved for primaries and trc


@dataclass(frozen=True)
class ColorTags:
    """Resolved colour description: the integers are FFmpeg's AVColor* values."""

    colorspace: int
    color_range: int
    primaries: int
    trc: int
    assumed: bool = field(default=False, compare=False)  # the source had no matrix tag

    @property
    def yuv_spec(self) -> YuvSpec:
        return YuvSpec(_MATRIX_OF_COLORSPACE[self.colorspace], self.color_range == ColorRange.JPEG)

    def describe(self) -> str:
        def name(enum, value):
            try:
                return enum(value).name.lower()
            except ValueError:
                return str(value)
        return (f"{name(ColorSpace, self.colorspace)}, {'full' if self.color_range == ColorRange.JPEG else 'limited'}"
                f" range, primaries {name(ColorPrimaries, self.primaries)}, trc {name(ColorTrc, self.trc)}"
                + (" (untagged: assumed)" if self.assumed else ""))


def resolve_color(colorspace: int, color_range: int, primaries: int, trc: int,
                  height: int, pix_fmt: str) -> ColorTags:
    """Fill missing colour tags with the defaults a player would assume."""
    matrix = _MATRIX_OF_COLORSPACE.get(colorspace) or untagged_matrix(height)
    default_space, default_primaries, default_trc = _DEFAULT_TAGS[matrix]
    if pix_fmt.startswith(FULL_RANGE_FORMATS):
        color_range = ColorRange.JPEG
    elif color_range not in (ColorRange.MPEG, ColorRange.JPEG):
        color_range = ColorRange.MPEG
    return ColorTags(
        colorspace=colorspace if colorspace in _MATRIX_OF_COLORSPACE else int(default_space),
        color_range=int(color_range),
        primaries=int(default_primaries) if primaries in _UNSPECIFIED else primaries,
        trc=int(default_trc) if trc in _UNSPECIFIED else trc,
        assumed=colorspace not in _MATRIX_OF_COLORSPACE,
    )


@dataclass(frozen=True)
class VideoInfo:
    index: int
    codec: str
    width: int
    height: int
    pix_fmt: str
    fps: Fraction | None
    time_base: Fraction
    frames: int  # from the container index; 0 when the container does not say
    duration: float | None  # seconds
    rotation: int  # counter-clockwise degrees from the display matrix
    display_matrix: tuple[int, ...] | None  # FFmpeg's 3x3 matrix: rotation and flips, copied to the output
    sample_aspect_ratio: Fraction | None
    color: ColorTags

    @property
    def mirrored(self) -> bool:
        m = self.display_matrix
        return m is not None and m[0] * m[4] - m[1] * m[3] < 0

    @property
    def expected_frames(self) -> int | None:
        """The container's frame count, else one estimated from duration and rate."""
        if self.frames > 0:
            return self.frames
        if self.duration and self.fps:
            return round(self.duration * self.fps)
        return None


@dataclass(frozen=True)
class StreamInfo:
    index: int
    type: str
    codec: str
    language: str | None
    detail: str


@dataclass(frozen=True)
class MediaInfo:
    path: Path
    format: str
    size: int
    duration: float | None
    bit_rate: int | None
    video: VideoInfo
    streams: list[StreamInfo] = field(default_factory=list)  # every stream but the video one

    @property
    def audio(self) -> list[StreamInfo]:
        return [s for s in self.streams if s.type == "audio"]


def open_input(path: Path) -> av.container.InputContainer:
    """Open for reading, turning FFmpeg's failures into one-line InputErrors."""
    if not path.exists():
        raise InputError(f"no such file: {path}")
    if not path.is_file():
        raise InputError(f"not a file: {path}")
    if path.stat().st_size == 0:
        raise InputError(f"empty file (0 bytes): {path}")
    try:
        return av.open(str(path), metadata_errors="replace")
    except av.error.InvalidDataError as exc:
        raise InputError(f"not a media file, or truncated/corrupt beyond repair: {path}") from exc
    except (av.FFmpegError, OSError) as exc:
        raise InputError(f"cannot open {path}: {exc}") from exc


def _stream_detail(stream: av.stream.Stream) -> str:
    ctx = stream.codec_context
    if stream.type == "audio" and ctx is not None:
        return f"{ctx.sample_rate} Hz, {ctx.layout.name}"
    return ""


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    return float(value * time_base) if value and time_base else None


def probe(path: str | Path) -> MediaInfo:
    """Read the container header and decode the first frame (rotation and colour tags live there)."""
    path = Path(path)
    with open_input(path) as container:
        if not container.streams.video:
            raise InputError(f"no video stream in {path}")
        stream = container.streams.video[0]
        first = _first_frame(container, stream)
        if first is None:
            raise InputError(f"no video frame could be decoded from {path}")
        matrix = first.side_data.get(SideDataType.DISPLAYMATRIX)
        ctx = stream.codec_context
        fps = stream.average_rate or stream.guessed_rate
        container_duration = _seconds(container.duration, Fraction(1, av.time_base))
        duration = _seconds(stream.duration, stream.time_base) or container_duration
        video = VideoInfo(
            index=stream.index, codec=ctx.name, width=ctx.width, height=ctx.height,
            pix_fmt=first.format.name, fps=fps, time_base=stream.time_base, frames=stream.frames,
            duration=duration, rotation=first.rotation, sample_aspect_ratio=ctx.sample_aspect_ratio,
            display_matrix=tuple(np.frombuffer(matrix, np.int32).tolist()) if matrix is not None else None,
            color=resolve_color(first.colorspace, first.color_range, first.color_primaries,
                                first.color_trc, first.height, first.format.name),
        )
        others = [StreamInfo(s.index, s.type, s.codec_context.name if s.codec_context else s.type,
                             s.language, _stream_detail(s))
                  for s in container.streams if s.index != stream.index]
        return MediaInfo(path=path, format=container.format.name, size=path.stat().st_size,
                         duration=container_duration,
                         bit_rate=container.bit_rate or None, video=video, streams=others)


def _first_frame(container: av.container.InputContainer, stream: av.video.VideoStream
                 ) -> av.VideoFrame | None:
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.error.InvalidDataError:
            continue
        if frames:
            return frames[0]
    return None
