"""Film-scan image sequences: numbered DPX, TIFF or PNG frames, read and written as one video.

A sequence is named by a printf pattern, as FFmpeg's (`scans/reel1_%06d.dpx`), or found in a folder
(`--sequence`). It is read through FFmpeg's image2 demuxer at `--fps`, so it goes through the same
stages, segments and resume as a video file. A gap in the numbering stops the input before any work
(the frames after it would be coloured under the wrong numbers): the message names the missing frames.
A sequence is written by encoding each frame as an image (segments in the work folder, as for video)
and then writing each packet to its numbered file in a hidden folder beside the target's, which are
moved into place once all are written. Output frames keep the input's numbers; a video's frames
are numbered from 1, as FFmpeg's image2 muxer does.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, OutputError

ENCODERS = {".dpx": "dpx", ".tif": "tiff", ".tiff": "tiff", ".png": "png"}  # suffix -> image encoder
# The encoder's RGB format for each depth of the working planes (`media.formats`): depth kept.
IMAGE_PIX_FMTS = {
    "dpx": {8: "rgb24", 10: "gbrp10le", 12: "gbrp12le", 16: "rgb48le"},
    "tiff": {8: "rgb24", 10: "rgb48le", 12: "rgb48le", 16: "rgb48le"},
    "png": {8: "rgb24", 10: "rgb48be", 12: "rgb48be", 16: "rgb48be"},
}
_PATTERN = re.compile(r"%(0?)(\d*)d")
_NUMBERED = re.compile(r"^(.*?)(\d+)(\.[A-Za-z0-9]+)$")
VIDEO_START_NUMBER = 1  # a video's first frame, written as a sequence


def is_pattern(path: str | Path) -> bool:
    """A printf pattern (`%06d`, `%d`) in the file name: an image sequence, not a file."""
    return bool(_PATTERN.search(Path(path).name))


def is_sequence_target(path: Path) -> bool:
    return is_pattern(path) and path.suffix.lower() in ENCODERS


@dataclass(frozen=True)
class ImageSequence:
    """The numbered frames of one pattern: `count` files from `first` on, none missing."""

    pattern: Path
    first: int
    count: int

    def path(self, index: int) -> Path:
        """The file of the `index`-th frame (0-based)."""
        return frame_path(self.pattern, self.first + index)

    def identity(self) -> dict:
        """What resume compares: the frames' names, total size and newest change."""
        stats = [self.path(i).stat() for i in range(self.count)]
        return {"path": str(self.pattern.resolve()), "first": self.first, "count": self.count,
                "size": sum(s.st_size for s in stats), "mtime_ns": max(s.st_mtime_ns for s in stats)}


def output_exists(path: Path) -> bool:
    """A file at `path`, or for a pattern any frame it names."""
    if not is_pattern(path):
        return path.exists()
    regex = _pattern_regex(path.name)
    return path.parent.is_dir() and any(regex.match(name) for name in os.listdir(path.parent))


def frame_path(pattern: Path, number: int) -> Path:
    return pattern.with_name(pattern.name % number)


def _pattern_regex(name: str) -> re.Pattern:
    """The file names a pattern matches, with the number as group 1 (`%06d` exactly 6 digits, `%d` any)."""
    match = _PATTERN.search(name)
    zero, width = match.group(1), match.group(2)
    digits = rf"\d{{{width}}}" if zero and width else r"\d+"
    return re.compile(re.escape(name[:match.start()]) + f"({digits})" + re.escape(name[match.end():]) + "$")


def find(pattern: Path) -> ImageSequence:
    """The frames `pattern` names, checked: at least one, and no gap in the numbering."""
    if _PATTERN.search(pattern.parent.name or ""):
        raise InputError(f"the pattern's number must be in the file name, not the folder: {pattern}")
    if pattern.suffix.lower() not in ENCODERS:
        raise InputError(f"image sequences are {', '.join(ENCODERS)} frames, not {pattern.suffix or 'no suffix'}: "
                         f"{pattern}")
    folder = pattern.parent
    if not folder.is_dir():
        raise InputError(f"no such folder: {folder}")
    regex = _pattern_regex(pattern.name)
    numbers = sorted(int(m.group(1)) for name in os.listdir(folder) if (m := regex.match(name)))
    if not numbers:
        raise InputError(f"no files match {pattern}")
    first, last = numbers[0], numbers[-1]
    if len(numbers) != last - first + 1:
        missing = sorted(set(range(first, last + 1)) - set(numbers))
        raise InputError(f"{pattern}: {len(missing)} frames missing between {first} and {last} "
                         f"({_ranges(missing)}): a gap would shift every later frame; fill it, or colour the "
                         f"parts as separate patterns")
    return ImageSequence(pattern, first, len(numbers))


def _ranges(numbers: list[int], most: int = 4) -> str:
    """[3, 4, 5, 9] -> '3-5, 9' (the first `most` runs)."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    text = ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in runs[:most])
    return text + (", ..." if len(runs) > most else "")


def folder_pattern(folder: Path) -> Path:
    """`--sequence`: the one numbered sequence in `folder` as a pattern (`reel1_000001.dpx` ... ->
    `reel1_%06d.dpx`; `%d` when the numbers are not all padded to one width)."""
    groups: dict[tuple[str, str], list[str]] = {}
    for name in sorted(os.listdir(folder)):
        m = _NUMBERED.match(name)
        if m and not name.startswith(".") and m.group(3).lower() in ENCODERS:
            groups.setdefault((m.group(1), m.group(3)), []).append(m.group(2))
    if not groups:
        raise InputError(f"no numbered {'/'.join(ENCODERS)} frames in {folder}")
    if len(groups) > 1:
        found = ", ".join(f"{p}%d{s} ({len(n)} frames)" for (p, s), n in groups.items())
        raise InputError(f"{folder} holds {len(groups)} sequences ({found}): give one as a pattern")
    (prefix, suffix), numbers = next(iter(groups.items()))
    widths = {len(n) for n in numbers}
    spec = f"%0{widths.pop()}d" if len(widths) == 1 else "%d"  # one width: padded (or never needing it)
    return folder / f"{prefix.replace('%', '%%')}{spec}{suffix}"


def output_pattern(pattern: Path, suffix: str) -> Path:
    """`reel1_%06d.dpx` -> `reel1_color_%06d.dpx`: the suffix before the number's separator."""
    match = _PATTERN.search(pattern.name)
    head, tail = pattern.name[:match.start()], pattern.name[match.start():]
    stem = head.rstrip("_-. ")
    return pattern.with_name(f"{stem}{suffix}{head[len(stem):]}{tail}")


def image_pix_fmt(codec: str, bits: int) -> str:
    """The RGB format `codec` writes for planes of `bits`: the depth kept (PNG and TIFF: 8 or 16)."""
    return IMAGE_PIX_FMTS[codec][bits]






def write_frames(images: Iterable[bytes], target: Path, first: int) -> int:
    """Write each encoded image (an iterable of bytes) to its numbered file: first into a hidden folder
    beside the target's, then moved into place, so no half-written frame is ever at a target name."""
    temp = target.parent / f".{target.name.replace('%', '')}.vidcolor-frames"
    temp.mkdir(exist_ok=True)
    written: list[Path] = []
    try:
        for i, data in enumerate(images):
            path = temp / frame_path(target, first + i).name
            path.write_bytes(data)
            written.append(path)
        for path in written:
            os.replace(path, target.parent / path.name)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from exc
    finally:
        for leftover in temp.iterdir():
            leftover.unlink()
        temp.rmdir()
    return len(written)
