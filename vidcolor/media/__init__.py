"""Video and picture I/O with PyAV, the one face the rest of vidcolor uses. Its modules lie in floors, each
importing only those below it:

1. `formats`, `sequence`, `sidedata`: pure descriptions (codecs and pixel formats, numbered frames, per-frame
   side data);
2. `probe`: what a file holds; `streams`: the tags every written stream shares;
3. `encoder`, `reader`: the decode thread and the encoder's settings; `writer`: the encode thread;
4. `keep`, `still`: what an output keeps of its source's other streams; photos;
5. `plan`: what one output will be, decided before any work.
"""

from .formats import chroma_stride, codec_table, resolve_pix_fmt
from .keep import CHAPTER_FORMATS, OutputPlan, add_lossless_audio, content_tags, stream_tags
from .plan import check_video_target, output_plan
from .probe import FIELD_ORDER_NAMES, ColorTags, MediaInfo, StreamInfo, VideoInfo, open_input, probe
from .reader import Frame, KeyframeFinder, VideoReader, plane_arrays, to_planar
from .sequence import VIDEO_START_NUMBER, find, folder_pattern, is_pattern, output_exists, write_frames
from .sidedata import FRAME_SIDE_DATA, not_carried
from .still import (STILL_EXTENSIONS, check_still_target, is_still, metadata_note, output_dtype, read_still,
                    write_still)
from .streams import RGB_EXACT, sws_colorspace, tag_video_stream
from .writer import (STILL_SUFFIXES, OutputOptions, VideoWriter, check_frame_size, check_options, check_paths,
                     output_name, temp_target)

__all__ = [
    "CHAPTER_FORMATS", "FIELD_ORDER_NAMES", "FRAME_SIDE_DATA", "RGB_EXACT", "STILL_EXTENSIONS", "STILL_SUFFIXES",
    "VIDEO_START_NUMBER", "ColorTags", "Frame", "KeyframeFinder", "MediaInfo", "OutputOptions", "OutputPlan",
    "StreamInfo", "VideoInfo", "VideoReader", "VideoWriter", "add_lossless_audio", "check_frame_size", "check_options",
    "check_paths",
    "check_still_target", "check_video_target", "chroma_stride", "codec_table", "content_tags", "find",
    "folder_pattern", "is_pattern", "is_still", "metadata_note", "not_carried", "open_input", "output_dtype",
    "output_exists", "output_name", "output_plan", "plane_arrays", "probe", "read_still", "resolve_pix_fmt",
    "stream_tags", "sws_colorspace", "tag_video_stream", "temp_target", "to_planar", "write_frames", "write_still",
]
