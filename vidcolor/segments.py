"""The resumable encode of one video: the segments a work folder does not hold yet, each with a fresh encoder
and smoother, from the frames `resume.SegmentPlan` gives it (warm-up frames coloured, not encoded)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path

from .errors import InputError
from .keyframes import Carried, CarriedStack
from .media import Frame, OutputOptions, VideoInfo, VideoReader, VideoWriter
from .resume import SegmentPlan, WorkFolder

ProgressCallback = Callable[[int, int | None], None]  # (frames written, frames expected)


Stream = Callable[..., tuple[float, float]]  # `Colorizer.stream`: (batches, emit, video, stop, carried) -> busy s


def encode_segments(stream: Stream, lookahead: int, threads: AbstractContextManager, cuda: bool, source: Path,
                    video: VideoInfo, options: OutputOptions, batch_size: int, seg_frames: int, work: WorkFolder,
                    timings: dict[str, float], progress: ProgressCallback | None, stop: threading.Event | None = None,
                    fmt: str | None = None, carried: dict[int, Carried | CarriedStack] | None = None) -> None:
    """Encode the segments that are not finished yet into `work` by `stream` (the compute stages, run inside
    `threads`); only the frames each keeps are encoded."""
    warm_pts = work.segments[-1]["warmup_pts"] if work.segments else []
    reader = VideoReader(source, video, options.pix_fmt, batch_size, background=not cuda,
                         start_pts=warm_pts[0] if warm_pts else None)
    try:
        reader.start()
        plan = SegmentPlan((f for batch in reader for f in batch), seg_frames, lookahead, work.frames_done, warm_pts)
        errors_before = resized_before = 0
        with threads:
            for segment in plan:
                writer = VideoWriter(work.segment_path(len(work.segments)), video, options, name=work.target,
                                     background=not cuda, fmt=fmt)
                try:
                    writer.start()
                    emit = segment_output(writer, segment.start, video, progress)
                    compute, finish = stream(chunks(segment.frames, batch_size), emit, video, stop, carried)
                    timings["compute"] += compute
                    timings["finish"] += finish
                    writer.finish()
                except BaseException:
                    writer.abort()
                    raise
                timings["encode"] += writer.busy_seconds
                work.add_segment({**segment.record(), "decode_errors": reader.decode_errors - errors_before,
                                  "pts_repaired": reader.pts_repaired, "resized": reader.resized - resized_before},
                                 writer.packet_times)
                errors_before, resized_before = reader.decode_errors, reader.resized
        if not work.segments:
            raise InputError(f"no video frame could be decoded from {source}")
        work.mark_complete()
    finally:
        reader.close()
        timings["decode"] += reader.busy_seconds


def segment_output(writer: VideoWriter, done: int, video: VideoInfo, progress: ProgressCallback | None
                   ) -> Callable[[list[Frame]], None]:
    """Where a segment's finished frames go: the kept ones to its encoder; progress counts those
    after the `done` frames of the segments before it."""
    written = 0

    def emit(frames: list[Frame]) -> None:
        nonlocal written
        kept = [f for f in frames if f.keep]
        writer.write(kept)
        written += len(kept)
        if progress is not None:
            progress(done + written, video.expected_frames)

    return emit


def chunks(items: Iterable, size: int) -> Iterable[list]:
    """Lists of `size` items (the last shorter) from an iterator."""
    import itertools

    items = iter(items)
    while chunk := list(itertools.islice(items, size)):
        yield chunk
