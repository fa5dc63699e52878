"""What an output keeps of its source, decided before any work: every stream, tag, chapter and attachment.

`plan_output` tries each of the source's streams in an in-memory container of the target's format
(nothing is written near the target, so another run's files are never touched) and decides, per
stream, to copy it packet for packet, transcode it losslessly (audio the container cannot hold) or
leave it out, with the reason. The join then does what the plan says, so a stream the container
cannot hold never fails a run after its frames were coloured, and `--report` can say what was kept.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av

from ..controls import LOSSLESS_AUDIO_CODECS
from ..errors import OutputError
from .encoder import WEBM_CODECS, add_video_stream
from .probe import VideoInfo, open_input

# Tags that describe one encoding (muxer statistics, encoder names, brands), not the content: never copied.
TECHNICAL_TAGS = frozenset({"encoder", "major_brand", "minor_version", "compatible_brands", "duration",
                            "number_of_frames", "number_of_bytes", "bps", "_statistics_tags",
                            "_statistics_writing_app", "_statistics_writing_date_utc", "handler_name",
                            "vendor_id", "timecode", "software"})  # software: the writing application
ATTACHMENT_FORMATS = ("matroska", "webm")
CHAPTER_FORMATS = ("matroska", "webm", "mp4", "mov", "ipod", "ismv", "nut")
TIMECODE_TRACK_FORMATS = ("mov", "mp4", "ipod", "ismv")  # their muxers write a tmcd track from the timecode tag
_MOV_DATA_HANDLERS = {"TimeCodeHandler": "timecode", "SubtitleHandler": "chapters"}  # tracks FFmpeg makes itself


@dataclass(frozen=True)
class StreamPlan:
    """What happens to one source stream: `copy`, `transcode` (to `codec`) or `drop` (`note` says why)."""

    index: int
    type: str
    source_codec: str
    action: str
    codec: str | None = None
    note: str = ""

    def describe(self) -> str:
        what = f"{self.type} #{self.index} ({self.source_codec})"
        if self.action == "transcode":
            return f"{what} transcoded losslessly to {self.codec}: {self.note}"
        return f"{what}: {self.note}" if self.note else what


@dataclass
class OutputPlan:
    """The plan for one output: streams to copy or transcode, and the human-readable kept / not-kept lists."""

    format: str
    streams: list[StreamPlan] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    not_kept: list[str] = field(default_factory=list)
    timecode: str | None = None

    def of(self, action: str) -> list[StreamPlan]:
        return [s for s in self.streams if s.action == action]

    def as_dict(self) -> dict[str, Any]:
        return {"kept": list(self.kept), "not_kept": list(self.not_kept)}


def content_tags(metadata: dict[str, str]) -> dict[str, str]:
    """Tags that describe the content (title, comment, language, creation time ...), without `TECHNICAL_TAGS`."""
    return {k: v for k, v in metadata.items() if k.lower() not in TECHNICAL_TAGS}


def stream_tags(stream: av.stream.Stream) -> dict[str, str]:
    """A stream's content tags to write: QuickTime's track name reads back as `name`, is written as `title`."""
    tags = content_tags(dict(stream.metadata))
    if "name" in tags and "title" not in tags:
        tags["title"] = tags.pop("name")
    return tags


def target_format(target: Path) -> str:
    """The muxer FFmpeg picks for `target`'s name (opening for writing creates no file until the header)."""
    try:
        container = av.open(str(target), "w")
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise OutputError(f"cannot write {target}: {exc}") from exc
    name = container.format.name
    container.close()
    return name


