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

`join_segments` remuxes the segments' packets and the source's audio/subtitle packets
(interleaved by time, nothing re-encoded) into the output's temp file, then renames it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import heapq
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from .errors import OutputError
from .media.probe import VideoInfo, open_input
from .media.reader import COPIED_STREAM_TYPES
from .media.writer import temp_path

WORK_MARK = ".vidcolor-work"
MANIFEST = "manifest.json"
FORMAT = "vidcolor-work-v1"
SEGMENT_SUFFIX = ".nut"
DEFAULT_SEGMENT_SECONDS = 30.0
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
    stat = source.stat()
    return {"path": str(source.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def segment_frames(video: VideoInfo, seconds: float) -> int:
    """Frames per segment: `seconds` of video at the nominal rate (at least 1)."""
    fps = float(video.fps) if video.fps else 25.0
    return max(1, round(seconds * fps))


class WorkFolder:
    """The work folder of one output: lock, manifest, finished segments.

    Use as a context manager: entering takes the lock (another process on the same output
    gets an OutputError) and reuses the folder only if its manifest has the same identity.
    """

    def __init__(self, target: Path, identity: dict[str, Any]):
        self.target = target
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
        tmp = self.path / f".{MANIFEST}.tmp"
        try:
            with open(tmp, "w") as f:
                json.dump(data, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path / MANIFEST)
        except OSError as exc:
            raise OutputError(f"cannot write {self.target}: {exc.strerror or exc} ({self.path})") from exc

    # -- segments ----------------------------------------------------------------------

    def segment_path(self, index: int) -> Path:
        return self.path / f"segment_{index:05d}{SEGMENT_SUFFIX}"

    def add_segment(self, record: dict[str, Any], packet_times: Sequence[tuple[int, int | None, int]]) -> None:
        """Record a segment whose file is already in place (renamed there by its writer)."""
        path = self.segment_path(len(self.segments))
        tmp = path.with_name(f".{path.name}.json.tmp")
        try:
            tmp.write_text(json.dumps([list(t) for t in packet_times]))
            os.replace(tmp, path.with_name(path.name + ".json"))
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


# -- join ----------------------------------------------------------------------------------

def _time_key(packet: av.Packet) -> Fraction:
    ts = packet.dts if packet.dts is not None else packet.pts
    return Fraction(ts or 0) * packet.time_base


def _segment_packets(folder: Path, segments: Sequence[dict[str, Any]], time_base: Fraction) -> Iterator[av.Packet]:
    """The segments' packets with the encoder's timestamps and durations put back (see the module doc)."""
    for segment in segments:
        times = json.loads((folder / (segment["file"] + ".json")).read_text())
        with av.open(str(folder / segment["file"])) as container:
            stream = container.streams.video[0]
            packets = [p for p in container.demux(stream) if p.size]
            if len(packets) != len(times):
                raise OutputError(f"segment {segment['file']} in {folder} is damaged: "
                                  f"{len(packets)} packets, {len(times)} recorded; delete the folder and run again")
            for packet, (pts, dts, duration) in zip(packets, times):
                packet.time_base = time_base
                packet.pts, packet.dts, packet.duration = pts, dts, duration
                yield packet


def join_segments(work: WorkFolder, source: Path, video: VideoInfo) -> list[str]:
    """Remux the finished segments + the source's audio/subtitles into the target (temp, then rename).

    Returns warnings (streams the output container cannot hold).
    """
    target, temp = work.target, temp_path(work.target)
    warnings: list[str] = []
    try:
        with open_input(source) as src, av.open(str(work.path / work.segments[0]["file"])) as first:
            out = av.open(str(temp), "w")
            try:
                vstream = out.add_stream_from_template(first.streams.video[0])
                vstream.time_base = video.time_base
                ctx = vstream.codec_context
                ctx.colorspace, ctx.color_range = video.color.colorspace, video.color.color_range
                ctx.color_primaries, ctx.color_trc = video.color.primaries, video.color.trc
                if video.sample_aspect_ratio:
                    ctx.sample_aspect_ratio = video.sample_aspect_ratio
                if video.display_matrix:
                    vstream.set_display_matrix(video.display_matrix)
                copies = {}
                for template in (s for s in src.streams if s.type in COPIED_STREAM_TYPES):
                    try:
                        copies[template.index] = out.add_stream_from_template(template)
                    except ValueError as exc:
                        warnings.append(f"dropped {template.type} stream #{template.index}: {exc}")
                copied = [s for s in src.streams if s.index in copies]
                others = (p for p in src.demux(*copied) if p.dts is not None) if copied else iter(())
                for packet in heapq.merge(_segment_packets(work.path, work.segments, video.time_base), others, key=_time_key):
                    packet.stream = vstream if packet.stream.type == "video" else copies[packet.stream.index]
                    out.mux(packet)
            finally:
                out.close()
        os.replace(temp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            temp.unlink()
        if isinstance(exc, (av.FFmpegError, OSError)):
            raise OutputError(f"cannot write {target}: {exc}") from exc
        raise
    return warnings
