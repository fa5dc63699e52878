"""Shared fixtures: real test videos written with PyAV, and tiny generator checkpoints.

`make_video(path, **spec) -> Path` writes a clip with moving shapes (and scene cuts at
known frames) so decode, colour, timestamp, audio and rotation handling are all exercised
on real files; `read_video(path, planes=False) -> VideoFacts` reads back what tests compare.
`make_model(path, ab=...) -> Path` saves a small random U-Net whose output is close to a
constant ab, so tests can tell whether chroma got through; `tiny_model` (clear colour) and
`neutral_model` (exactly ab = 0) are ready-made checkpoints.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from av.sidedata.sidedata import Type as SideDataType

from vidcolor.checkpoint import save_checkpoint
from vidcolor.nets import build_generator, init_weights

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TINY_CONFIG = {"num_downs": 5, "ngf": 8}  # size_multiple 32, ~0.1 M parameters
TAGS = {  # colorspace, primaries, trc (FFmpeg AVColor* values)
    "bt709": (1, 1, 1),
    "bt601": (6, 6, 6),
}
VFR_PATTERN = (1.0, 2.0, 0.5, 1.5)  # frame durations in units of 1/fps
AUDIO_RATE = 48000


def frame_time_base(fps: Fraction, vfr: bool) -> Fraction:
    """Ticks fine enough for the VFR pattern (a quarter of 1/fps: 1/fps * 0.5 must be whole)."""
    return 1 / (fps * 4) if vfr else 1 / fps


def frame_pts(frames: int, fps: int | Fraction = 24, vfr: bool = False) -> list[int]:
    """The timestamps `make_video` gives its frames, in `frame_time_base` units."""
    ticks = [int(4 * d) if vfr else 1 for d in (VFR_PATTERN * frames)[:frames]]
    return [sum(ticks[:i]) for i in range(frames)]


def scene_of(index: int, cuts: tuple[int, ...]) -> int:
    return sum(index >= c for c in cuts)


@functools.lru_cache(maxsize=8)
def scene_background(scene: int, width: int, height: int, gray: bool) -> np.ndarray:
    """Each scene has its own brightness, texture and (if colourful) tint, so cuts are obvious."""
    yy, xx = np.ogrid[0:height, 0:width]
    level = (50, 200, 110, 230, 80)[scene % 5]
    background = level + 25 * np.sin(xx / (9 + 7 * (scene % 3)) + yy / 13)
    tint = (1.0, 1.0, 1.0) if gray else [(1.0, 0.8, 0.6), (0.6, 0.9, 1.0), (0.8, 1.0, 0.7)][scene % 3]
    return (background[..., None] * np.array(tint)).clip(0, 255).astype(np.uint8)


def draw_frame(index: int, width: int, height: int, gray: bool, cuts: tuple[int, ...]) -> np.ndarray:
    """RGB (H,W,3) uint8: the scene's background with a disc and a bar that move every frame."""
    rgb = scene_background(scene_of(index, cuts), width, height, gray).copy()
    yy, xx = np.ogrid[0:height, 0:width]
    cx, cy = (20 + 5 * index) % width, height / 2 + height / 4 * math.sin(index / 5)
    rgb[(xx - cx) ** 2 + (yy - cy) ** 2 < (min(width, height) / 6) ** 2] = (235, 235, 235) if gray else (230, 40, 40)
    rgb[(np.abs(yy - (3 * index) % height) < height / 12) & (xx > width / 2)] = (20, 20, 20) if gray else (30, 60, 220)
    return rgb