def _header_ok(fmt: str, build: Any, sample: av.Packet | None = None) -> str | None:
    """None if a container of `fmt` set up by `build(out)` writes its header, `sample` (a packet of the stream
    `build` returns) and its trailer, else FFmpeg's reason (the mp4 muxer takes PCM audio in the header and
    refuses it only at the trailer, once it holds samples)."""
    out = av.open(io.BytesIO(), "w", format=fmt)
    try:
        added = build(out)
        out.start_encoding()
        if sample is not None and added is not None:
            sample.stream = added
            out.mux(sample)
    except (av.FFmpegError, ValueError, TypeError, OSError) as exc:
        try:
            out.close()
        except (av.FFmpegError, ValueError, OSError):
            pass
        return str(exc)
    try:
        out.close()
    except (av.FFmpegError, ValueError, OSError) as exc:
        return str(exc)
    return None


def add_lossless_audio(out: av.container.OutputContainer, template: av.audio.AudioStream, codec: str
                       ) -> av.audio.AudioStream:
    """An encoder stream for `template`'s audio in `codec`, at its rate and layout, in its widest sample format."""
    ctx = template.codec_context
    stream = out.add_stream(codec, rate=ctx.sample_rate, layout=ctx.layout.name)
    formats = av.Codec(codec, "w").audio_formats or ()
    wide = [f for f in formats if f.bytes >= max(2, ctx.format.bytes)]
    if wide:
        stream.codec_context.format = wide[0]
    stream.metadata.update(stream_tags(template))
    return stream


def _timecode(src: av.container.InputContainer) -> str | None:
    for s in src.streams:
        if tc := s.metadata.get("timecode"):
            return tc
    return src.metadata.get("timecode")


def plan_output(src: av.container.InputContainer, video_index: int, target: Path, video_trial: Any) -> OutputPlan:
    """Decide what `target` keeps of `src` (see the module doc). `video_trial(out)` adds the coloured video
    stream as it will be encoded; a container that cannot hold it is an OutputError, before any work."""
    fmt = target_format(target)
    if (reason := _header_ok(fmt, video_trial)) is not None:
        raise OutputError(f"{fmt} cannot hold the output video ({reason}): {target}")
    plan = OutputPlan(fmt)
    plan.timecode = _timecode(src)
    video = src.streams[video_index]
    plan.kept.append(f"video #{video_index} ({video.codec_context.name}): coloured")
    samples = _first_packets(src, video_index)
    for stream in src.streams:
        if stream.index != video_index:
            _plan_stream(plan, stream, fmt, video_trial, samples.get(stream.index))
    _plan_tags(plan, src, fmt)
    return plan


def _first_packets(src: av.container.InputContainer, video_index: int, limit: int = 2000) -> dict[int, av.Packet]:
    """A packet of each audio and subtitle stream, for the trials (at most `limit` packets read)."""
    wanted = [s for s in src.streams if s.index != video_index and s.type in ("audio", "subtitle")]
    found: dict[int, av.Packet] = {}
    if not wanted:
        return found
    try:
        for n, packet in enumerate(src.demux(*wanted)):
            if packet.size and packet.dts is not None:
                found.setdefault(packet.stream.index, packet)
            if len(found) == len(wanted) or n >= limit:
                break
    except av.FFmpegError:
        pass
    return found


def is_attached_file(stream: av.stream.Stream) -> bool:
    """A Matroska attachment that FFmpeg shows as a one-picture video stream (an image: `cover.jpg`): an
    attached picture with the attachment's file name. It stays an attachment, never a video track."""
    return (stream.type == "video" and bool(stream.disposition & av.stream.Disposition.attached_pic)
            and "filename" in stream.metadata)


