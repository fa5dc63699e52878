"""The resumable encode of one video: the segments a work folder does not hold yet, each with a fresh encoder
and smoother, from the frames `resume.SegmentPlan` gives it (warm-up frames coloured, not encoded)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path

from .errors import InputError
from .keyframes import Carried, CarriedStack
from .media import Frame, OutputOptions, VideoInfo, VideoReader, VideoWriter
from .resume import SegmentPlan, WorkFolder, segment_context

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
        warmup = segment_context(lookahead)[0]
        errors_before = resized_before = 0
        with threads:
            for segment in plan:
                writer = VideoWriter(work.segment_path(len(work.segments)), video, options, name=work.target,
                                     background=not cuda, fmt=fmt)
                emit = SegmentOutput(writer, segment.start, video, progress, warmup)
                try:
                    writer.start()
                    compute, finish = stream(chunks(segment.frames, batch_size), emit, video, stop, carried)
                    timings["compute"] += compute
                    timings["finish"] += finish
                    writer.finish()
                    record = segment.record()
                except KeyboardInterrupt:  # `stop` (the CLI's Ctrl-C): the frames encoded so far become a
                    if not emit.written or stop is None or not stop.is_set():  # finished, shorter segment
                        writer.abort()
                        raise
                    writer.finish()
                    work.add_segment(emit.record(segment.first_pts), writer.packet_times)
                    raise
                except BaseException:
                    writer.abort()
                    raise
                timings["encode"] += writer.busy_seconds
                work.add_segment({**record, "decode_errors": reader.decode_errors - errors_before,
                                  "pts_repaired": reader.pts_repaired, "resized": reader.resized - resized_before,
                                  "side_data": sorted(reader.side_data)},
                                 writer.packet_times)
                errors_before, resized_before = reader.decode_errors, reader.resized
        if not work.segments:
            raise InputError(f"no video frame could be decoded from {source}")
        work.mark_complete()
    finally:
        reader.close()
        timings["decode"] += reader.busy_seconds


class SegmentOutput:
    """Where a segment's finished frames go: the kept ones to its encoder; progress counts those after the
    `done` frames of the segments before it. Remembers how many it wrote and the last `warmup` pts, so an
    interrupted segment can be recorded as finished where it stopped (`record`)."""

    def __init__(self, writer: VideoWriter, done: int, video: VideoInfo, progress: ProgressCallback | None,
                 warmup: int):
        self.writer, self.done, self.video, self.progress = writer, done, video, progress
        self.written = 0
        self.recent: deque[int] = deque(maxlen=warmup)

    def __call__(self, frames: list[Frame]) -> None:
        kept = [f for f in frames if f.keep]
        self.writer.write(kept)
        self.written += len(kept)
        self.recent.extend(f.pts for f in kept)
        if self.progress is not None:
            self.progress(self.done + self.written, self.video.expected_frames)

    def record(self, first_pts: int) -> dict:
        """The manifest entry of the frames written so far, as `resume.Segment.record` gives a whole one."""
        return {"start": self.done, "frames": self.written, "first_pts": first_pts, "warmup_pts": list(self.recent),
                "interrupted": True}


def chunks(items: Iterable, size: int) -> Iterable[list]:
    """Lists of `size` items (the last shorter) from an iterator."""
    import itertools

    items = iter(items)
    while chunk := list(itertools.islice(items, size)):
        yield chunk
