"""Bad and unusual inputs: each gives a clear one-line outcome, and the batch goes on.

Covered elsewhere (not repeated here): a text file named .mp4, audio-only files, a missing
file (test_cli); truncated files (test_cli, test_pipeline); odd-sized 4:4:4, rotation, mirrored
video, variable frame rate, output equal to the input (test_pipeline, test_cli); unicode and
spaces in paths (test_batch); 10-bit/gray/full-range decoding (test_media).
"""

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner

from vidcolor.cli import cli
from vidcolor.errors import OutputError
from vidcolor.media import OutputOptions, writer
from vidcolor.pipeline import Colorizer

REPO = Path(__file__).resolve().parents[1]
FAST = OutputOptions(preset="ultrafast")


@pytest.fixture(scope="module")
def model(tmp_path_factory, make_model):
    return make_model(tmp_path_factory.mktemp("model") / "tiny.pt")


def write_interlaced(path: Path, frames: int = 6) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"preset": "ultrafast", "flags": "+ildct+ilme"})
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for i in range(frames):
            rgb = np.zeros((240, 320, 3), np.uint8)
            rgb[i::2] = 40 * i  # fields differ, as in real interlaced footage
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with av.open(str(path)) as container:
        assert next(container.decode(video=0)).interlaced_frame
    return path


