"""Joining a finished work folder into the output, without re-encoding.

`join_segments` remuxes the segments' packets and the source's audio/subtitle packets
(interleaved by time) into the output's temp file, then renames it into place.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from .errors import OutputError
from .media.probe import VideoInfo, open_input
from .media.streams import add_copies, copied_streams, tag_video_stream
from .media.writer import temp_target
from .resume import WorkFolder

def _time_key(packet: av.Packet) -> Fraction:
    ts = packet.dts if packet.dts is not None else packet.pts
    return Fraction(ts or 0) * packet.time_base


def _segment_packets(folder: Path, segments: Sequence[dict[str, Any]], time_base: Fraction) -> Iterator[av.Packet]:
    """The segments' packets with the encoder's timestamps and durations put back (see `resume`'s module doc)."""
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
    target = work.target
    try:
        with temp_target(target) as temp, open_input(source) as src, \
                av.open(str(work.path / work.segments[0]["file"])) as first:
            out = av.open(str(temp), "w")
            try:
                vstream = out.add_stream_from_template(first.streams.video[0])
                vstream.time_base = video.time_base
                tag_video_stream(vstream, video)
                copies, warnings = add_copies(out, copied_streams(src))
                copied = [s for s in src.streams if s.index in copies]
                others = (p for p in src.demux(*copied) if p.dts is not None) if copied else iter(())
                for packet in heapq.merge(_segment_packets(work.path, work.segments, video.time_base), others, key=_time_key):
                    packet.stream = vstream if packet.stream.type == "video" else copies[packet.stream.index]
                    out.mux(packet)
            finally:
                out.close()
    except (av.FFmpegError, OSError) as exc:  # the temp file is gone already
        raise OutputError(f"cannot write {target}: {exc}") from exc
    return warnings
