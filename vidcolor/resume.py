"""Crash-safe, resumable runs: a video is encoded in segments under a work folder beside the output.

Layout, for the output `film_color.mp4`:

    .film_color.mp4.vidcolor-work/
        manifest.json        identity of the job + the finished segments (rewritten atomically)
        lock                 flock'ed while a process works here
        segment_00000.nut    video-only packets of frames [start, end), from a fresh encoder
        ...

Each segment is encoded by its own encoder instance, so it starts with an IDR frame and
does not depend on any other segment. A segment's file appears (rename) only once complete,
and then the manifest records it. The manifest carries the source's identity (resolved path,
size, mtime), the run options and the model's SHA-256: a work folder whose identity differs
is stale or foreign and is deleted, never reused.

Segments are written as NUT, which keeps every timestamp exactly in the source's time base
(MP4 shifts them through its edit list, Matroska rounds them to milliseconds). NUT shifts a
stream with B-frames so its first dts is 0, leaves the first packets without a dts and keeps
no per-packet durations, so the encoder's own (pts, dts, duration) of every packet go into a
sidecar `segment_NNNNN.nut.json`, written before the segment is recorded in the manifest,
and are put back when joining.

`SegmentPlan` decides which frames each segment computes (warm-up, own, look-ahead), and
`job_identity` lists what a work folder must match to be reused. `join.join_segments` puts the
finished segments together into the output.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import OutputError
from .files import write_atomic
from .media import Frame, VideoInfo, find as find_sequence, is_pattern

WORK_MARK = ".vidcolor-work"
MANIFEST = "manifest.json"
FORMAT = "vidcolor-work-v1"
SEGMENT_SUFFIX = ".nut"  # NUT holds most encoders' packets; MOV the others (ProRes, TIFF, DNxHD)
SEGMENT_FALLBACK = ".mov"
WARMUP_FRAMES = 10  # frames decoded and smoothed before a segment's first frame, output discarded
# (at least the cut detector's min_interval + 2, so its state at the segment's first frame is the
# one an uninterrupted stream would have unless two cut-like jumps fall within min_interval)

_hash_cache: dict[tuple[str, int, int], str] = {}


def work_dir(target: Path) -> Path:
    """`out/film_color.mp4` -> `out/.film_color.mp4.vidcolor-work` (hidden, same filesystem)."""
    return target.with_name(f".{target.name}{WORK_MARK}")


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, cached per (path, size, mtime) for batches that reuse one model."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _hash_cache:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        _hash_cache[key] = digest.hexdigest()
    return _hash_cache[key]


def source_identity(source: Path) -> dict[str, Any]:
    if is_pattern(source):
        return find_sequence(source).identity()
    stat = source.stat()
    return {"path": str(source.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def segment_suffix(codec: str) -> str:
    """The container of a segment encoded with `codec`: NUT where it holds it, else MOV."""
    import io

    import av
    out = av.open(io.BytesIO(), "w", format="nut")
    try:
        out.add_stream(codec)
        return SEGMENT_SUFFIX
    except ValueError:
        return SEGMENT_FALLBACK
    finally:
        out.close()


def segment_frames(video: VideoInfo, seconds: float) -> int:
    """Frames per segment: `seconds` of video at the nominal rate (at least 1)."""
    fps = float(video.fps) if video.fps else 25.0
    return max(1, round(seconds * fps))


class WorkFolder:
    """The work folder of one output: lock, manifest, finished segments.

    Use as a context manager: entering takes the lock (another process on the same output
    gets an OutputError) and reuses the folder only if its manifest has the same identity.
    """

    def __init__(self, target: Path, identity: dict[str, Any], segment_suffix: str = SEGMENT_SUFFIX):
        self.target = target
        self.segment_suffix = segment_suffix
        self.path = work_dir(target)
        self.identity = {"format": FORMAT, **identity}
        self.segments: list[dict[str, Any]] = []
        self.complete = False
        self.resumed = False
        self._lock_file = None

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> WorkFolder:
        try:
            self.path.mkdir(exist_ok=True)
            self._lock_file = open(self.path / "lock", "a+b")  # noqa: SIM115 (held until __exit__)
        except OSError as exc:
            raise OutputError(f"cannot write {self.target}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self._lock_file.close()
            self._lock_file = None
            raise OutputError(f"another vidcolor process is writing {self.target} (lock: {self.path})") from exc
        self._load()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def _load(self) -> None:
        manifest = self._read_manifest()
        if manifest is not None and manifest.get("identity") == self.identity:
            segments = manifest.get("segments", [])
            # Keep the leading run of segments whose files are really there.
            for i, segment in enumerate(segments):
                if (segment.get("index") != i or not (self.path / segment["file"]).is_file()
                        or not (self.path / (segment["file"] + ".json")).is_file()):
                    break
                self.segments.append(segment)
            self.complete = bool(manifest.get("complete")) and len(self.segments) == len(segments)
            self.resumed = bool(self.segments)
        keep = {MANIFEST, "lock", *(s["file"] for s in self.segments), *(s["file"] + ".json" for s in self.segments)}
        for item in self.path.iterdir():  # temp files of a killed run, stale segments
            if item.name not in keep:
                shutil.rmtree(item) if item.is_dir() and not item.is_symlink() else item.unlink(missing_ok=True)
        self._write_manifest()

    def _read_manifest(self) -> dict[str, Any] | None:
        try:
            data = json.loads((self.path / MANIFEST).read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _write_manifest(self) -> None:
        data = {"identity": self.identity, "complete": self.complete, "segments": self.segments}
        try:
            write_atomic(self.path / MANIFEST, json.dumps(data, indent=1), durable=True)
        except OSError as exc:
            raise OutputError(f"cannot write {self.target}: {exc.strerror or exc} ({self.path})") from exc

    # -- segments ----------------------------------------------------------------------

    def segment_path(self, index: int) -> Path:
        return self.path / f"segment_{index:05d}{self.segment_suffix}"

    def add_segment(self, record: dict[str, Any], packet_times: Sequence[tuple[int, int | None, int]]) -> None:
        """Record a segment whose file is already in place (renamed there by its writer)."""
        path = self.segment_path(len(self.segments))
        try:
            write_atomic(path.with_name(path.name + ".json"), json.dumps([list(t) for t in packet_times]))
        except OSError as exc:
            raise OutputError(f"cannot write {self.target}: {exc.strerror or exc} ({self.path})") from exc
        record = {"index": len(self.segments), "file": path.name, **record}
        self.segments.append(record)
        self._write_manifest()

    def reset(self) -> None:
        """Forget the finished segments (they cannot be resumed from) and delete their files."""
        for segment in self.segments:
            for name in (segment["file"], segment["file"] + ".json"):
                (self.path / name).unlink(missing_ok=True)
        self.segments, self.complete, self.resumed = [], False, False
        self._write_manifest()

    def mark_complete(self) -> None:
        self.complete = True
        self._write_manifest()

    @property
    def frames_done(self) -> int:
        return sum(s["frames"] for s in self.segments)

    def remove(self) -> None:
        self.__exit__()
        shutil.rmtree(self.path, ignore_errors=True)


# -- the plan: which frames each segment computes --------------------------------------------

def segment_context(lookahead: int) -> tuple[int, int]:
    """(warm-up, look-ahead): frames computed before and after each segment, output discarded,
    covering the smoother's reach both ways (`lookahead` is its look-ahead) so boundaries do not show."""
    return max(WARMUP_FRAMES, lookahead), lookahead


