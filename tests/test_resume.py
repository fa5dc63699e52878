"""Segmented, resumable runs: kill -9 / Ctrl-C mid-way, run the same command, get the same file."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from vidcolor.errors import OutputError
from vidcolor.media import OutputOptions
from vidcolor.pipeline import Colorizer
from vidcolor.resume import MANIFEST, WorkFolder, work_dir

REPO = Path(__file__).resolve().parents[1]
FAST = OutputOptions(preset="ultrafast")


@pytest.fixture(scope="module")
def model(tmp_path_factory, make_model):
    return make_model(tmp_path_factory.mktemp("model") / "m.pt", gain=0.3)


def command(source: Path, target: Path, model: Path, *extra: str) -> list[str]:
    # Render size 256 (not the cheaper 64) keeps each segment ~0.8 s, so a signal sent after the first
    # segments reliably lands mid-run (at 64 the 5 remaining segments took ~1 s; one CI run finished first).
    return [sys.executable, "-m", "vidcolor", "run", str(source), "-o", str(target), "--model", str(model),
            "--render-size", "256", "--preset", "ultrafast", "--device", "cpu", "--segment-seconds", "1", *extra]


def start(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # SIGINT back to its default in the child: under `cmd &` (a background job) it is inherited as ignored, and
    # vidcolor rightly leaves an ignored SIGINT alone, so the Ctrl-C test would see an uninterrupted run.
    return subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def finished_segments(target: Path) -> int:
    try:
        return len(json.loads((work_dir(target) / MANIFEST).read_text())["segments"])
    except (OSError, ValueError, KeyError):
        return 0


def wait_for_segments(process: subprocess.Popen, target: Path, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while finished_segments(target) < count:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no segment finished in time"
        time.sleep(0.01)
    assert process.poll() is None, "the run finished before it could be interrupted"


def assert_same_video(a, b) -> None:
    assert a.pts == b.pts and a.time_base == b.time_base
    assert len(a.planes) == len(b.planes)
    for i, (pa, pb) in enumerate(zip(a.planes, b.planes)):
        for plane_a, plane_b in zip(pa, pb):
            assert np.array_equal(plane_a, plane_b), f"frame {i} differs"
    assert a.audio_packets == b.audio_packets and len(a.audio_packets) > 50
    assert a.duration == b.duration


@pytest.fixture(scope="module")
def clip(tmp_path_factory, make_video):
    # 6 segments of 24 frames at --segment-seconds 1; a cut inside segment 2; AAC audio.
    return make_video(tmp_path_factory.mktemp("clip") / "clip.mp4", frames=144, audio=True, cuts=(60,),
                      gray=False)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, clip, model):
    """The uninterrupted run of the same command."""
    target = tmp_path_factory.mktemp("reference") / "ref.mp4"
    done = subprocess.run(command(clip, target, model), cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    assert not work_dir(target).exists()
    return target


def test_sigkill_then_same_command_resumes_to_the_same_file(tmp_path, clip, model, reference, read_video):
    target = tmp_path / "out.mp4"
    process = start(command(clip, target, model))
    wait_for_segments(process, target, 2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not target.exists()
    done_before = finished_segments(target)
    assert 2 <= done_before < 6, done_before  # really interrupted mid-way

    resumed = subprocess.run(command(clip, target, model), cwd=REPO, capture_output=True, text=True,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed after {24 * done_before} frames" in resumed.stderr
    assert not work_dir(target).exists()
    assert_same_video(read_video(target, planes=True), read_video(reference, planes=True))
    assert len(read_video(target).pts) == 144


def test_ctrl_c_stops_quickly_and_says_how_to_resume(tmp_path, clip, model, reference, read_video):
    target = tmp_path / "out.mp4"
    process = start(command(clip, target, model))
    wait_for_segments(process, target, 1)
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert time.monotonic() - sent < 5  # the next batch, then the frames encoded so far closed as a segment
    assert process.returncode == 130
    assert "run the same command again to resume" in " ".join(stderr.split())
    assert not target.exists() and finished_segments(target) >= 1
    assert [p.name for p in tmp_path.iterdir()] == [work_dir(target).name]  # no temp file beside the target
    assert not [p for p in work_dir(target).iterdir() if "vidcolor-tmp" in p.name]  # the partial segment went

    resumed = subprocess.run(command(clip, target, model), cwd=REPO, capture_output=True, text=True,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert resumed.returncode == 0, resumed.stderr
    assert_same_video(read_video(target, planes=True), read_video(reference, planes=True))


def interrupt_after(frames: int):
    def progress(done, total):
        if done >= frames:
            raise KeyboardInterrupt
    return progress


def test_stale_or_foreign_work_folder_is_not_reused(tmp_path, make_video, model, read_video):
    source = make_video(tmp_path / "clip.mp4", frames=72, audio=True)
    target = tmp_path / "out.mp4"
    colorizer = Colorizer(model, device="cpu", render_size=64, batch_size=4)

    def interrupted_run(c: Colorizer = colorizer) -> None:
        with pytest.raises(KeyboardInterrupt):
            c.run(source, target, FAST, progress=interrupt_after(40), segment_seconds=1)
        assert finished_segments(target) == 1

    interrupted_run()
    resumed = colorizer.run(source, target, FAST, segment_seconds=1)
    assert resumed.frames_resumed == 24 and resumed.segments == 3
    first = read_video(target, planes=True)
    target.unlink()

    # Other options (a different strength changes the pixels): the old segments are not used.
    interrupted_run()
    other = Colorizer(model, device="cpu", render_size=64, batch_size=4, strength=0.1)
    assert other.run(source, target, FAST, segment_seconds=1).frames_resumed == 0
    target.unlink()

    # The source changed (new mtime) since the folder was made: not reused either.
    interrupted_run()
    os.utime(source, ns=(time.time_ns(), time.time_ns() + 10**9))
    fresh = colorizer.run(source, target, FAST, segment_seconds=1)
    assert fresh.frames_resumed == 0 and fresh.frames_out == 72
    assert_same_video(read_video(target, planes=True), first)  # resumed and fresh runs agree


def test_saturation_joins_the_resume_identity(tmp_path, make_video, model):
    """A resumed run with another --saturation recomputes everything; the same value (and 1.0 given or
    left at the default) reuses the finished segment."""
    source = make_video(tmp_path / "clip.mp4", frames=48)
    target = tmp_path / "out.mp4"

    def colorizer(**saturation: float) -> Colorizer:
        return Colorizer(model, device="cpu", render_size=64, batch_size=4, **saturation)

    def interrupted(c: Colorizer) -> None:
        with pytest.raises(KeyboardInterrupt):
            c.run(source, target, FAST, progress=interrupt_after(30), segment_seconds=1)
        assert finished_segments(target) == 1
        assert json.loads((work_dir(target) / MANIFEST).read_text())["identity"]["settings"]["saturation"] \
            == c.saturation

    for first, then, resumed in [({"saturation": 1.5}, {"saturation": 2.0}, 0),
                                 ({"saturation": 1.5}, {"saturation": 1.5}, 24),
                                 ({"saturation": 1.0}, {}, 24)]:
        interrupted(colorizer(**first))
        result = colorizer(**then).run(source, target, FAST, segment_seconds=1)
        assert (result.frames_resumed, result.frames_out) == (resumed, 48), (first, then)
        target.unlink()


def test_segment_length_keeps_frames_timestamps_and_audio(tmp_path, make_video, model, read_video):
    """B-frames (preset medium) and variable frame rate across segment joins: nothing moves."""
    source = make_video(tmp_path / "clip.mkv", frames=40, audio=True, vfr=True, subtitles=True)
    colorizer = Colorizer(model, device="cpu", render_size=64)
    options = OutputOptions(preset="medium")
    many = colorizer.run(source, tmp_path / "many.mkv", options, segment_seconds=0.25)
    one = colorizer.run(source, tmp_path / "one.mkv", options)
    assert (many.segments, one.segments) == (7, 1)  # VFR: 6 frames a segment at the nominal 24 fps
    src, a, b = (read_video(p, planes=True) for p in (source, many.output, one.output))
    assert a.times == b.times == src.times
    assert a.audio_packets == b.audio_packets == src.audio_packets
    assert a.subtitle_packets == src.subtitle_packets
    for out in (a, b):  # the luma is the source's (to within the lossy encode) either way
        luma = np.stack([p[0] for p in out.planes]).astype(float)
        mse = np.mean((luma - np.stack([p[0] for p in src.planes])) ** 2)
        assert 10 * np.log10(255**2 / mse) > 40


def test_two_processes_on_one_output_are_refused(tmp_path):
    target = tmp_path / "out.mp4"
    with WorkFolder(target, {"x": 1}), pytest.raises(OutputError, match="another vidcolor process"):
        with WorkFolder(target, {"x": 1}):
            pass


def test_failure_without_finished_segment_leaves_nothing(tmp_path, make_video, model):
    source = make_video(tmp_path / "clip.mp4", frames=30)
    with pytest.raises(KeyboardInterrupt):
        Colorizer(model, device="cpu", render_size=64).run(source, tmp_path / "out.mp4", FAST,
                                                            progress=interrupt_after(8), segment_seconds=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_stop_event_interrupts_between_batches(tmp_path, clip, model):
    """`stop` (what the CLI's Ctrl-C handler sets) ends the run at the next batch like KeyboardInterrupt,
    keeping finished segments and leaving nothing at the target."""
    import threading

    stop = threading.Event()
    target = tmp_path / "out.mp4"

    def progress(done: int, total: int | None) -> None:
        if done >= 30:  # in the second segment
            stop.set()

    with pytest.raises(KeyboardInterrupt):
        Colorizer(model, device="cpu", render_size=64).run(clip, target, FAST, progress, segment_seconds=1, stop=stop)
    assert not target.exists()
    assert 1 <= finished_segments(target) < 6


@pytest.mark.parametrize("mode", ["window", "ema"])
def test_segment_boundaries_do_not_show(tmp_path, make_video, make_model, read_video, mode):
    """Short segments give the colour of one long one: `window` sees past a segment's end (exactly
    the same frames), and a cut among a segment's warm-up frames still resets the smoother (the
    shot before it leaks nothing into the segment; only the warm-up's finite memory differs)."""
    clip = make_video(tmp_path / "clip.mp4", frames=52, cuts=(20, 45))  # 20 and 45: 4 and 3 frames before a boundary
    model = make_model(tmp_path / "m.pt", gain=0.5)  # colour that depends on the picture
    lossless = OutputOptions(crf=0, preset="ultrafast")
    planes = {}
    for seconds in (1.0, 100.0):  # 24-frame segments, or one
        out = tmp_path / f"{seconds}.mkv"
        Colorizer(model, device="cpu", smoothing=mode, batch_size=4).run(clip, out, lossless, segment_seconds=seconds)
        planes[seconds] = read_video(out, planes=True).planes
    worst = max(int(np.abs(a[k].astype(int) - b[k].astype(int)).max())
                for a, b in zip(planes[1.0], planes[100.0]) for k in (1, 2))
    assert len(planes[1.0]) == len(planes[100.0]) == 52
    assert worst <= (0 if mode == "window" else 1), worst


