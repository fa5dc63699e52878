"""What one output will be, decided before any work: its options with `--pix-fmt auto` resolved, and what it
keeps of the source (`keep` for a video file; numbered frames keep the frames only)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..controls import PIX_FMT_AUTO
from ..errors import OutputError
from .formats import bits_of, resolve_pix_fmt
from .keep import OutputPlan, plan_for
from .probe import MediaInfo, VideoInfo
from .sequence import ENCODERS, is_pattern, is_sequence_target, output_exists
from .still import is_still
from .writer import OutputOptions, check_frame_size, check_paths


def output_plan(source: Path, target: Path, info: MediaInfo, options: OutputOptions, to_frames: bool
                ) -> tuple[OutputOptions, OutputPlan]:
    """The output's options with `--pix-fmt auto` resolved for this source, and what the output keeps: every
    stream checked in memory before any work (numbered frames keep the frames only)."""
    video = info.video
    if to_frames:  # numbered frames: `auto` keeps the source's depth (16-bit scans), not a video codec's limit
        options = sequence_options(options, target, video)
        check_target(target, options.overwrite)
        return options, sequence_plan(info)
    options = replace(options, pix_fmt=resolve_pix_fmt(options.pix_fmt, options.codec, video.pix_fmt,
                                                        video.width, video.height))
    check_paths(source, target, options.overwrite)
    check_frame_size(video, options)
    return options, plan_for(source, video, target, options)


def check_video_target(target: Path) -> bool:
    """Whether a video's (or sequence's) `target` is numbered frames; a single picture, or frames with a suffix
    we cannot write, is refused in one line before any work."""
    if is_sequence_target(target):
        return True
    if is_pattern(target):
        raise OutputError(f"numbered frames are written as {', '.join(ENCODERS)}, not {target.suffix}: {target}")
    if is_still(target) or target.suffix.lower() in ENCODERS:
        raise OutputError(f"a video is written as a video or as numbered frames, not one picture: name the frames "
                          f"with a pattern ({target.stem}_%06d{target.suffix}), or use `vidcolor preview`")
    return False


def check_target(target: Path, overwrite: bool) -> None:
    """Refuse, before any work, a target folder that does not exist or (without `overwrite`) any frame the
    target pattern names already there (a video's frame count is not always known in advance)."""
    if not target.parent.is_dir():
        raise OutputError(f"output folder does not exist: {target.parent}")
    if not overwrite and output_exists(target):
        raise OutputError(f"output exists (use --overwrite): frames named {target} are already in {target.parent}")


def sequence_options(options: OutputOptions, target: Path, video: VideoInfo) -> OutputOptions:
    """A sequence target's `OutputOptions`: the encoder its suffix names and 4:4:4 planes at the depth of
    `options.pix_fmt` (`auto`: the source's, 8, 10, 12 or 16 bits), which the writer turns to RGB."""
    bits = bits_of(video.pix_fmt if options.pix_fmt == PIX_FMT_AUTO else options.pix_fmt)
    bits = min((b for b in (8, 10, 12, 16) if b >= bits), default=16)
    planes = "yuv444p" if bits == 8 else f"yuv444p{bits}le"
    return replace(options, codec=ENCODERS[target.suffix.lower()], pix_fmt=planes)


def sequence_plan(info: MediaInfo) -> OutputPlan:
    """What a sequence output keeps: the frames only (image files hold no sound, subtitles or tags)."""
    plan = OutputPlan("image2")
    plan.kept.append(f"video #{info.video.index} ({info.video.codec}): coloured")
    plan.not_kept.extend(f"{s.type} #{s.index} ({s.codec}): image files hold no {s.type}" for s in info.streams)
    return plan
