"""Video I/O with PyAV: probing (probe), the decode thread (reader) and the encode thread (writer)."""

from .probe import ColorTags, MediaInfo, StreamInfo, VideoInfo, probe
from .reader import Batch, Frame, VideoReader
from .writer import (
    OutputOptions,
    VideoWriter,
    check_container,
    check_frame_size,
    check_options,
    check_paths,
    output_name,
)

__all__ = [
           "Batch",
           "ColorTags",
           "Frame",
           "MediaInfo",
           "OutputOptions",
           "StreamInfo",
           "VideoInfo",
           "VideoReader",
           "VideoWriter",
           "check_container",
           "check_frame_size",
           "check_options",
           "check_paths",
           "output_name",
           "probe",
]