def write_video(path: str | Path, width: int = 322, height: int = 182, frames: int = 24, fps: int | Fraction = 24,
                audio: bool = False, vfr: bool = False, rotation: int = 0, gray: bool = True,
                cuts: tuple[int, ...] = (), codec: str = "libx264", pix_fmt: str = "yuv420p",
                colorspace: str | None = None, preset: str = "ultrafast", subtitles: bool = False,
                mirrored: bool = False) -> Path:
    """Write a test clip (creating its folder); see the module docstring. Container from the suffix.

    vfr: frame durations cycle through VFR_PATTERN / fps (timestamps: `frame_pts`).
    rotation: display-matrix rotation in degrees (counter-clockwise, as PyAV reads it back);
    mirrored adds a horizontal flip to that matrix.
    colorspace: None leaves the colour tags unset; 'bt709' or 'bt601' tags them (limited range).
    audio: an AAC mono tone as long as the video.
    subtitles: a SubRip stream with one line every 10 frames (Matroska only).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fps = Fraction(fps)
    time_base = frame_time_base(fps, vfr)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps, options={"preset": preset})
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.time_base = stream.codec_context.time_base = time_base
        if colorspace:
            ctx = stream.codec_context
            ctx.colorspace, ctx.color_primaries, ctx.color_trc = TAGS[colorspace]
            ctx.color_range = 1
        if rotation or mirrored:
            stream.set_display_rotation(rotation, hflip=mirrored)
        audio_stream = container.add_stream("aac", rate=AUDIO_RATE, layout="mono") if audio else None
        subtitle_stream = container.add_mux_stream("subrip") if subtitles else None
        sws = {"bt709": "itu709"}.get(colorspace, "itu601")
        pts = frame_pts(frames, fps, vfr)
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(draw_frame(i, width, height, gray, cuts), format="rgb24")
            frame = frame.reformat(format=pix_fmt, dst_colorspace=sws, dst_color_range=1)
            frame.pts, frame.time_base = pts[i], time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if audio_stream is not None:
            end = (pts[-1] + (int(4 * VFR_PATTERN[(frames - 1) % 4]) if vfr else 1)) * time_base
            samples = int(end * AUDIO_RATE)
            tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / AUDIO_RATE)).astype(np.float32)
            for start in range(0, samples, 1024):
                chunk = av.AudioFrame.from_ndarray(tone[None, start:start + 1024], format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts = AUDIO_RATE, start
                container.mux(audio_stream.encode(chunk))
            container.mux(audio_stream.encode(None))
        if subtitle_stream is not None:
            subtitle_stream.time_base = time_base
            for i in range(0, frames, 10):
                packet = av.Packet(f"subtitle {i}".encode())
                packet.stream, packet.time_base = subtitle_stream, time_base
                packet.pts = packet.dts = pts[i]
                packet.duration = pts[min(i + 5, frames - 1)] - pts[i]
                container.mux(packet)
    return path


def write_model(path: str | Path, ab: tuple[float, float] = (0.4, 0.3), gain: float = 0.02) -> Path:
    """A tiny U-Net checkpoint whose output is about `ab` (normalised, i.e. Lab ab / 110) everywhere.

    pix2pix's N(0, 0.02) init keeps the random part small, so the last layer's bias sets the
    colour; a larger `gain` makes the colour depend on the content. ab = (0, 0) also zeroes
    the last weights, so the output is exactly neutral.
    """
    torch.manual_seed(0)
    net = init_weights(build_generator("unet", TINY_CONFIG), gain=gain)
    last = net.model.model[3]
    with torch.no_grad():
        last.bias.copy_(torch.tensor(ab).atanh())
        if not any(ab):
            last.weight.zero_()
    return save_checkpoint(path, net, "unet", TINY_CONFIG, meta={"purpose": "tests"})


@dataclass
class VideoFacts:
    """What a file holds, as decoded by PyAV directly (independently of vidcolor.media)."""

    width: int
    height: int
    pix_fmt: str
    time_base: Fraction
    pts: list[int]
    duration: Fraction | None  # video stream duration in seconds
    rotation: int
    display_matrix: bytes | None  # raw AV_FRAME_DATA_DISPLAYMATRIX of the first frame
    color: tuple[int, int, int, int]  # colorspace, range, primaries, trc of the first frame
    audio_packets: list[tuple[Fraction, bytes]] = field(default_factory=list)  # (time, data), first audio stream
    subtitle_packets: list[tuple[Fraction, bytes]] = field(default_factory=list)  # (time, text), first subtitles
    planes: list[tuple[np.ndarray, ...]] = field(default_factory=list)  # per frame, if asked for

    @property
    def times(self) -> list[Fraction]:
        return [p * self.time_base for p in self.pts]


def planes_of(frame: av.VideoFrame) -> tuple[np.ndarray, ...]:
    """A planar frame's planes as (h, w) arrays: uint8 at 8 bits, uint16 for the `..le` formats above."""
    dtype = np.dtype(np.uint8) if frame.format.components[0].bits <= 8 else np.dtype("<u2")
    return tuple(np.frombuffer(p, dtype).reshape(p.height, p.line_size // dtype.itemsize)[:, :p.width]
                 for p in frame.planes)


def read_video_file(path: str | Path, planes: bool = False) -> VideoFacts:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames, audio, subtitles = [], [], []
        for packet in container.demux(stream, *container.streams.audio[:1], *container.streams.subtitles[:1]):
            if packet.stream.type == "video":
                frames += packet.decode()
            elif packet.size:
                (audio if packet.stream.type == "audio" else subtitles).append(
                    (packet.pts * packet.time_base, bytes(packet)))
        first = frames[0]
        return VideoFacts(
            width=first.width, height=first.height, pix_fmt=first.format.name, time_base=stream.time_base,
            pts=[f.pts for f in frames], rotation=first.rotation,
            display_matrix=bytes(m) if (m := first.side_data.get(SideDataType.DISPLAYMATRIX)) is not None else None,
            duration=stream.duration * stream.time_base if stream.duration else None,
            color=(first.colorspace, first.color_range, first.color_primaries, first.color_trc),
            audio_packets=audio, subtitle_packets=subtitles, planes=[planes_of(f) for f in frames] if planes else [],
        )


def write_audio_only(path: Path) -> Path:
    """An AAC file with no video stream."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=48000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 48000, 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@pytest.fixture(scope="session")
def make_video():
    """Factory: make_video(path, width=322, height=182, frames=24, fps=24, audio=False, vfr=False,
    rotation=0, gray=True, cuts=(), codec='libx264', pix_fmt='yuv420p', colorspace=None,
    preset='ultrafast', subtitles=False, mirrored=False) -> Path."""
    return write_video


@pytest.fixture(scope="session")
def read_video():
    """Factory: read_video(path, planes=False) -> VideoFacts (planes: planar formats, uint8 or uint16)."""
    return read_video_file


@pytest.fixture(scope="session")
def make_model():
    """Factory: make_model(path, ab=(0.4, 0.3), gain=0.02) -> Path of a tiny checkpoint predicting about `ab`."""
    return write_model


@pytest.fixture
def tiny_model(tmp_path) -> Path:
    """A tiny checkpoint with clearly visible colour (ab ~ (44, 33) in Lab units)."""
    return write_model(tmp_path / "tiny.pt")


@pytest.fixture
def neutral_model(tmp_path) -> Path:
    """A tiny checkpoint predicting exactly ab = 0 (gray)."""
    return write_model(tmp_path / "neutral.pt", ab=(0.0, 0.0))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """/work/shared/data (or the equivalent beside the repo); skips the test when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA
