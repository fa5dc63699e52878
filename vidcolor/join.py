"""Joining a finished work folder into the output, without re-encoding.

`join_segments` remuxes the segments' packets and what the output plan (`media.keep`) keeps of the
source (streams copied or losslessly transcoded, interleaved by time; tags, chapters, attachments,
timecode) into the output's temp file, then renames it into place.
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
from .media import (CHAPTER_FORMATS, OutputPlan, VideoInfo, add_lossless_audio, content_tags, open_input, stream_tags,
                    tag_video_stream, temp_target, write_frames)
from .resume import WorkFolder


def _time_key(packet: av.Packet) -> Fraction:
    ts = packet.dts if packet.dts is not None else packet.pts
    return Fraction(ts or 0) * packet.time_base


def _segment_packets(folder: Path, segments: Sequence[dict[str, Any]], time_base: Fraction, stream: av.stream.Stream
                     ) -> Iterator[av.Packet]:
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
                packet.stream = stream
                yield packet


def join_segments(work: WorkFolder, source: Path, video: VideoInfo, plan: OutputPlan) -> None:
    """Remux the finished segments + what `plan` keeps of the source into the target (temp, then rename):
    streams copied packet for packet or transcoded losslessly, tags, chapters, attachments, timecode."""
    target = work.target
    try:
        with temp_target(target) as temp, open_input(source, video.fps) as src, \
                av.open(str(work.path / work.segments[0]["file"])) as first:
            out = av.open(str(temp), "w")
            try:
                vstream = out.add_stream_from_template(first.streams.video[0])
                # AVI counts frames: its time base is the frame rate's (else FFmpeg guesses one and the video
                # starts late against the audio).
                vstream.time_base = 1 / video.fps if plan.format == "avi" and video.fps else video.time_base
                if video.fps:
                    vstream.codec_context.framerate = video.fps  # the mov muxer's timecode track needs it
                tag_video_stream(vstream, video)
                keep_tags(out, src, vstream, video.index, plan)
                outputs = {s.index: out.add_stream_from_template(src.streams[s.index]) for s in plan.of("copy")
                           if s.type != "attachment"}
                for s in plan.of("copy"):
                    if s.type == "attachment":
                        out.add_attachment(*attachment(source, src.streams[s.index]))
                for index, copy in outputs.items():
                    copy.metadata.update(stream_tags(src.streams[index]))
                encoders = {s.index: Transcoder(src.streams[s.index], add_lossless_audio(out, src.streams[s.index],
                                                                                          s.codec))
                            for s in plan.of("transcode")}
                outputs.update({i: t.stream for i, t in encoders.items()})
                others = _source_packets(src, outputs, encoders, no_negative=plan.format == "avi")
                for packet in heapq.merge(_segment_packets(work.path, work.segments, video.time_base, vstream),
                                          others, key=_time_key):
                    out.mux(packet)
                for packet in (p for t in encoders.values() for p in t.flush()):
                    out.mux(packet)
            finally:
                out.close()
    except (av.FFmpegError, OSError) as exc:  # the temp file is gone already
        raise OutputError(f"cannot write {target}: {exc}") from exc


def attachment(source: Path, stream: av.stream.Stream) -> tuple[str, str, bytes]:
    """(file name, MIME type, bytes) of a Matroska attachment; an image attachment, which FFmpeg shows as an
    attached-picture video stream, from its one packet (read in a container of its own)."""
    if stream.type == "attachment":
        return stream.name, stream.mimetype, bytes(stream.data)
    with open_input(source) as again:
        data = next((bytes(p) for p in again.demux(again.streams[stream.index]) if p.size), b"")
    return stream.metadata["filename"], stream.metadata.get("mimetype", "application/octet-stream"), data


def keep_tags(out: av.container.OutputContainer, src: av.container.InputContainer, vstream: av.stream.Stream,
              video_index: int, plan: OutputPlan) -> None:
    """The container's and the video's content tags, the start timecode (the mov muxer makes its tmcd track
    from it) and the chapters, where `plan`'s container holds them."""
    out.metadata.update(content_tags(dict(src.metadata)))
    vstream.metadata.update(content_tags(dict(src.streams[video_index].metadata)))
    if plan.timecode:
        vstream.metadata["timecode"] = plan.timecode
    if plan.format in CHAPTER_FORMATS and (chapters := src.chapters()):
        out.set_chapters(chapters)


class Transcoder:
    """Lossless re-encoding of one audio stream the output container cannot hold as it is (see `keep`)."""

    def __init__(self, source: av.audio.AudioStream, stream: av.audio.AudioStream):
        self.source, self.stream = source, stream
        ctx = stream.codec_context
        self.resampler = av.AudioResampler(format=ctx.format, layout=ctx.layout, rate=ctx.rate)

    def packets(self, packet: av.Packet) -> list[av.Packet]:
        out = []
        for frame in packet.decode():
            for converted in self.resampler.resample(frame):
                out += self.stream.encode(converted)
        return out

    def flush(self) -> list[av.Packet]:
        return self.stream.encode(None)


def _source_packets(src: av.container.InputContainer, outputs: dict[int, av.stream.Stream],
                    encoders: dict[int, Transcoder], no_negative: bool = False) -> Iterator[av.Packet]:
    """The source's kept packets, in file order, each given its output stream; transcoded streams' packets
    come re-encoded. `no_negative` (AVI, which cannot start a stream before 0): a stream that starts before
    0 (AAC's priming) starts at 0 instead, or the muxer would delay every other stream, the video too."""
    if not outputs:
        return
    shifts: dict[int, int] = {}
    for packet in src.demux(*(src.streams[i] for i in outputs)):
        if packet.dts is None:
            continue
        index = packet.stream.index
        if no_negative:
            shift = shifts.setdefault(index, max(0, -packet.dts))
            packet.dts += shift
            if packet.pts is not None:
                packet.pts += shift
        if index in encoders:
            yield from encoders[index].packets(packet)
        else:
            packet.stream = outputs[index]
            yield packet


def join_frames(work: WorkFolder, first: int) -> None:
    """An image-sequence output: each segment packet is one whole image file, written under its number
    from `first` on (`media.sequence.write_frames`: hidden folder first, then moved into place)."""
    def images() -> Iterator[bytes]:
        for segment in work.segments:
            with av.open(str(work.path / segment["file"])) as container:
                yield from (bytes(p) for p in container.demux(container.streams.video[0]) if p.size)

    write_frames(images(), work.target, first)
