"""What one `Colorizer.run` did: frames in and out, losses, what the output kept, timings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .media import OutputPlan


@dataclass
class RunResult:
    input: Path
    output: Path
    frames_out: int  # decoded and encoded (one count: every decoded frame is encoded)
    frames_expected: int | None  # the container's frame count, else duration x frame rate
    decode_errors: int  # packets the decoder rejected
    seconds: float  # wall clock, start to renamed output
    timings: dict[str, float] = field(default_factory=dict)  # busy seconds per stage
    warnings: list[str] = field(default_factory=list)
    frames_estimated: bool = False  # frames_expected came from the duration
    segments: int = 1  # segments the video was encoded in
    frames_resumed: int = 0  # frames taken from the finished segments of an interrupted run
    plan: OutputPlan | None = None  # what the output kept of the source, and what not (and why)
    losses: list[str] = field(default_factory=list)  # known damage to the input (truncated, still growing)

    @property
    def frames_lost(self) -> int:
        """Frames the container promised that did not decode (corrupt or truncated input).

        A count estimated from the duration may be one frame high (start offsets, rounding),
        so a shortfall of one frame is not reported then.
        """
        shortfall = max(0, self.frames_expected - self.frames_out) if self.frames_expected else 0
        return 0 if self.frames_estimated and shortfall <= 1 else shortfall

    @property
    def frames_extra(self) -> int:
        """Frames decoded beyond the container's count (an index or duration that is too short)."""
        extra = max(0, self.frames_out - self.frames_expected) if self.frames_expected else 0
        return 0 if self.frames_estimated and extra <= 1 else extra

    @property
    def fps(self) -> float:
        return self.frames_out / self.seconds if self.seconds > 0 else 0.0
