"""High bit depth and lossless masters: --pix-fmt auto, FFV1 luma bit-identical, ProRes 4:2:2 10-bit in and out."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner

from vidcolor.cli import cli
from vidcolor.errors import OutputError
from vidcolor.media.formats import check_codec_pix_fmt, choose_pix_fmt

from conftest import planes_of


def write_deep_video(path: Path, codec: str, pix_fmt: str, frames: int = 6, width: int = 96, height: int = 64) -> list:
    """A gray clip whose Y uses every 10-bit code in its range (not only multiples of 4), chroma neutral."""
    rng = np.random.default_rng(0)
    ys = []
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=24)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        ramp = np.linspace(64, 940, width)[None, :] + np.linspace(-30, 30, height)[:, None]
        for i in range(frames):
            y = np.clip(np.roll(ramp, 4 * i, axis=1) + rng.integers(-3, 4, ramp.shape), 64, 940).astype(np.uint16)
            frame = av.VideoFrame(width, height, pix_fmt)
            for plane, values in zip(frame.planes, (y, None, None)):
                view = np.frombuffer(plane, np.uint16).reshape(plane.height, plane.line_size // 2)
                view[:, :plane.width] = values if values is not None else 512
            frame.pts = i
            ys.append(y)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return ys


def decoded(path: Path) -> tuple[str, str, list[tuple[np.ndarray, ...]]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [tuple(p.copy() for p in planes_of(f)) for f in container.decode(stream)]
        return stream.codec_context.name, stream.codec_context.pix_fmt, frames


def run(*args: str) -> None:
    result = CliRunner().invoke(cli, ["run", *args, "--render-size", "64"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("codec, source, width, height, expected", [
    ("libx264", "yuv420p", 64, 64, "yuv420p"),  # the common case is unchanged
    ("libx264", "yuv422p10le", 64, 64, "yuv422p10le"),  # depth and layout kept
    ("prores_ks", "yuv420p", 64, 64, "yuv422p10le"),  # nearest the codec takes, never fewer bits
    ("libx264", "yuv444p12le", 64, 64, "yuv444p10le"),  # fewest bits lost
    ("ffv1", "gray16le", 64, 64, "yuv420p16le"),  # a gray master: its depth, 4:2:0 chroma
    ("libx264", "yuv444p", 17, 9, "yuv444p"),  # odd sides cannot be subsampled
    ("libx264", "rgb48le", 64, 64, "yuv444p10le"),
])
def test_auto_pixel_format(codec, source, width, height, expected):
    assert choose_pix_fmt(codec, source, width, height) == expected


def test_a_format_the_codec_cannot_encode_names_what_it_takes():
    with pytest.raises(OutputError, match=r"^prores_ks cannot encode yuv420p: it takes yuv422p10le, yuv444p10le"):
        check_codec_pix_fmt("prores_ks", "yuv420p")


def colour_master(folder: Path, model: Path, suffix: str, codec: str) -> tuple[list, tuple]:
    """A 10-bit 4:2:2 master in `codec`, coloured with --codec `codec` and the default --pix-fmt auto:
    (its Y planes, the output's (codec, pix_fmt, planes))."""
    source = folder / f"master{suffix}"
    ys = write_deep_video(source, codec, "yuv422p10le")
    target = folder / f"out{suffix}"
    run(str(source), "-o", str(target), "--codec", codec, "--model", str(model))
    return ys, decoded(target)


def test_ffv1_master_keeps_luma_bit_identical_at_10_bits(tmp_path, make_model):
    ys, (codec, pix_fmt, frames) = colour_master(tmp_path, make_model(tmp_path / "m.pt"), ".mkv", "ffv1")
    assert (codec, pix_fmt) == ("ffv1", "yuv422p10le")
    assert len(frames) == len(ys)
    for y, (out_y, cb, cr) in zip(ys, frames):
        assert out_y.dtype == np.uint16 and np.array_equal(out_y, y)
        assert abs(float(cb.mean()) - 512) > 8 or abs(float(cr.mean()) - 512) > 8  # coloured, in 10-bit codes


def test_prores_422_10_bit_in_and_out(tmp_path, make_model):
    _, (codec, pix_fmt, frames) = colour_master(tmp_path, make_model(tmp_path / "m.pt"), ".mov", "prores_ks")
    assert codec == "prores" and pix_fmt == "yuv422p10le"
    _, _, source_frames = decoded(tmp_path / "master.mov")
    for (in_y, *_), (out_y, cb, cr) in zip(source_frames, frames):
        # ProRes is lossy: the re-encoded luma stays within a few 10-bit codes, and keeps codes 8-bit cannot hold
        assert np.abs(out_y.astype(int) - in_y).mean() < 2.0
        assert (out_y % 4 != 0).mean() > 0.5
        assert cb.shape == (64, 48) and abs(float(cb.mean()) - 512) > 8


def test_8_bit_source_to_10_bit_scales_luma_exactly(tmp_path, make_video, make_model):
    source = make_video(tmp_path / "clip.mkv", frames=3, width=64, height=48)
    target = tmp_path / "out.mkv"
    run(str(source), "-o", str(target), "--codec", "ffv1", "--pix-fmt", "yuv420p10le",
        "--model", str(make_model(tmp_path / "m.pt")))
    _, _, before = decoded(source)
    _, pix_fmt, after = decoded(target)
    assert pix_fmt == "yuv420p10le"
    for (y8, *_), (y10, *_) in zip(before, after):
        assert np.array_equal(y10, y8.astype(np.uint16) * 4)  # limited range: 16 -> 64, 235 -> 940
