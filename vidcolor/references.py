"""The colours a user chooses, read and checked before any work: `--reference IMAGE` and `--keyframe WHEN=IMAGE`.

Each check fails with one line that names the file, so a batch never starts on an unusable reference.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from .controls import MIN_REFERENCE_CHROMA
from .errors import InputError, OptionError

_TIME = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d+)?)$")


@dataclass(frozen=True)
class ColourImage:
    """A user's colour image: (H, W, 3) uint8 RGB, and the digest of the file (for the resume identity)."""

    path: Path
    rgb: np.ndarray
    digest: str

    @property
    def aspect(self) -> float:
        return self.rgb.shape[1] / self.rgb.shape[0]


@dataclass(frozen=True)
class When:
    """A keyframe's position: a frame number (0 is the first frame) or a time in seconds from the first frame."""

    text: str
    frame: int | None = None
    seconds: float | None = None

    def time(self, fps: Fraction | None) -> float:
        if self.seconds is not None:
            return self.seconds
        if self.frame == 0:  # the first frame needs no frame rate
            return 0.0
        if not fps:
            raise InputError(f"keyframe {self.text}: the video has no frame rate; give a time (HH:MM:SS.mmm)")
        return self.frame / float(fps)


@dataclass(frozen=True)
class Keyframe:
    when: When
    image: ColourImage


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def mean_chroma(rgb: np.ndarray) -> float:
    """Mean a*b* chroma (CIE L*a*b*, D65) of an RGB image, on a copy at most 256 px on its long side."""
    import cv2

    scale = 256 / max(rgb.shape[:2])
    small = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else rgb
    lab = cv2.cvtColor(small.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    return float(np.hypot(lab[..., 1], lab[..., 2]).mean())


def read_colour_image(path: Path, what: str) -> ColourImage:
    """Read `path` (any format and size OpenCV reads, EXIF orientation applied) as 8-bit RGB; a missing,
    unreadable or gray image is an InputError naming `what` (reference, keyframe 120, ...)."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} image not found: {path}")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        raise InputError(f"{what} image cannot be read (not an image, or corrupt): {path}")
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    chroma = mean_chroma(rgb)
    if chroma < MIN_REFERENCE_CHROMA:
        shown = math.floor(chroma * 100) / 100  # never rounded up to the threshold it is under
        raise InputError(f"{what} image is gray (mean chroma {shown:.2f}, under {MIN_REFERENCE_CHROMA:g}; "
                         f"a colour image is needed): {path}")
    return ColourImage(path, rgb, file_digest(path))


def parse_when(text: str) -> When:
    """`120` (frame number), `00:01:23.480` / `1:23.48` (time) or `83.48s` (seconds)."""
    t = text.strip()
    if t.isdigit():
        return When(t, frame=int(t))
    if t.endswith("s") and _is_number(t[:-1]):
        seconds = float(t[:-1])
    elif m := _TIME.match(t):
        hours, minutes, secs = int(m.group(1) or 0), int(m.group(2)), float(m.group(3))
        if minutes >= 60 or secs >= 60:
            raise OptionError(f"keyframe time {text!r}: minutes and seconds must be below 60")
        seconds = hours * 3600 + minutes * 60 + secs
    else:
        raise OptionError(f"keyframe position {text!r}: expected a frame number (120) or a time (00:01:23.480)")
    if not math.isfinite(seconds) or seconds < 0:
        raise OptionError(f"keyframe time {text!r} must be zero or positive")
    return When(t, seconds=seconds)


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def parse_keyframe(spec: str) -> tuple[When, Path]:
    """`WHEN=IMAGE` -> (When, image path); the image is read later, with the others."""
    when, sep, image = spec.partition("=")
    if not sep or not when.strip() or not image:
        raise OptionError(f"--keyframe {spec!r}: expected WHEN=IMAGE, e.g. 120=frame120.png or 00:01:23.480=shot.png")
    return parse_when(when), Path(image)


def load_keyframes(specs: list[str]) -> list[Keyframe]:
    """Parse and read every `--keyframe`; two keyframes at the same position are refused."""
    keyframes = []
    for spec in specs:
        when, path = parse_keyframe(spec)
        keyframes.append(Keyframe(when, read_colour_image(path, f"keyframe {when.text}")))
    seen = [(k.when.frame, k.when.seconds) for k in keyframes]
    if len(set(seen)) != len(seen):
        raise OptionError("two keyframes are given for the same position")
    return keyframes