def write_corrupt(path: Path, make_video) -> Path:
    make_video(path, frames=40, gray=False)
    data = bytearray(path.read_bytes())
    for offset in range(len(data) // 3, len(data) * 2 // 3, len(data) // 12):
        data[offset:offset + 600] = np.random.default_rng(offset).integers(0, 256, 600, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


# name -> (how to make it, expected status, text in the message, frames written or None)
CASES = {
    "empty.mp4": (lambda p, mv: p.write_bytes(b""), "failed", "empty file (0 bytes)", None),
    "corrupt.mp4": (write_corrupt, "done", "frames lost to corrupt or truncated data", None),
    # --pix-fmt auto keeps 4:4:4, which odd sides can have
    "one_pixel.mkv": (lambda p, mv: mv(p, width=1, height=1, frames=3, pix_fmt="yuv444p"), "done", "", 3),
    "odd_17x9.mkv": (lambda p, mv: mv(p, width=17, height=9, frames=3, pix_fmt="yuv444p"), "done", "", 3),
    "ten_bit.mkv": (lambda p, mv: mv(p, frames=4, pix_fmt="yuv420p10le"), "done", "", 4),
    "interlaced.mp4": (lambda p, mv: write_interlaced(p), "done", "", 6),
    "colour.mp4": (lambda p, mv: mv(p, frames=4, gray=False), "done", "", 4),
    "rotated phone.mp4": (lambda p, mv: mv(p, frames=4, rotation=270, width=182, height=322), "done", "", 4),
}


@pytest.fixture(scope="module")
def batch(tmp_path_factory, make_video, model):
    """All the cases in one batch run through the CLI, with a JSON report."""
    folder = tmp_path_factory.mktemp("bad")
    (folder / "in").mkdir()
    for name, (make, *_) in CASES.items():
        make(folder / "in" / name, make_video)
    report = folder / "report.json"
    result = CliRunner(env={"COLUMNS": "300"}).invoke(cli, [
        "run", str(folder / "in"), "--output-dir", str(folder / "out"), "--model", str(model), "--render-size", "64",
        "--preset", "ultrafast", "--report", str(report)])
    rows = {Path(f["input"]).name: f for f in json.loads(report.read_text())["files"]}
    return folder, result, rows


def test_batch_goes_on_and_fails_only_for_the_failures(batch):
    _, result, rows = batch
    assert result.exit_code == 1
    assert set(rows) == set(CASES)
    assert "Traceback" not in result.output


@pytest.mark.parametrize("name", list(CASES))
def test_outcome(batch, read_video, name):
    folder, _, rows = batch
    _, status, message, frames = CASES[name]
    row = rows[name]
    assert row["status"] == status, row
    assert message in row["message"] and "\n" not in row["message"]
    if status == "done":
        output = read_video(row["output"])
        assert len(output.pts) == row["frames"]
        if frames is not None:
            assert row["frames"] == frames and row["frames_lost"] == 0
    else:
        assert not Path(row["output"]).exists()
    assert not [p for p in (folder / "out").rglob(".*")], "temp files or work folders left behind"


def test_corrupt_input_reports_its_losses(batch):
    row = batch[2]["corrupt.mp4"]
    assert 0 < row["frames"] < 40 and row["frames_lost"] == 40 - row["frames"]


def test_rotation_kept(batch, read_video):
    row = batch[2]["rotated phone.mp4"]
    source, output = read_video(row["input"]), read_video(row["output"])
    assert output.display_matrix == source.display_matrix and output.rotation % 360 == 270


def test_odd_sizes_work_in_444(tmp_path, make_video, read_video, model):
    for width, height in ((1, 1), (17, 9)):
        source = make_video(tmp_path / f"{width}x{height}.mkv", width=width, height=height, frames=3,
                            pix_fmt="yuv444p")
        result = Colorizer(model, device="cpu", render_size=64).run(
            source, tmp_path / f"out{width}.mkv", OutputOptions(preset="ultrafast", pix_fmt="yuv444p"))
        facts = read_video(result.output)
        assert (facts.width, facts.height, len(facts.pts)) == (width, height, 3)


def test_colour_input_uses_its_lightness_only(tmp_path, make_video, read_video, neutral_model):
    """An input already in colour: its L is kept, its own chroma replaced (here by the neutral model's gray)."""
    source = make_video(tmp_path / "colour.mp4", frames=3, gray=False)
    result = Colorizer(neutral_model, device="cpu", render_size=64).run(source, tmp_path / "out.mp4", FAST)
    src, out = read_video(source, planes=True), read_video(result.output, planes=True)
    assert np.mean([np.abs(p[1].astype(int) - 128).mean() for p in src.planes]) > 5  # really colourful
    assert np.mean([np.abs(p[i].astype(int) - 128).mean() for p in out.planes for i in (1, 2)]) < 1.5
    luma_error = np.mean([np.abs(a[0].astype(int) - b[0].astype(int)).mean() for a, b in zip(src.planes, out.planes)])
    assert luma_error < 2


def test_output_folder_missing_read_only_or_full(tmp_path, make_video, model, monkeypatch):
    source = make_video(tmp_path / "clip.mp4", frames=3)
    colorizer = Colorizer(model, device="cpu", render_size=64)
    # -o into a missing folder: a clear error (--output-dir, by contrast, is created: test_cli).
    with pytest.raises(OutputError, match="output folder does not exist"):
        colorizer.run(source, tmp_path / "nowhere" / "out.mp4", FAST)
    if os.geteuid() != 0:  # root ignores permissions
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        with pytest.raises(OutputError, match="cannot write .*Permission denied"):
            colorizer.run(source, locked / "out.mp4", FAST)

    def disk_full(self, packets):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(writer.VideoWriter, "_mux_encoded", disk_full)
    with pytest.raises(OutputError, match=f"cannot write {tmp_path / 'out.mp4'}: No space left on device"):
        colorizer.run(source, tmp_path / "out.mp4", FAST)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


@pytest.mark.slow
def test_8k_frames_complete_with_bounded_memory(tmp_path, model):
    """Two 7680x4320 frames: the model sees only the render size and the CPU batch is capped by
    pixels, so the peak stays ~2.4 GiB (it was 4.7 GiB with 4-frame batches of 8K)."""
    path = tmp_path / "8k.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 7680, 4320, "yuv420p"
        y = np.tile(np.arange(7680, dtype=np.uint8), (4320, 1))
        for i in range(2):
            frame = av.VideoFrame(7680, 4320, "yuv420p")
            for plane, value in zip(frame.planes, (y + 40 * i, np.full((2160, 3840), 128, np.uint8),
                                                   np.full((2160, 3840), 128, np.uint8))):
                np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, :plane.width] = value
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    code = ("import resource, sys\nfrom vidcolor.cli import cli\n"
            "try:\n    cli(sys.argv[1:])\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    done = subprocess.run([sys.executable, "-c", code, "run", str(path), "--model", str(model), "--render-size", "64",
                           "--preset", "ultrafast", "--device", "cpu"], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    peak_mib = int(done.stdout.split()[-1]) / 1024
    assert peak_mib < LIMIT_8K_MIB, peak_mib
    with av.open(str(tmp_path / "8k_color.mkv")) as container:
        assert len(list(container.decode(video=0))) == 2


LIMIT_8K_MIB = 3200
