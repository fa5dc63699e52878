"""Video I/O with PyAV: probing (probe), the decode thread (reader), the encode thread (writer) and the
stream helpers every written file shares (streams)."""

from .probe import ColorTags, MediaInfo, StreamInfo, VideoInfo, probe
from .reader import Frame, VideoReader
from .sidedata import not_carried
from .writer import (
    OutputOptions,
    VideoWriter,
    check_frame_size,
    check_options,
    check_paths,
    output_name,
)

__all__ = [
           "ColorTags",
           "Frame",
           "MediaInfo",
           "OutputOptions",
           "StreamInfo",
           "VideoInfo",
           "VideoReader",
           "VideoWriter",
           "check_frame_size",
           "check_options",
           "check_paths",
           "not_carried",
           "output_name",
           "probe",
]
