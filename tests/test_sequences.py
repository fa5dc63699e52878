"""Film-scan image sequences: 16-bit TIFF and 10-bit DPX in and out, --sequence folders, --fps, resume, bad input."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner

from vidcolor.cli import cli
from vidcolor.media import OutputOptions
from vidcolor.pipeline import Colorizer

from conftest import planes_of

W, H = 64, 48


def gray_frames(count: int, bits: int) -> list[np.ndarray]:
    """(H,W) gray levels at `bits`, a moving ramp with fine steps an 8-bit file could not hold."""
    top = (1 << bits) - 1
    ramp = np.linspace(0.1, 0.9, W)[None, :] * np.ones((H, 1))
    return [np.round(np.roll(ramp, 3 * i, axis=1) * top + (np.arange(W) % 3)).astype(np.uint16) for i in range(count)]


def write_sequence(folder: Path, name: str, codec: str, pix_fmt: str, bits: int, count: int = 8, first: int = 1001,
                   size: tuple[int, int] = (W, H), every: int = 1) -> list[np.ndarray]:
    """Numbered gray frames `name` % n (n = first, first + every, ...) written by FFmpeg's own `codec`."""
    folder.mkdir(parents=True, exist_ok=True)
    grays = gray_frames(count, bits)
    for i, g in enumerate(grays):
        g = np.resize(g, size[::-1]) if size != (W, H) else g
        rgb = np.repeat((g.astype(np.uint32) * 65535 // ((1 << bits) - 1)).astype(np.uint16)[..., None], 3, axis=2)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb48le").reformat(format=pix_fmt)
        context = av.CodecContext.create(codec, "w")
        context.width, context.height, context.pix_fmt = frame.width, frame.height, pix_fmt
        context.time_base = Fraction(1, 24)
        frame.pts = 0
        packets = context.encode(frame) + context.encode(None)
        (folder / (name % (first + i * every))).write_bytes(b"".join(bytes(p) for p in packets))
    return grays


def read_frames(pattern: Path, first: int) -> tuple[str, str, list[np.ndarray]]:
    """(codec, pix_fmt, frames as (H,W,3) uint16 RGB at 16 bits)."""
    with av.open(str(pattern), format="image2", options={"start_number": str(first)}) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        return (stream.codec_context.name, frames[0].format.name,
                [f.reformat(format="rgb48le").to_ndarray() for f in frames])


def cli_run(*args: str) -> str:
    result = CliRunner().invoke(cli, ["run", *args, "--render-size", "64"])
    assert result.exit_code == 0, result.output
    return result.output


def test_16_bit_tiff_sequence_in_and_out(tmp_path, make_model):
    grays = write_sequence(tmp_path / "scans", "reel_%04d.tif", "tiff", "rgb48le", 16)
    (tmp_path / "colour").mkdir()
    cli_run(str(tmp_path / "scans" / "reel_%04d.tif"), "-o", str(tmp_path / "colour" / "c_%04d.tif"),
            "--model", str(make_model(tmp_path / "m.pt")))
    assert sorted(p.name for p in (tmp_path / "colour").iterdir()) == [f"c_{n}.tif" for n in range(1001, 1009)]
    codec, pix_fmt, frames = read_frames(tmp_path / "colour" / "c_%04d.tif", 1001)
    assert (codec, pix_fmt) == ("tiff", "rgb48le")
    for gray, rgb in zip(grays, frames):
        assert rgb.shape == (H, W, 3)
        assert (rgb % 257 != 0).mean() > 0.5  # 16-bit samples, not 8-bit ones widened
        spread = rgb.astype(int).max(axis=2) - rgb.astype(int).min(axis=2)
        assert spread.mean() > 1000  # coloured
        luma = rgb.astype(float) @ np.array([0.2126, 0.7152, 0.0722])  # untagged HD-size frames: BT.601 or 709
        assert np.corrcoef(luma.ravel(), gray.ravel())[0, 1] > 0.99


def test_10_bit_dpx_folder_with_sequence_flag(tmp_path, make_model):
    write_sequence(tmp_path / "reel1", "reel1_%06d.dpx", "dpx", "gbrp10le", 10, count=5, first=0)
    cli_run(str(tmp_path / "reel1"), "--sequence", "--model", str(make_model(tmp_path / "m.pt")))
    out = tmp_path / "reel1_color"
    assert sorted(p.name for p in out.iterdir()) == [f"reel1_{n:06d}.dpx" for n in range(5)]
    codec, pix_fmt, frames = read_frames(out / "reel1_%06d.dpx", 0)
    assert (codec, pix_fmt) == ("dpx", "gbrp10le") and len(frames) == 5
    assert ((frames[0] >> 6) % 4 != 0).mean() > 0.3  # 10-bit codes, not 8-bit ones widened


def test_sequence_to_video_at_fps(tmp_path, make_model):
    write_sequence(tmp_path / "scans", "f%d.png", "png", "rgb48be", 16, count=6, first=8)  # f8 ... f13: unpadded
    target = tmp_path / "reel.mkv"
    cli_run(str(tmp_path / "scans" / "f%d.png"), "-o", str(target), "--fps", "12", "--codec", "ffv1",
            "--model", str(make_model(tmp_path / "m.pt")))
    with av.open(str(target)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        assert len(frames) == 6 and stream.average_rate == 12
        assert frames[0].format.name == "yuv444p16le" and planes_of(frames[0])[0].max() > 255


def test_interrupted_sequence_resumes_identical(tmp_path, make_model):
    model = make_model(tmp_path / "m.pt", gain=0.5)
    write_sequence(tmp_path / "scans", "s_%03d.png", "png", "rgb48be", 16, count=12, first=1)
    source = tmp_path / "scans" / "s_%03d.png"
    colorizer = Colorizer(model, device="cpu", render_size=64, batch_size=2)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    colorizer.run(source, tmp_path / "a" / "s_%03d.png", OutputOptions(), segment_seconds=0.25)

    def stop_after(frames: int):
        def progress(done, total):
            if done >= frames:
                raise KeyboardInterrupt
        return progress

    with pytest.raises(KeyboardInterrupt):
        colorizer.run(source, tmp_path / "b" / "s_%03d.png", OutputOptions(), stop_after(8), segment_seconds=0.25)
    assert list((tmp_path / "b").glob("s_*.png")) == []  # nothing at the target names until the end
    resumed = colorizer.run(source, tmp_path / "b" / "s_%03d.png", OutputOptions(), segment_seconds=0.25)
    assert resumed.frames_resumed == 6 and resumed.frames_out == 12
    for n in range(1, 13):
        a, b = (tmp_path / d / f"s_{n:03d}.png" for d in "ab")
        assert a.read_bytes() == b.read_bytes()


def test_bad_sequences_each_get_one_line(tmp_path, make_model):
    model = str(make_model(tmp_path / "m.pt"))
    write_sequence(tmp_path / "gap", "g_%02d.png", "png", "rgb24", 8, count=4, first=1, every=2)  # 1 3 5 7
    write_sequence(tmp_path / "mixed", "m_%02d.png", "png", "rgb24", 8, count=3, first=1)
    write_sequence(tmp_path / "mixed", "m_%02d.png", "png", "rgb24", 8, count=1, first=4, size=(32, 24))
    write_sequence(tmp_path / "two", "a_%02d.png", "png", "rgb24", 8, count=2)
    write_sequence(tmp_path / "two", "b_%02d.png", "png", "rgb24", 8, count=2)
    cases = [
        ([str(tmp_path / "gap" / "g_%02d.png")], "3 frames missing between 1 and 7 (2, 4, 6)"),
        ([str(tmp_path / "none_%04d.dpx")], "no files match"),
        ([str(tmp_path / "mixed" / "m_%02d.png")], "frame 3 of the sequence is 32x24, the first 64x48"),
        ([str(tmp_path / "two"), "--sequence"], "holds 2 sequences"),
    ]
    for args, message in cases:
        result = CliRunner().invoke(cli, ["run", *args, "--model", model, "--render-size", "64"])
        assert result.exit_code == 1 and message in result.output, result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "mixed_color").exists() and not list((tmp_path / "mixed").glob("*_color*"))
    outputs = [(tmp_path / "one.png", "not one picture: name the frames with a pattern (one_%06d.png)"),
               (tmp_path / "f_%04d.jpg", "numbered frames are written as .dpx, .tif, .tiff, .png, not .jpg")]
    for target, message in outputs:
        result = CliRunner().invoke(cli, ["run", str(tmp_path / "mixed" / "m_%02d.png"), "-o", str(target),
                                          "--model", model])
        assert result.exit_code == 1 and message in result.output, result.output
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "gap" / "g_%02d.png"), "--fps", "0"])
    assert result.exit_code == 2 and "--fps" in result.output