@dataclass
class Segment:
    """One planned segment. `frames` yields, in order, its warm-up frames (the ones before it), its own
    frames (encoded) and its look-ahead frames (the ones after it); warm-up and look-ahead frames come
    with keep=False. `own` and `next_warmup_pts` are final once `frames` is exhausted."""

    start: int  # frames of the video before its first own frame
    first_pts: int
    warmup: list[Frame]
    frames: Iterator[Frame] = field(default_factory=lambda: iter(()))
    own: int = 0
    lookahead: int = 0
    next_warmup_pts: list[int] = field(default_factory=list)  # the next segment's warm-up: where a resume seeks

    def record(self) -> dict[str, Any]:
        """The manifest's entry (see `WorkFolder.add_segment`): `warmup_pts` are the next segment's."""
        return {"start": self.start, "frames": self.own, "first_pts": self.first_pts,
                "warmup_pts": self.next_warmup_pts}


class SegmentPlan:
    """Splits a stream of decoded frames into the segments still to encode, as the frames arrive.

    Each segment computes its warm-up (the `warmup` frames before it), its own frames (at most
    `seg_frames`) and its look-ahead (up to `lookahead` frames after it), so its pixels do not
    depend on whether the run was resumed, and a look-ahead smoother's last frames of a segment see
    the same future as in one uninterrupted stream. `resume_warmup_pts` (the last finished segment's
    `warmup_pts`): the stream starts there, and the frames up to its last are the first warm-up.
    Iterate to get `Segment`s; exhaust each one's `frames` before asking for the next.
    """

    def __init__(self, frames: Iterator[Frame], seg_frames: int, lookahead: int, start: int = 0,
                 resume_warmup_pts: Sequence[int] = ()):
        warmup, self.lookahead = segment_context(lookahead)
        self.seg_frames, self.start = seg_frames, start
        self._frames = frames
        self._ahead: deque[Frame] = deque()  # read past a segment's end: the next one's first frames
        self._warm: deque[Frame] = deque(maxlen=warmup)
        if resume_warmup_pts:
            while (frame := self._next()) is not None:
                if frame.pts > resume_warmup_pts[-1]:
                    self._ahead.append(frame)
                    break
                self._warm.append(frame)

    def _next(self) -> Frame | None:
        return self._ahead.popleft() if self._ahead else next(self._frames, None)

    def __iter__(self) -> Iterator[Segment]:
        while (first := self._next()) is not None:
            segment = Segment(self.start, first.pts, [replace(f, keep=False) for f in self._warm])
            segment.frames = self._segment_frames(segment, first)
            yield segment
            for _ in segment.frames:  # what the caller left unread
                pass
            self.start += segment.own

    def _segment_frames(self, segment: Segment, first: Frame) -> Iterator[Frame]:
        yield from segment.warmup
        frame: Frame | None = first
        while frame is not None:
            segment.own += 1
            self._warm.append(frame)
            yield frame
            frame = self._next() if segment.own < self.seg_frames else None
        segment.next_warmup_pts = [f.pts for f in self._warm]
        tail: list[Frame] = []
        while len(tail) < self.lookahead and (frame := self._next()) is not None:
            tail.append(frame)
        self._ahead.extendleft(reversed(tail))
        segment.lookahead = len(tail)
        yield from (replace(f, keep=False) for f in tail)


# -- the identity: what a work folder must match to be reused ---------------------------------

def job_identity(source: Path, model_path: Path, device: str, settings: dict[str, Any],
                 output: dict[str, Any], batch_size: int, seg_frames: int, lookahead: int) -> dict[str, Any]:
    """Source, model and every option that changes the output's pixels or segments (`settings`:
    the colorizer's, `output`: the encoder's), each named by its caller, never collected by type."""
    return {"source": source_identity(source), "model_sha256": file_sha256(model_path), "device": device,
            "settings": settings, "output": output, "batch_size": batch_size, "segment_frames": seg_frames,
            "warmup_lookahead": list(segment_context(lookahead))}  # a list: what JSON gives back
