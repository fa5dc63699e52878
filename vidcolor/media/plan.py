"""What one output will be, decided before any work: its options with `--pix-fmt auto` resolved, and what it
keeps of the source (`keep` for a video file, `sequence` for numbered frames)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .formats import resolve_pix_fmt
from .keep import OutputPlan, plan_for
from .probe import MediaInfo
from .sequence import check_target, sequence_options, sequence_plan
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
