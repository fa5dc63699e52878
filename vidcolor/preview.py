"""`vidcolor preview`: one picture of N frames spread over a film, gray beside colour, before the long run.

For each of N positions it seeks to the keyframe before it, decodes forward to the frame there, and colours
that frame alone through `run`'s own stages (model, references, saturation, people, keyframes and hints carried),
so a sheet takes seconds whatever the film's length; with only the model to run, without importing torch
(`quicklook`). What it leaves out: temporal smoothing, which needs the frames before (`run` steadies colour over
time; a single frame shows the model's own prediction).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .colorspec import YuvSpec, code_scale, yuv_matrix
from .controls import PIX_FMT
from .errors import InputError, OutputError
from .geometry import resize_plane
from .media import Frame, KeyframeFinder, VideoInfo, VideoReader, probe

if TYPE_CHECKING:
    from .pipeline import Colorizer

# (source, video, its frames, working pixel format) -> the frames coloured, each alone
FrameColourer = Callable[[Path, VideoInfo, list[Frame], str], list[Frame]]

PANEL_WIDTH = 480  # px of each panel (gray, colour); the height follows the displayed aspect
LABEL_HEIGHT = 22  # px of the band above each row that holds its time and frame number
GAP = 4  # px between the two panels and between rows


def sample_fractions(count: int) -> list[float]:
    """`count` positions spread evenly over the film, each in the middle of its share (never the black first
    frame or the fade-out at the very end)."""
    return [(i + 0.5) / count for i in range(count)]


def colorizer_frames(colorizer: Colorizer) -> FrameColourer:
    """Frames coloured by `run`'s stages (`Colorizer.colour_frames`), keyframes' and hints' colours carried."""
    return lambda source, video, frames, pix_fmt: colorizer.colour_frames(
        frames, video, colorizer.user_tracks(source, video, pix_fmt))


def preview_frames(colour: FrameColourer, source: Path, fractions: list[float], pix_fmt: str = PIX_FMT
                   ) -> tuple[VideoInfo, list[tuple[float, Frame, Frame]]]:
    """(seconds from the first frame, source frame, coloured frame) at each fraction of the duration: a seek
    to the keyframe before it and a decode forward to it, then the frames coloured, each alone, by `colour`."""
    video = probe(source).video
    seeker = FrameSeeker(source, video, pix_fmt)
    try:
        first = seeker.at(None)
        if first is None:
            raise InputError(f"no video frame could be decoded from {source}")
        found = {}
        for fraction in sorted(set(fractions)):  # in rising order, so that decoding on can serve the next one
            target = first.pts + round(max(0.0, fraction * (video.duration or 0.0)) / video.time_base)
            found[fraction] = seeker.at(target) or first
        frames = [found[fraction] for fraction in fractions]
    finally:
        seeker.close()
    coloured = colour(source, video, frames, pix_fmt)
    return video, [(float((f.pts - first.pts) * video.time_base), f, c) for f, c in zip(frames, coloured)]


class FrameSeeker:
    """Frames at rising timestamps, each reached the cheaper way: decoding on from the last one where the keyframe
    a seek would land on is no later than it (a film with few keyframes: a 10-second clip with one decodes each
    frame once instead of from the start for every position), else a seek to the keyframe before it."""

    def __init__(self, source: Path, video: VideoInfo, pix_fmt: str):
        self.source, self.video, self.pix_fmt = source, video, pix_fmt
        self.keyframes = KeyframeFinder(source, video)
        self.reader: VideoReader | None = None
        self.frames: Iterator[Frame] = iter(())
        self.last: Frame | None = None

    def at(self, pts: int | None) -> Frame | None:
        """The first frame at or after `pts` (None: the film's first), or None past the end."""
        if self.last is not None and pts is not None and pts <= self.last.pts:
            return self.last  # rising timestamps: no frame lies between the last one's target and it
        keyframe = None if pts is None or self.last is None else self.keyframes.before(pts)
        on = self.reader is not None and not self.reader.pts_repaired  # made-up timestamps: seek, as frame_at does
        if on and keyframe is not None and keyframe <= self.last.pts:
            self.reader.skip_to(pts)
        else:
            self.close_reader()
            self.reader = VideoReader(self.source, self.video, self.pix_fmt, batch_size=1, start_pts=pts)
            self.reader.start()
            self.frames = (f for batch in self.reader for f in batch)
        self.last = next((f for f in self.frames if pts is None or f.pts >= pts), None)
        return self.last

    def close_reader(self) -> None:
        if self.reader is not None:
            self.reader.close()
            self.reader = None

    def close(self) -> None:
        self.close_reader()
        self.keyframes.close()


