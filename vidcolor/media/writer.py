"""The encode stage: a thread that encodes frames into a temp file (video only: `join` adds the audio).

The output appears at its final path only once it is complete (rename on success, delete
on any failure), so a crash or Ctrl-C never leaves a half-written video behind.
Timestamps, rotation, aspect ratio and colour tags are copied from the source.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
from av.video.reformatter import ColorRange

from ..controls import CODEC, CRF, PIX_FMT, PRESET, SUFFIX
from ..errors import OutputError
from ..files import TempTarget
from ..stage import StageThread
from .encoder import WEBM_CODECS, FieldFlags, add_video_stream
from .formats import bits_of, check_codec_pix_fmt, fits, resolve_pix_fmt
from .sequence import IMAGE_PIX_FMTS, image_pix_fmt, is_pattern, output_pattern
from .streams import sws_colorspace
from .probe import VideoInfo
from .reader import Frame, plane_arrays

# Containers kept for outputs (they hold H.264/H.265 and most audio); .webm too with a WebM codec.
# Other inputs (.avi, .ts, .mpg, ...) get a Matroska output, which holds every stream they can.
KEPT_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")
STILL_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")  # media.still reads and writes these
TEMP_MARK = ".vidcolor-tmp"


@dataclass(frozen=True)
class OutputOptions:
    codec: str = CODEC
    crf: int = CRF
    preset: str = PRESET
    pix_fmt: str = PIX_FMT
    overwrite: bool = False


def output_name(source: Path, suffix: str = SUFFIX, codec: str = CODEC) -> str:
    """`film.mp4` -> `film_color.mp4`, `photo.tif` -> `photo_color.tif`. Other containers get Matroska, and the source's extension stays in the
    name (`tape.avi` -> `tape_avi_color.mkv`), so `tape.avi` and `tape.ts` never share an output."""
    if is_pattern(source):
        return output_pattern(source, suffix).name
    ext = source.suffix.lower()
    if ext in KEPT_SUFFIXES or ext in STILL_SUFFIXES or (ext == ".webm" and codec in WEBM_CODECS):
        return f"{source.stem}{suffix}{ext}"
    kept = f"_{source.suffix[1:]}" if source.suffix else ""
    return f"{source.stem}{kept}{suffix}.mkv"


def temp_target(target: Path) -> TempTarget:
    """A video's temp file: hidden, beside the target, with the target's suffix for the muxer."""
    return TempTarget(target, target.with_name(f".{target.stem}{TEMP_MARK}{target.suffix}"))


def check_paths(source: Path, target: Path, overwrite: bool) -> None:
    """Refuse to write over the input (also through links) or, without `overwrite`, any existing file."""
    if target.resolve() == source.resolve() or (target.exists() and source.exists() and target.samefile(source)):
        raise OutputError(f"output is the input file: {target}")
    if target.exists() and not overwrite:
        raise OutputError(f"output exists (use --overwrite): {target}")
    if not target.parent.is_dir():
        raise OutputError(f"output folder does not exist: {target.parent}")


def check_options(options: OutputOptions) -> None:
    """Validate the encoder and pixel format before any work starts."""
    try:
        codec = av.Codec(options.codec, "w")
    except (av.codec.codec.UnknownCodecError, ValueError) as exc:
        raise OutputError(f"unknown encoder: {options.codec}") from exc
    if codec.type != "video":
        raise OutputError(f"not a video encoder: {options.codec}")
    check_codec_pix_fmt(options.codec, options.pix_fmt)


def check_frame_size(video: VideoInfo, options: OutputOptions) -> None:
    """Subsampled chroma needs even sides; say so before any work instead of failing in the encoder."""
    if not fits(options.pix_fmt, video.width, video.height):
        full = "yuv444p" if bits_of(options.pix_fmt) == 8 else f"yuv444p{bits_of(options.pix_fmt)}le"
        raise OutputError(f"{video.width}x{video.height} video cannot be encoded as {options.pix_fmt} "
                          f"(its chroma needs even sides): use --pix-fmt {full}")


class VideoWriter:
    """Encodes in a background thread; `write()` batches, then `finish()` or `abort()`."""

    def __init__(self, target: Path, video: VideoInfo, options: OutputOptions, queue_batches: int = 2,
                 name: Path | None = None, background: bool = False, fmt: str | None = None):
        """`name`: the path errors mention (the final output, when `target` is a segment of it).
        `background`: encode at a lower CPU priority than a CPU model (`stage.yield_to_model`).
        `fmt`: the muxer of the final output, whose rules the encoder follows (AVI: no B-frames)."""
        self.target = target
        self.name = name or target
        self._file = temp_target(target)
        self.frames_written = 0
        try:
            self.container = av.open(str(self._file.temp), "w")
        except (av.FFmpegError, ValueError, OSError) as exc:
            raise OutputError(f"cannot write {self.name}: {exc}") from exc
        # The planes' format; an image encoder (a sequence's segments) gets them as RGB of the same depth.
        self.planes_fmt = resolve_pix_fmt(options.pix_fmt, options.codec, video.pix_fmt, video.width, video.height)
        pix_fmt = self.planes_fmt
        if options.codec in IMAGE_PIX_FMTS:
            pix_fmt = image_pix_fmt(options.codec, bits_of(self.planes_fmt))
        self.spec = video.color.yuv_spec
        try:
            self.stream = add_video_stream(self.container, video, options.codec, options.crf, options.preset,
                                           pix_fmt, fmt)
        except BaseException:
            self._discard()
            raise
        self._fields = FieldFlags(video.field_order, self.stream.width, self.stream.height, self.stream.pix_fmt,
                                  self.stream.codec_context.time_base)
        self._durations: dict[int, int] = {}  # pts -> duration of frames inside the encoder
        self.video_time_base = video.time_base  # packet_times' unit, whatever the encoder's (MPEG-2: 1/fps)
        self._ticks = video.time_base / self.stream.codec_context.time_base  # encoder ticks per source tick
        self.packet_times: list[tuple[int, int | None, int]] = []  # (pts, dts, duration) of each video packet
        # With `background`, the encode thread yields the CPU to the model's before the encoder
        # opens on its first frame, so x264's own threads inherit that.
        self._stage = StageThread(self._encode, name="vidcolor-encode", queue_items=queue_batches,
                                  background=background)

    @property
    def temp(self) -> Path:
        """Where the video is encoded until `finish()` renames it to `target`."""
        return self._file.temp

    @property
    def busy_seconds(self) -> float:
        return self._stage.busy_seconds

    def start(self) -> None:
        self._stage.start()

    def write(self, frames: list[Frame]) -> None:
        """Queue frames to encode; raises if the encode thread failed."""
        with self._errors():
            self._stage.put(frames)

    def finish(self) -> None:
        """Drain the encoder, close the file and move it into place."""
        with self._errors():
            self._stage.put(None)
            self._stage.finish()
        try:
            self.container.close()
            self._file.commit()
        except (av.FFmpegError, OSError) as exc:
            self._discard()
            raise OutputError(f"cannot write {self.name}: {exc}") from exc

    def abort(self) -> None:
        """Stop the thread and delete the temp file; the target is left as it was."""
        self._stage.abort()
        self._discard()

    def _discard(self) -> None:
        with contextlib.suppress(av.FFmpegError, OSError):
            self.container.close()
        self._file.discard()

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """The encode thread's failures as one line for the user."""
        try:
            yield
        except av.FFmpegError as exc:
            raise OutputError(f"encoding {self.name} failed: {exc}") from exc
        except OSError as exc:
            reason = exc.strerror or exc  # e.g. ENOSPC: No space left on device
            raise OutputError(f"cannot write {self.name}: {reason}") from exc

    def _encode(self, frames: list[Frame] | None) -> None:
        """In the encode thread: one batch, or None to drain the encoder."""
        if frames is None:
            self._mux_encoded(self.stream.encode(None))
            return
        for frame in frames:
            self._durations[self._encoder_ticks(frame.pts)] = self._encoder_ticks(frame.duration)
            self._mux_encoded(self.stream.encode(self._video_frame(frame)))
            self.frames_written += 1

    def _mux_encoded(self, packets: list[av.Packet]) -> None:
        """libx264 leaves packet durations at 0; restore the source's, or the last frame's is guessed."""
        for packet in packets:
            packet.duration = self._durations.pop(packet.pts, packet.duration)
            self.packet_times.append(tuple(self._source_ticks(t) for t in (packet.pts, packet.dts, packet.duration)))
            self.container.mux(packet)

    def _source_ticks(self, value: int | None) -> int | None:
        return value if value is None or self._ticks == 1 else round(value / self._ticks)

    def _encoder_ticks(self, value: int) -> int:
        return value if self._ticks == 1 else round(value * self._ticks)

    def _video_frame(self, frame: Frame) -> av.VideoFrame:
        out = av.VideoFrame(self.stream.width, self.stream.height, self.planes_fmt)
        for view, plane in zip(plane_arrays(out), frame.planes):
            view[...] = plane
        if self.stream.pix_fmt != self.planes_fmt:  # to an image encoder's RGB, with the planes' matrix and range
            colorspace = sws_colorspace(self.spec)
            out = out.reformat(format=self.stream.pix_fmt, src_colorspace=colorspace, dst_colorspace=colorspace,
                               src_color_range=ColorRange.JPEG if self.spec.full_range else ColorRange.MPEG,
                               dst_color_range=ColorRange.JPEG)
        out.pts, out.duration = self._encoder_ticks(frame.pts), self._encoder_ticks(frame.duration)
        out.time_base = self.stream.codec_context.time_base
        return self._fields(out)
