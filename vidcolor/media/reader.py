"""The decode stage: a thread that decodes the video stream into a bounded queue of frame batches.

Each batch is a list of frames (planes and timestamps). The queue is bounded, so memory does not
grow with the video's length. Audio and subtitles are not read here: the join copies them
(`vidcolor.join`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import ColorRange, VideoReformatter

from ..controls import CODEC
from ..errors import InputError
from ..stage import SourceThread
from ..colorspec import YuvSpec
from .formats import bits_of, resolve_pix_fmt
from .probe import VideoInfo, open_input
from .sequence import is_pattern
from .sidedata import side_data_kinds
from .streams import sws_colorspace


@dataclass(frozen=True)
class Frame:
    """One video frame between the stages: decoded, then coloured, then encoded (one type for all three)."""

    pts: int
    duration: int
    planes: tuple[np.ndarray, ...]  # Y, Cb, Cr (H,W), (h,w), (h,w): uint8 at 8 bits, uint16 above
    keep: bool = True  # False: computed only for the smoother's state (a segment's warm-up or look-ahead), not encoded
    bits: int = 8  # bits per sample of the planes (the working pixel format's)


class KeyframeFinder:
    """Where a seek to a timestamp would land: the keyframe at or before it, found by the demuxer alone (no
    decoding), in a container of its own, so that a reader can tell whether decoding on beats seeking."""

    def __init__(self, path: Path, video: VideoInfo):
        self.container = open_input(path, video.fps)
        self.stream = self.container.streams[video.index]

    def before(self, pts: int) -> int | None:
        """The timestamp of the keyframe a seek to `pts` lands on (its dts where it has no pts: about where it
        stands); None where the file cannot say (not seekable, no keyframe first, no timestamps)."""
        try:
            self.container.seek(pts, backward=True, stream=self.stream)
            packet = next(self.container.demux(self.stream), None)
        except av.FFmpegError:
            return None
        if packet is None or not packet.is_keyframe:
            return None
        return packet.pts if packet.pts is not None else packet.dts

    def close(self) -> None:
        self.container.close()


def plane_arrays(frame: av.VideoFrame) -> tuple[np.ndarray, ...]:
    """Zero-copy views of a planar frame's planes, without the line padding: uint8 at 8 bits, uint16
    (native little-endian `..le` formats) above."""
    dtype = np.dtype(np.uint8) if frame.format.components[0].bits <= 8 else np.dtype("<u2")
    return tuple(np.frombuffer(p, dtype).reshape(p.height, p.line_size // dtype.itemsize)[:, :p.width]
                 for p in frame.planes)


class VideoReader:
    """Decodes `video` in a background thread; iterate to get lists of `batch_size` frames (the last may be shorter).

    Packets the decoder rejects are skipped and counted (`decode_errors`); truncated data
    just ends the stream early, so callers compare `frames_decoded` with the container's count.
    """

    def __init__(self, path: Path, video: VideoInfo, pix_fmt: str, batch_size: int, queue_batches: int = 2,
                 start_pts: int | None = None, background: bool = False):
        """`start_pts`: seek to the keyframe at or before it and drop the frames before it (resuming a
        segmented run). `background`: decode at a lower CPU priority than a CPU model (`stage.yield_to_model`)."""
        self.background = background
        self.video = video
        self.pix_fmt = resolve_pix_fmt(pix_fmt, CODEC, video.pix_fmt, video.width, video.height)
        self.bits = bits_of(self.pix_fmt)
        self.batch_size = batch_size
        self.container = open_input(path, video.fps)
        self.sequence = is_pattern(path)  # frames of an image sequence must all have one size
        self.stream = self.container.streams[video.index]
        self.stream.thread_type = "AUTO"
        self.start_pts = start_pts
        self.pts_repaired = 0  # frames whose missing or repeated timestamp was replaced
        self.resized = 0  # frames of another size than the first (a resolution change), scaled to it
        if start_pts is not None:
            try:
                self.container.seek(start_pts, backward=True, stream=self.stream)
            except av.FFmpegError:
                pass  # not seekable: decode from the start, the frames before start_pts are dropped below
        self.frames_decoded = 0
        self.decode_errors = 0
        self.side_data: set[str] = set()  # kinds of per-frame side data seen (`sidedata`)
        self.busy_seconds = 0.0
        self._reformatter = VideoReformatter()
        self._step = max(1, round(1 / (video.fps * video.time_base))) if video.fps else 1
        self._last_pts: int | None = None
        self._source: SourceThread[list[Frame]] = SourceThread(self._batches, "vidcolor-decode", queue_batches,
                                                               background=background)

    def start(self) -> None:
        self._source.start()

    def skip_to(self, pts: int) -> None:
        """Drop the frames before `pts` from here on, without converting them (a preview decoding on to its next
        frame); frames already queued still come."""
        self.start_pts = pts

    def __iter__(self) -> Iterator[list[Frame]]:
        return iter(self._source)

    def close(self) -> None:
        """Stop the thread (also mid-stream) and release the file."""
        self._source.close()
        self.container.close()

    def _batches(self) -> Iterator[list[Frame]]:
        """The decode thread's work; `busy_seconds` leaves out the time spent waiting for the consumer."""
        batch: list[Frame] = []
        start = time.perf_counter()
        for packet in self.container.demux(self.stream):
            for frame in self._decode_packet(packet):
                if self.start_pts is not None and frame.pts is not None and frame.pts < self.start_pts:
                    continue  # before the resume point (the seek lands on the keyframe before it)
                batch.append(self._source_frame(frame))
                if len(batch) == self.batch_size:
                    self.busy_seconds += time.perf_counter() - start
                    yield batch
                    batch, start = [], time.perf_counter()
        self.busy_seconds += time.perf_counter() - start
        if batch:
            yield batch

    def _decode_packet(self, packet: av.Packet) -> list[av.VideoFrame]:
        try:
            return self.stream.decode(packet)
        except av.error.InvalidDataError:
            self.decode_errors += 1
            return []

    def _source_frame(self, frame: av.VideoFrame) -> Frame:
        self.frames_decoded += 1
        self.side_data |= side_data_kinds(frame)
        pts = frame.pts
        if pts is None or (self._last_pts is not None and pts <= self._last_pts):
            pts = 0 if self._last_pts is None else self._last_pts + self._step  # missing or repeated stamp
            self.pts_repaired += 1
        self._last_pts = pts
        size = (self.video.width, self.video.height)
        if (frame.width, frame.height) != size:
            if self.sequence:
                raise InputError(f"frame {self.frames_decoded - 1} of the sequence is {frame.width}x{frame.height}, "
                                 f"the first {size[0]}x{size[1]}: a sequence's frames must all have one size")
            self.resized += 1
        return Frame(pts, frame.duration or self._step,
                     plane_arrays(to_planar(frame, self.pix_fmt, self.video.color.yuv_spec, self._reformatter, size)),
                     bits=self.bits)


def to_planar(frame: av.VideoFrame, pix_fmt: str, spec: YuvSpec, reformatter: VideoReformatter,
              size: tuple[int, int] | None = None) -> av.VideoFrame:
    """Bring any frame to planar `pix_fmt` (and to `size`, after a resolution change) while keeping
    the source's Y code values (at `pix_fmt`'s depth).

    YUV and gray frames change only bit depth and chroma subsampling; RGB frames are converted
    with the output's matrix and range.
    """
    width, height = size or (frame.width, frame.height)
    if frame.format.name.replace("yuvj", "yuv") == pix_fmt and (frame.width, frame.height) == (width, height):
        return frame
    video_range = ColorRange.JPEG if spec.full_range else ColorRange.MPEG
    # YUV and gray: the source's own range on both sides, so swscale never rescales Y and a change of
    # depth is the standard one (limited range 8 -> 10 bits is x4: 235 -> 940, not 943).
    source_range = ColorRange.JPEG if frame.format.is_rgb else video_range
    colorspace = sws_colorspace(spec)
    return reformatter.reformat(frame, width=width, height=height, format=pix_fmt, src_colorspace=colorspace,
                                dst_colorspace=colorspace, src_color_range=source_range,
                                dst_color_range=video_range)