def frame_at(source: Path, video: VideoInfo, pix_fmt: str, start_pts: int | None) -> Frame | None:
    """The first frame at or after `start_pts` (None: the film's first), or None past the end."""
    reader = VideoReader(source, video, pix_fmt, batch_size=1, start_pts=start_pts)
    try:
        reader.start()
        return next((f for batch in reader for f in batch), None)
    finally:
        reader.close()


def frame_rgb(frame: Frame, spec: YuvSpec, gray: bool = False) -> np.ndarray:
    """(H,W,3) uint8 RGB of a frame's planes; `gray`: with neutral chroma (what the B&W source shows)."""
    import cv2

    scale = code_scale(frame.bits)
    y = frame.planes[0].astype(np.float32) / scale
    if gray:
        cb = cr = np.full_like(y, 128 / 255.0)
    else:
        cb, cr = (resize_plane(p.astype(np.float32) / scale, y.shape) for p in frame.planes[1:3])
    matrix, offset = yuv_matrix(spec)
    inverse = np.linalg.inv(matrix)
    rgb = cv2.transform(cv2.merge([y, cb, cr]), np.hstack([inverse, -(inverse @ offset)[:, None]]))
    return np.rint(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)


def timestamp(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}.{round((seconds - whole) * 1000) % 1000:03d}"


def contact_sheet(rows: list[tuple[str, np.ndarray, np.ndarray]], aspect: float) -> np.ndarray:
    """Rows of (label, gray RGB, colour RGB) -> one RGB picture: per row a label band, then the two panels."""
    import cv2

    width = PANEL_WIDTH
    height = max(2, round(width / aspect))
    row_h = LABEL_HEIGHT + height + GAP
    sheet = np.full((len(rows) * row_h, 2 * width + GAP, 3), 24, np.uint8)
    for i, (label, gray, colour) in enumerate(rows):
        top = i * row_h
        cv2.putText(sheet, label, (6, top + LABEL_HEIGHT - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (235, 235, 235), 1,
                    cv2.LINE_AA)
        for j, panel in enumerate((gray, colour)):
            left = j * (width + GAP)
            sheet[top + LABEL_HEIGHT:top + LABEL_HEIGHT + height, left:left + width] = cv2.resize(
                panel, (width, height), interpolation=cv2.INTER_AREA)
    return sheet


def check_target(source: Path, target: Path, overwrite: bool) -> None:
    """Before any work: the sheet is a picture, and neither overwrites the source nor (without `overwrite`)
    an existing file."""
    from .media import STILL_EXTENSIONS, check_paths

    if target.suffix.lower() not in STILL_EXTENSIONS:
        raise OutputError(f"a preview is a picture: name it .png or .jpg, not {target.name}")
    check_paths(source, target, overwrite)


def write_preview(colour: FrameColourer, source: Path, target: Path, count: int, pix_fmt: str = PIX_FMT) -> int:
    """Write the sheet of `count` frames of the video `source`, coloured by `colour`, to `target` (PNG, JPEG,
    ...; `check_target` first); returns its rows. A video with fewer frames than `count` gives one row per frame."""
    video, frames = preview_frames(colour, source, sample_fractions(count), pix_fmt)
    spec = video.color.yuv_spec
    seen: set[int] = set()
    rows = []
    for seconds, src, coloured in frames:
        if src.pts in seen:  # a short video: fewer distinct frames than asked for
            continue
        seen.add(src.pts)
        index = round(seconds * float(video.fps)) if video.fps else None
        label = f"{timestamp(seconds)}" + (f"  frame {index}" if index is not None else "")
        rows.append((label, frame_rgb(src, spec, gray=True), frame_rgb(coloured, spec)))
    sar = float(video.sample_aspect_ratio) if video.sample_aspect_ratio else 1.0
    save_sheet(target, rows, video.width * sar / video.height)
    return len(rows)


def write_still_preview(colorizer: Colorizer, source: Path, target: Path) -> int:
    """The sheet of a photo: its luma beside its colours (`Colorizer.colorize`); one row."""
    import torch

    from .color import rgb_luma
    from .colorspec import rgb_frame_spec
    from .media import read_still
    from .yuv import to_uint8

    still = read_still(source)
    rgb = torch.from_numpy(still.rgb).permute(2, 0, 1)[None]
    colour = to_uint8(colorizer.colorize(rgb)[0]).permute(1, 2, 0).numpy()
    luma = rgb_luma(rgb, rgb_frame_spec(rgb.shape[-2]))[0]  # the Y' that colorize keeps
    gray = to_uint8(luma.expand(3, -1, -1)).permute(1, 2, 0).numpy()
    save_sheet(target, [(source.name, gray, colour)], still.rgb.shape[1] / still.rgb.shape[0])
    return 1


def save_sheet(target: Path, rows: list[tuple[str, np.ndarray, np.ndarray]], aspect: float) -> None:
    from .media import write_still

    write_still(target, contact_sheet(rows, aspect).astype(np.float32) / 255.0, np.dtype(np.uint8), None)