def test_a_scan_folder_without_sequence_flag_gets_a_hint(tmp_path):
    write_sequence(tmp_path / "reel", "r_%04d.dpx", "dpx", "rgb24", 8, count=24)
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "reel")])
    assert result.exit_code == 2 and "looks like an image sequence (r_%04d.dpx, 24 frames): add --sequence" in result.output


def test_a_16_bit_gray_tiff_scan_sequence_stays_16_bit(tmp_path, make_model):
    """Film scanners write 16-bit grayscale TIFFs: the coloured frames keep 16 bits (and the scan's luma)."""
    import cv2

    model = make_model(tmp_path / "m.pt", ab=(0.0, 0.0))  # neutral: the output is the scan's own gray
    (tmp_path / "scan").mkdir()
    (tmp_path / "out").mkdir()
    for i in range(1, 4):
        gray = (np.arange(48 * 64).reshape(48, 64) * 19 + 977 * i).astype(np.uint16)
        assert cv2.imwrite(str(tmp_path / "scan" / f"r_{i:04d}.tif"), gray)
    Colorizer(model, device="cpu", render_size=64).run(tmp_path / "scan" / "r_%04d.tif",
                                                        tmp_path / "out" / "c_%04d.tif")
    out = cv2.imread(str(tmp_path / "out" / "c_0002.tif"), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and out.shape == (48, 64, 3)
    source = cv2.imread(str(tmp_path / "scan" / "r_0002.tif"), cv2.IMREAD_UNCHANGED).astype(float)
    assert np.abs(out[..., 1] - source).max() <= 2  # 16-bit precision, not 8-bit steps of 257
    assert (out[..., 1] % 257 != 0).mean() > 0.9
