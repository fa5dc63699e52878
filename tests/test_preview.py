"""`vidcolor preview` without torch (`quicklook`): taken only where it colours as `run` does, and then its frames
match the torch path's."""

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vidcolor import machine
from vidcolor.modelfiles import MULTIPLE_KEY, default_model_path, int8_path
from vidcolor.preview import colorizer_frames, frame_rgb, preview_frames, sample_fractions
from vidcolor.quicklook import QuickLook, quick_look

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "bikes_bw.mp4"
needs_ort = pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None,
                               reason="ONNX Runtime (the fast extra) is not installed")
PLAIN = dict(model=None, device="cpu", render_size=256, saturation=1.0, engine="auto")


@needs_ort
def test_the_torch_free_frames_match_the_torch_paths():
    """Same model (the int8 copy) both ways: only the maths' implementation differs (numpy and OpenCV)."""
    from vidcolor.pipeline import Colorizer

    quick = quick_look(PLAIN)
    assert isinstance(quick, QuickLook)
    video, fast = preview_frames(quick, SAMPLE, sample_fractions(4))
    _, slow = preview_frames(colorizer_frames(Colorizer(device="cpu", engine="onnxruntime")), SAMPLE,
                             sample_fractions(4))
    spec = video.color.yuv_spec
    for (seconds, source, a), (_, _, b) in zip(fast, slow):
        assert np.array_equal(a.planes[0], source.planes[0])  # the film's own luma
        diff = np.abs(frame_rgb(a, spec).astype(int) - frame_rgb(b, spec).astype(int))
        assert diff.mean() < 1.5 and np.percentile(diff, 99) <= 10, seconds
        colour = [np.abs(f.planes[1].astype(int) - 128).mean() + np.abs(f.planes[2].astype(int) - 128).mean()
                  for f in (a, b)]
        assert colour[1] > 2 and abs(colour[0] / colour[1] - 1) < 0.08, seconds  # as colourful


@needs_ort
def test_a_preview_imports_no_torch_and_writes_its_sheet(tmp_path):
    sheet = tmp_path / "sheet.png"
    code = ("import atexit, sys; atexit.register(lambda: print('torch loaded:', 'torch' in sys.modules)); "
            "from vidcolor.cli import cli; cli()")
    done = subprocess.run([sys.executable, "-c", code, "preview", str(SAMPLE), "-n", "2", "-o", str(sheet),
                           "--device", "cpu"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "torch loaded: False" in done.stdout and "2 frames" in done.stdout
    assert sheet.stat().st_size > 10_000


@pytest.mark.parametrize("option", [
    {"hints": ["0=h.png"]}, {"keyframes": ["0=k.png"]}, {"references": ["r.jpg"]}, {"people": True},
    {"guided": True}, {"engine": "torch"}, {"device": "cuda"},
])
def test_options_only_torch_has_keep_the_torch_path(option):
    assert quick_look({**PLAIN, **option}) is None


def test_without_onnxruntime_the_torch_path(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as when the extra is not installed
    assert quick_look(PLAIN) is None


@needs_ort
def test_a_copy_of_other_weights_or_without_its_size_multiple_keeps_the_torch_path(tmp_path):
    import onnx

    model = tmp_path / "mine.pt"
    shutil.copy(default_model_path(), model)
    shutil.copy(int8_path(default_model_path()), int8_path(model))
    assert isinstance(quick_look({**PLAIN, "model": model}), QuickLook)
    graph = onnx.load(str(int8_path(model)))
    kept = [p for p in graph.metadata_props if p.key != MULTIPLE_KEY]
    del graph.metadata_props[:]
    graph.metadata_props.extend(kept)
    onnx.save(graph, str(int8_path(model)))
    assert quick_look({**PLAIN, "model": model}) is None  # made before the multiple was recorded
    shutil.copy(int8_path(default_model_path()), int8_path(model))
    model.write_bytes(model.read_bytes() + b"\0")  # other weights than the copy's
    assert quick_look({**PLAIN, "model": model}) is None


def test_a_gpu_is_possible_only_with_a_gpu_build_of_torch_and_a_driver(monkeypatch, tmp_path):
    driver = tmp_path / "nvidiactl"
    monkeypatch.setattr(machine, "GPU_DRIVER_FILES", (str(driver),))
    monkeypatch.setattr(machine.metadata, "version", lambda name: "2.13.0+cpu")
    driver.touch()
    assert not machine.gpu_possible()
    monkeypatch.setattr(machine.metadata, "version", lambda name: "2.13.0")
    assert machine.gpu_possible()
    driver.unlink()
    assert not machine.gpu_possible()


@needs_ort
def test_device_auto_takes_the_torch_free_path_only_where_no_gpu_can_be(monkeypatch):
    import vidcolor.quicklook as quicklook

    monkeypatch.setattr(quicklook, "gpu_possible", lambda: False)
    assert isinstance(quick_look({**PLAIN, "device": "auto"}), QuickLook)
    monkeypatch.setattr(quicklook, "gpu_possible", lambda: True)
    assert quick_look({**PLAIN, "device": "auto"}) is None


def film_with_gop(path: Path, frames: int, gop: int) -> Path:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24, options={
            "preset": "ultrafast", "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0"})
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for i in range(frames):
            y = np.full((64, 96), 16 + 3 * i, np.uint8)
            frame = av.VideoFrame.from_ndarray(np.concatenate([y, np.full((64, 96), 128, np.uint8)])[:96], "yuv420p")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


@pytest.mark.parametrize("gop", [250, 30])
def test_the_seeker_gives_a_seeks_frames_decoding_on_where_no_keyframe_lies_between(tmp_path, monkeypatch, gop):
    import av

    from vidcolor import preview
    from vidcolor.media import probe
    from vidcolor.preview import FrameSeeker, frame_at

    film = film_with_gop(tmp_path / "film.mp4", 60, gop)
    with av.open(str(film)) as container:
        keyframes = sorted(p.pts for p in container.demux(video=0) if p.is_keyframe)
    assert len(keyframes) == (1 if gop > 60 else 2)
    video = probe(film).video
    first = frame_at(film, video, "yuv420p", None)
    targets = [first.pts + round(f * video.duration / video.time_base) for f in sample_fractions(6)]
    expected = [frame_at(film, video, "yuv420p", t) for t in targets]
    opened = []

    def reader(*args, **kwargs):
        opened.append(kwargs.get("start_pts"))
        return preview_reader(*args, **kwargs)

    preview_reader = preview.VideoReader
    monkeypatch.setattr(preview, "VideoReader", reader)
    seeker = FrameSeeker(film, video, "yuv420p")
    try:
        assert seeker.at(None).pts == first.pts
        got = [seeker.at(t) for t in targets]
    finally:
        seeker.close()
    for a, b in zip(got, expected):
        assert a.pts == b.pts and all(np.array_equal(x, y) for x, y in zip(a.planes, b.planes))
    past = [t for t in targets if t >= keyframes[-1]]
    assert opened == [None] + ([past[0]] if len(keyframes) > 1 else [])  # one seek: to the first past the keyframe
