"""The user's colours for one Colorizer: reference images, keyframes and hints, checked at once, matched in the
model stage (`exemplar`) and carried through shots in the finishing stage (`keyframes`, `hints`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from .controls import CODEC, REFERENCE_STRENGTH, REFERENCE_STRENGTH_RANGE
from .device import upload_luma
from .errors import OptionError
from .exemplar import Predict, ReferenceBank
from .hints import Hint, hint_tracks, load_hints
from .keyframes import Carried, CarriedStack, keyframe_tracks
from .media import VideoInfo, VideoReader, chroma_stride, resolve_pix_fmt
from .references import ColourImage, Keyframe, load_keyframes, read_colour_image


def check_strength(value: float) -> float:
    lo, hi = REFERENCE_STRENGTH_RANGE
    if not lo <= value <= hi:  # False for NaN as well
        raise OptionError(f"reference strength must be from {lo:g} to {hi:g}, got {value}")
    return float(value)


class Guidance:
    """References, keyframes and hints, read and checked when built (before any work); a keyframe is also a
    reference for the rest of the film. `strength`: how far matched reference colour overrides the
    model's (keyframes are exact at their frame whatever it is). Hints win at the pixels they reach, keyframes
    at their own frames (hints are not applied there)."""

    def __init__(self, references: Sequence[ColourImage], keyframes: Sequence[Keyframe],
                 strength: float = REFERENCE_STRENGTH, hints: Sequence[Hint] = ()):
        self.references = list(references)
        self.keyframes = list(keyframes)
        self.hints = list(hints)
        self.strength = check_strength(strength)
        self.bank: ReferenceBank | None = None

    @classmethod
    def load(cls, references: Sequence[str | Path], keyframes: Sequence[str],
             strength: float = REFERENCE_STRENGTH, hints: Sequence[str] = ()) -> Guidance | None:
        """None when there is nothing to guide by: the automatic path stays exactly as it was."""
        check_strength(strength)
        if not references and not keyframes and not hints:
            return None
        return cls([read_colour_image(Path(p), "reference") for p in references], load_keyframes(list(keyframes)),
                   strength, load_hints(list(hints)))

    @property
    def matches(self) -> bool:
        """Whether frames are matched against colour images (references, keyframes): hints alone need not."""
        return bool(self.references or self.keyframes)

    def identity(self) -> dict[str, Any]:
        """For the resume identity: the images' contents (not their names), the positions, the strength."""
        out = {"references": [r.digest for r in self.references],
               "keyframes": [[k.when.text, k.image.digest] for k in self.keyframes], "strength": self.strength}
        if self.hints:
            out["hints"] = [[h.when.text, h.digest] for h in self.hints]
        return out

    def prepare(self, predict: Predict, render_size: int, device: torch.device) -> None:
        """Compute the references' features once, with the model that will colour the frames."""
        images = [r.rgb for r in self.references] + [k.image.rgb for k in self.keyframes]
        if images:
            self.bank = ReferenceBank.from_images(images, predict, render_size, device)

    def blend(self, ab: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return ab if self.bank is None else self.bank.blend(ab, features, self.strength)

    def tracks(self, source: Path, video: VideoInfo, pix_fmt: str, render_hw: tuple[int, int],
               device: torch.device) -> dict[int, Carried | CarriedStack]:
        """The keyframes' and hints' colours carried through their shots, by pts (`keyframes.keyframe_tracks`,
        `hints.hint_tracks`). At a frame that several
        reach: the keyframe's colour, then the hints', farthest first; at a keyframe's own frame, only it."""
        if not self.keyframes and not self.hints:
            return {}

        def frames(start_pts: int | None) -> Iterator[tuple[list[int], torch.Tensor]]:
            reader = VideoReader(source, video, pix_fmt, batch_size=8, start_pts=start_pts)
            with contextlib.closing(reader):
                reader.start()
                for batch in reader:
                    yield [f.pts for f in batch], upload_luma([f.planes[0] for f in batch], device, batch[0].bits)

        with contextlib.closing(frames(None)) as stream:
            first_pts = next(stream)[0][0]
        end_pts = first_pts + round(video.duration / video.time_base) if video.duration else None
        output_pix_fmt = resolve_pix_fmt(pix_fmt, CODEC, video.pix_fmt, video.width, video.height)  # `auto` too
        stride = chroma_stride(output_pix_fmt)
        keyed = keyframe_tracks(frames, self.keyframes, video, render_hw, first_pts, end_pts, stride) \
            if self.keyframes else {}
        if not self.hints:
            return keyed
        with torch.inference_mode():
            hinted = hint_tracks(frames, self.hints, video, render_hw, first_pts, end_pts, stride)
        out: dict[int, Carried | CarriedStack] = dict(keyed)
        for pts, entries in hinted.items():
            key = keyed.get(pts)
            if key is not None and key.exact:
                continue
            ordered = [entry for _, entry in sorted(entries, key=lambda e: -e[0])]
            out[pts] = CarriedStack(([key] if key is not None else []) + ordered)
        return out
