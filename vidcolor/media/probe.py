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

from ..colorspec import YuvSpec, untagged_matrix
from ..controls import FPS_RANGE, SEQUENCE_FPS
from ..errors import InputError
from .sequence import find as find_sequence, is_pattern
from .sidedata import side_data_kinds

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
    field_order: int = 0  # FFmpeg's AVFieldOrder: 0 unknown, 1 progressive, 2-5 interlaced (kept in the output)
    duration_estimated: bool = False  # `duration` is the container's (all streams), not the video stream's own
    hidden_frames: int = 0  # stored frames an MP4/MOV edit list hides (a trim): not part of the film as presented
    field_order_source: str = ""  # where `field_order` came from (`field_order_of`)
    side_data: tuple[str, ...] = ()  # the first frame's kinds of per-frame side data (`sidedata`): captions, ...

    @property
    def mirrored(self) -> bool:
        m = self.display_matrix
        return m is not None and m[0] * m[4] - m[1] * m[3] < 0

    @property
    def expected_frames(self) -> int | None:
        """The container's frame count, else one estimated from the video stream's duration and rate."""
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
    tags: dict[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class MediaInfo:
    path: Path
    format: str
    size: int
    duration: float | None
    bit_rate: int | None
    video: VideoInfo
    streams: list[StreamInfo] = field(default_factory=list)  # every stream but the video one
    tags: dict[str, str] = field(default_factory=dict)  # the container's
    chapters: int = 0
    video_tags: dict[str, str] = field(default_factory=dict)
    truncated: str | None = None  # why the file is known to be cut short (frames after the cut are unknown)

    @property
    def audio(self) -> list[StreamInfo]:
        return [s for s in self.streams if s.type == "audio"]


def open_input(path: Path, rate: Fraction | float | None = None) -> av.container.InputContainer:
    """Open for reading, turning FFmpeg's failures into one-line InputErrors. A printf pattern
    (`reel1_%06d.dpx`) is an image sequence (`media.sequence`), read at `rate` frames a second."""
    if is_pattern(path):
        seq = find_sequence(path)
        try:
            return av.open(str(path), format="image2", metadata_errors="replace",
                           options={"framerate": str(Fraction(rate or SEQUENCE_FPS).limit_denominator(1001)),
                                    "start_number": str(seq.first)})
        except (av.FFmpegError, OSError) as exc:
            raise InputError(f"cannot read the image sequence {path}: {exc}") from exc
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
    if stream.type == "video" and ctx is not None:
        return f"{ctx.width}x{ctx.height}"
    if stream.type == "attachment":
        return stream.metadata.get("mimetype", "")
    return ""


def _stream_codec(stream: av.stream.Stream) -> str:
    if stream.codec_context is not None:
        return stream.codec_context.name
    if stream.metadata.get("handler_name") == "TimeCodeHandler" or "timecode" in stream.metadata:
        return "tmcd"
    if stream.metadata.get("handler_name") == "SubtitleHandler" and stream.type == "data":
        return "text (QuickTime chapters)"
    return stream.type


TS_PACKET_SIZES = (188, 192, 204)


def truncation(path: Path, format_name: str) -> str | None:
    """Why a file is known to be cut short: a transport stream whose size is no whole number of packets
    (a copy cut off, or a recording still being written)."""
    if format_name == "mpegts" and all(path.stat().st_size % n for n in TS_PACKET_SIZES):
        return "the transport stream ends inside a packet: the file is truncated or still being written"
    return None


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    return float(value * time_base) if value and time_base else None


def plausible_rate(stream: av.video.VideoStream) -> Fraction | None:
    """The stream's frame rate: its average rate unless implausible (raw DV reads as 60000 fps), else the
    first plausible of the guessed, base and codec rates."""
    lo, hi = FPS_RANGE
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate, stream.codec_context.framerate):
        if rate and lo <= rate <= hi:
            return Fraction(rate)
    return None


def _tag_seconds(text: str | None) -> float | None:
    """Matroska's per-track DURATION tag (`HH:MM:SS.nnnnnnnnn`) in seconds."""
    try:
        hours, minutes, seconds = (text or "").split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return None


def video_duration(container: av.container.InputContainer, stream: av.video.VideoStream) -> tuple[float | None, bool]:
    """The video stream's own duration in seconds, and whether it is only estimated from the container's.

    Not the container's when the stream has one: audio longer than the video, or video that starts late,
    would otherwise count as frames lost. Matroska keeps it as a DURATION tag (the track's end time).
    """
    start = _seconds(stream.start_time, stream.time_base) or 0.0
    if own := _seconds(stream.duration, stream.time_base):
        return own, False
    end = _tag_seconds(stream.metadata.get("DURATION") or stream.metadata.get("duration"))
    if end is not None and end > start:
        return end - start, False
    total = _seconds(container.duration, Fraction(1, av.time_base))
    offset = start - (_seconds(container.start_time, Fraction(1, av.time_base)) or 0.0)
    return (total - offset if total and total > offset else total), True