def _plan_stream(plan: OutputPlan, stream: av.stream.Stream, fmt: str, video_trial: Any,
                 sample: av.Packet | None = None) -> None:
    codec = stream.codec_context.name if stream.codec_context is not None else (stream.type if stream.type != "data"
                                                                                  else "data")
    if stream.type == "attachment" or is_attached_file(stream):
        name = stream.metadata.get("filename", f"#{stream.index}")
        if fmt in ATTACHMENT_FORMATS:
            plan.streams.append(StreamPlan(stream.index, "attachment", name, "copy"))
            plan.kept.append(f"attachment #{stream.index} ({name})")
        else:
            plan.not_kept.append(f"attachment #{stream.index} ({name}): only Matroska holds attachments, {fmt} does not")
        return
    handler = _MOV_DATA_HANDLERS.get(stream.metadata.get("handler_name", "")) if stream.type == "data" else None
    if handler:  # made again by the muxer from the timecode tag / the chapters, planned with them
        what = f"data #{stream.index} ({handler} track)"
        if handler == "timecode":
            plan.kept.append(f"{what}: made again from its start timecode" if fmt in TIMECODE_TRACK_FORMATS
                             else f"{what}: its start timecode kept as a tag")
        elif fmt in CHAPTER_FORMATS:
            plan.kept.append(f"{what}: kept as the output's chapters")
        else:
            plan.not_kept.append(f"{what}: {fmt} cannot hold chapters")
        return

    def copy(out: av.container.OutputContainer) -> av.stream.Stream:
        video_trial(out)
        return out.add_stream_from_template(stream)

    reason = _header_ok(fmt, copy, sample)
    if reason is None:
        what = " copied untouched (not coloured)" if stream.type == "video" else ""
        plan.streams.append(StreamPlan(stream.index, stream.type, codec, "copy"))
        plan.kept.append(f"{stream.type} #{stream.index} ({codec}){what}" + _tag_note(stream))
        return
    if stream.type == "audio":
        for target_codec in LOSSLESS_AUDIO_CODECS:
            def transcode(out: av.container.OutputContainer, target_codec: str = target_codec) -> None:
                video_trial(out)
                add_lossless_audio(out, stream, target_codec)
            if _header_ok(fmt, transcode) is None:
                why = f"{fmt} cannot hold {codec}"
                plan.streams.append(StreamPlan(stream.index, "audio", codec, "transcode", target_codec, why))
                plan.kept.append(f"audio #{stream.index} ({codec}) transcoded losslessly to {target_codec} "
                                 f"({why})" + _tag_note(stream))
                return
    plan.not_kept.append(f"{stream.type} #{stream.index} ({codec}): {fmt} cannot hold it ({reason.split(':')[0]})"
                         + ("; an .mkv output keeps it" if fmt not in ATTACHMENT_FORMATS else ""))


def _tag_note(stream: av.stream.Stream) -> str:
    tags = stream_tags(stream)
    return f", tags {', '.join(sorted(tags))}" if tags else ""


def _plan_tags(plan: OutputPlan, src: av.container.InputContainer, fmt: str) -> None:
    tags = content_tags(dict(src.metadata))
    if tags:
        plan.kept.append(f"container tags: {', '.join(sorted(tags))}")
    if plan.timecode:
        if fmt in TIMECODE_TRACK_FORMATS:
            plan.kept.append(f"start timecode {plan.timecode} (timecode track written again)")
        else:
            plan.kept.append(f"start timecode {plan.timecode} (as a tag: {fmt} has no timecode track)")
    chapters = src.chapters()
    if chapters:
        if fmt in CHAPTER_FORMATS:
            plan.kept.append(f"{len(chapters)} chapters")
        else:
            plan.not_kept.append(f"{len(chapters)} chapters: {fmt} cannot hold chapters")


def plan_for(source: Path, video: VideoInfo, target: Path, options: Any) -> OutputPlan:
    """`plan_output` for `source`'s video encoded with `options` (an `OutputOptions`) into `target`."""
    fmt = target_format(target)
    if fmt == "webm" and options.codec not in WEBM_CODECS:
        raise OutputError(f"webm holds only VP8, VP9 and AV1 video, not {options.codec}: use --codec libvpx-vp9 "
                          f"(or an .mkv output) for {target}")

    def video_trial(out: av.container.OutputContainer) -> None:
        add_video_stream(out, video, options.codec, options.crf, options.preset, options.pix_fmt, fmt)

    with open_input(source, video.fps) as src:
        return plan_output(src, video.index, target, video_trial)

