"""Per-frame side data that the colour copy does not carry: its frames are new pictures, so what the source's
frames held beside the picture (captions, per-frame timecode, HDR metadata, AFD) is named in the report's
`not_kept` and in one printed line, never dropped without a word. Display matrices (rotation) are carried by
the output's own tags, and encoder notes (unregistered SEI) are no content, so neither is listed."""

from __future__ import annotations

import av

FRAME_SIDE_DATA = {  # PyAV's side data type name -> what it is, for people
    "A53_CC": "closed captions (EIA-608/CEA-708, A/53) in the video frames",
    "S12M_TIMECODE": "per-frame SMPTE timecode in the video frames",
    "GOP_TIMECODE": "GOP timecode in the video frames",
    "MASTERING_DISPLAY_METADATA": "HDR mastering-display metadata in the video frames",
    "CONTENT_LIGHT_LEVEL": "HDR content light level in the video frames",
    "DYNAMIC_HDR_PLUS": "HDR10+ dynamic metadata",
    "DYNAMIC_HDR_VIVID": "HDR Vivid dynamic metadata",
    "DOVI_METADATA": "Dolby Vision metadata",
    "DOVI_RPU_BUFFER": "Dolby Vision metadata",
    "AFD": "active format description (AFD)",
    "FILM_GRAIN_PARAMS": "film grain synthesis parameters",
    "STEREO3D": "stereo 3D frame packing",
    "SPHERICAL": "spherical (360 degree) mapping",
}


def side_data_names(frame: av.VideoFrame) -> set[str]:
    """The names of every kind of side data this frame carries (none when PyAV cannot name one of them)."""
    try:  # iterating yields SideData objects in PyAV 18.1.0, their Type from 18.1.1
        return {getattr(item, "type", item).name for item in frame.side_data}
    except ValueError:  # 'N is not a valid Type': PyAV lists none of the frame's side data then
        return set()


def side_data_kinds(frame: av.VideoFrame) -> set[str]:
    """The listed kinds (`FRAME_SIDE_DATA`) of side data this frame carries."""
    return side_data_names(frame) & FRAME_SIDE_DATA.keys()


def not_carried(kinds: set[str] | list[str]) -> list[str]:
    """`not_kept` lines for these kinds, one per description."""
    return sorted({f"{FRAME_SIDE_DATA[k]}: the colour frames are new pictures and do not carry it"
                   for k in kinds if k in FRAME_SIDE_DATA})