FIELD_ORDER_NAMES = {1: "progressive", 2: "top field first", 3: "bottom field first",
                     4: "top field first (coded bottom first)", 5: "bottom field first (coded top first)"}


def field_order_of(codec: str, tagged: int, interlaced: bool) -> tuple[int, str]:
    """(FFmpeg's AVFieldOrder, where it came from): the stream's tag; else what the codec defines (DV, in AVI
    where no field order is stored, is bottom field first by its standard, PAL and NTSC alike); else, for frames
    flagged interlaced, top field first assumed; else unknown (0)."""
    if tagged:
        return tagged, "the stream's tag"
    if codec == "dvvideo" and interlaced:
        return 3, "the codec's definition: DV is bottom field first"
    if interlaced:
        return 2, "assumed: the frames are interlaced, untagged"
    return 0, ""


def edit_list_hidden(path: Path, container: av.container.InputContainer, stream: av.video.VideoStream,
                     frames: int, duration: float | None, estimated: bool, fps: Fraction | None) -> int:
    """Frames an MP4/MOV edit list hides. A lossless cut or a QuickTime trim keeps the frames before the
    in-point as samples that players, FFmpeg and `run` never show: not lost when they do not come out. Only
    where the track's own (edited) duration presents fewer frames than it stores are the packets counted that
    the demuxer marks to discard (one pass over the packets, no decoding)."""
    name = container.format.name
    if ("mp4" not in name and "mov" not in name) or not frames or not duration or estimated or not fps:
        return 0
    if frames - round(duration * fps) < 1:
        return 0
    with open_input(path) as again:
        return sum(1 for packet in again.demux(again.streams[stream.index]) if packet.size and packet.is_discard)


def probe(path: str | Path, rate: float | None = None) -> MediaInfo:
    """Read the container header and decode the first frame (rotation and colour tags live there).
    `rate`: the frame rate of an image sequence (default `controls.SEQUENCE_FPS`)."""
    path = Path(path)
    seq = find_sequence(path) if is_pattern(path) else None
    with open_input(path, rate) as container:
        if not container.streams.video:
            raise InputError(f"no video stream in {path}")
        stream = container.streams.video[0]
        first = _first_frame(container, stream)
        if first is None:
            raise InputError(f"no video frame could be decoded from {path}")
        matrix = _display_matrix(first)
        ctx = stream.codec_context
        fps = plausible_rate(stream)
        container_duration = _seconds(container.duration, Fraction(1, av.time_base))
        duration, estimated = video_duration(container, stream)
        frames = seq.count if seq else stream.frames
        hidden = 0 if seq else edit_list_hidden(path, container, stream, frames, duration, estimated, fps)
        order, order_source = field_order_of(ctx.name, ctx.field_order, first.interlaced_frame)
        video = VideoInfo(
            index=stream.index, codec=ctx.name, width=ctx.width, height=ctx.height,
            pix_fmt=first.format.name, fps=fps, time_base=stream.time_base,
            frames=frames - hidden, hidden_frames=hidden,
            duration=duration, rotation=first.rotation, sample_aspect_ratio=ctx.sample_aspect_ratio,
            display_matrix=tuple(np.frombuffer(matrix, np.int32).tolist()) if matrix is not None else None,
            color=resolve_color(first.colorspace, first.color_range, first.color_primaries,
                                first.color_trc, first.height, first.format.name),
            field_order=order, field_order_source=order_source, side_data=tuple(sorted(side_data_kinds(first))),
            duration_estimated=estimated,
        )
        others = [StreamInfo(s.index, s.type, _stream_codec(s), s.language, _stream_detail(s), dict(s.metadata))
                  for s in container.streams if s.index != stream.index]
        return MediaInfo(path=path, format=container.format.name,
                         size=seq.identity()["size"] if seq else path.stat().st_size,
                         duration=container_duration, bit_rate=container.bit_rate or None, video=video,
                         streams=others, tags=dict(container.metadata), chapters=len(container.chapters()),
                         truncated=None if seq else truncation(path, container.format.name),
                         video_tags=dict(stream.metadata))


def _display_matrix(frame: av.VideoFrame) -> bytes | None:
    """The frame's display matrix; None also when PyAV cannot list its side data (a TIFF's ICC profile
    is a side-data type PyAV 18 has no name for: 'ValueError: 31 is not a valid Type')."""
    try:
        matrix = frame.side_data.get(SideDataType.DISPLAYMATRIX)
    except ValueError:
        return None
    return None if matrix is None else bytes(matrix)


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