def test_resume_identity_is_the_listed_settings_only(model):
    """The identity's settings are `RESUME_SETTINGS` by name: an attribute added to a Colorizer later
    does not join it, and each listed one (saturation too) is there with its value."""
    from vidcolor.pipeline import RESUME_SETTINGS

    colorizer = Colorizer(model, device="cpu", render_size=64, saturation=1.5, strength=0.2)
    colorizer.new_knob = "not part of the key"
    settings = colorizer.settings()
    assert tuple(settings) == RESUME_SETTINGS
    assert settings == {"saturation": 1.5, "cuda": False, "render_size": 64, "smoothing": "flow",
                        "strength": 0.2, "window": None, "guided": False, "user_colours": None, "people": False,
                        "engine_name": "torch"}


def test_segment_plan_warmup_own_and_lookahead():
    """Each planned segment computes its warm-up, its own frames and its look-ahead, in that order; only
    its own frames are kept, and a resumed plan starts with the recorded warm-up."""
    from vidcolor.media import Frame
    from vidcolor.resume import WARMUP_FRAMES, SegmentPlan

    frames = [Frame(pts, 1, ()) for pts in range(50)]

    def plan(lookahead: int, start: int = 0, resume: list[int] = ()):
        stream = iter(frames[resume[0]:] if resume else frames)
        return [(s, [(f.pts, f.keep) for f in s.frames]) for s in SegmentPlan(stream, 20, lookahead, start, resume)]

    segments = plan(lookahead=12)
    assert [(s.start, s.own, s.first_pts) for s, _ in segments] == [(0, 20, 0), (20, 20, 20), (40, 10, 40)]
    warmup = max(WARMUP_FRAMES, 12)
    for s, computed in segments:
        before = list(range(max(0, s.first_pts - warmup), s.first_pts))
        own = list(range(s.first_pts, s.first_pts + s.own))
        after = list(range(s.first_pts + s.own, min(50, s.first_pts + s.own + 12)))
        assert computed == [(p, False) for p in before] + [(p, True) for p in own] + [(p, False) for p in after]
        assert s.record()["warmup_pts"] == (before + own)[-warmup:]  # the next segment's warm-up

    first = segments[0][0].record()
    resumed = plan(lookahead=12, start=20, resume=first["warmup_pts"])
    assert [(s.start, s.own) for s, _ in resumed] == [(20, 20), (40, 10)]
    assert [c for _, c in resumed] == [c for _, c in segments[1:]]


def test_ctrl_c_keeps_every_frame_already_encoded(tmp_path, make_video, model, read_video):
    """An interrupt part-way through a segment closes it where it stopped: the rerun reuses those frames."""
    import threading

    clip = make_video(tmp_path / "clip.mp4", frames=60)
    stop = threading.Event()
    target = tmp_path / "out.mp4"

    def progress(done: int, total: int | None) -> None:
        if done >= 20:
            stop.set()

    colorizer = Colorizer(model, device="cpu", render_size=64, batch_size=4)
    with pytest.raises(KeyboardInterrupt):
        colorizer.run(clip, target, FAST, progress, segment_seconds=100, stop=stop)  # one 100 s segment
    manifest = json.loads((work_dir(target) / "manifest.json").read_text())
    kept = sum(s["frames"] for s in manifest["segments"])
    assert 20 <= kept < 60 and manifest["segments"][-1]["interrupted"]
    result = colorizer.run(clip, target, FAST, segment_seconds=100)
    assert result.frames_resumed == kept and f"resumed after {kept} frames" in " ".join(result.warnings)
    assert len(read_video(target).pts) == 60
