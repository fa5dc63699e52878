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
from vidcolor.preview import colorizer_frames, preview_frames, sample_fractions
from vidcolor.quicklook import QuickLook, quick_look

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "bikes_bw.mp4"
needs_ort = pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None,
                               reason="ONNX Runtime (the fast extra) is not installed")
PLAIN = dict(model=None, device="cpu", render_size=256, saturation=1.0, engine="auto")


def reencode(path: Path, pix_fmt: str, size: tuple[int, int] | None = None, full: bool = False,
             frames: int = 24) -> Path:
    """The sample's first frames in another pixel format, range or (cropped) size."""
    import av

    with av.open(str(SAMPLE)) as src, av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=24, options={"preset": "ultrafast", "crf": "12"})
        for i, frame in enumerate(src.decode(video=0)):
            if i == frames:
                break
            rgb = frame.to_ndarray(format="rgb24")
            rgb = np.ascontiguousarray(rgb[:size[1], :size[0]]) if size else rgb
            if i == 0:
                stream.width, stream.height, stream.pix_fmt = rgb.shape[1], rgb.shape[0], pix_fmt
                stream.codec_context.color_range = 2 if full else 1
            picture = av.VideoFrame.from_ndarray(rgb, "rgb24").reformat(format=pix_fmt,
                                                                        dst_color_range=2 if full else 1)
            out.mux(stream.encode(picture))
        out.mux(stream.encode())
    return path


FORMATS = {"4:2:0": dict(pix_fmt="yuv420p"), "4:2:2 10-bit full range": dict(pix_fmt="yuv422p10le", full=True),
           "4:4:4 odd size": dict(pix_fmt="yuv444p", size=(301, 171))}


@pytest.fixture(scope="module", params=list(FORMATS))
def film(request, tmp_path_factory) -> Path:
    return reencode(tmp_path_factory.mktemp("film") / "film.mp4", **FORMATS[request.param])


@pytest.mark.parametrize("render_size", [256, 400])  # 400: larger than the film
def test_the_models_input_is_the_pipelines_to_float_rounding(film, render_size):
    import torch

    from vidcolor.color import frame_lightness
    from vidcolor.device import upload_luma
    from vidcolor.geometry import render_shape
    from vidcolor.media import probe
    from vidcolor.preview import frame_at
    from vidcolor.quicklook import lightness

    video = probe(film).video
    frame = frame_at(film, video, "auto", None)
    render_hw = render_shape(video.height, video.width, render_size)
    y = frame.planes[0].astype(np.float32) / (255 << (frame.bits - 8))
    ours = lightness(y, render_hw, frame.planes[1].shape, video.color.yuv_spec)
    theirs = frame_lightness(upload_luma([frame.planes[0]], torch.device("cpu"), frame.bits), render_hw,
                             frame.planes[1].shape, video.color.yuv_spec)
    for a, b in zip(ours, theirs):
        assert a.shape == tuple(b.shape[-2:]) and np.abs(a - b[0, 0].numpy()).max() < 0.01  # L* in [0, 100]


@pytest.mark.parametrize("bits", [8, 10])
def test_chroma_from_lab_is_the_pipelines(bits):
    """Given the same L* and ab (saturated ones too, dark yellows among them), the same Cb/Cr codes."""
    import torch

    from vidcolor.colorspec import YuvSpec
    from vidcolor.finish import chroma_from_lab
    from vidcolor.quicklook import chroma_codes
    from vidcolor.yuv import to_code

    rng = np.random.default_rng(3)
    L = rng.uniform(0, 100, (40, 60)).astype(np.float32)
    ab = rng.uniform(-160, 160, (2, 20, 30)).astype(np.float32)
    for spec in (YuvSpec("bt601", False), YuvSpec("bt709", True)):
        ours = np.stack(chroma_codes(L, ab, spec, bits)).astype(int)
        theirs = to_code(chroma_from_lab(torch.from_numpy(L)[None, None], torch.from_numpy(ab)[None], spec), bits)
        assert np.abs(ours - theirs[0].numpy().astype(int)).max() <= 1


@needs_ort
@pytest.mark.parametrize("saturation", [1.0, 2.5])
def test_the_torch_free_frames_are_the_torch_paths(film, saturation):
    """The same int8 model both ways. Its output moves by up to a few ab units where its input moves by float
    rounding (activations quantized), so frames agree closely on average rather than code for code."""
    from vidcolor.pipeline import Colorizer

    args = {**PLAIN, "saturation": saturation}
    quick = quick_look(args)
    assert isinstance(quick, QuickLook)
    video, fast = preview_frames(quick, film, sample_fractions(4), "auto")
    _, slow = preview_frames(colorizer_frames(Colorizer(**{**args, "engine": "onnxruntime"})), film,
                             sample_fractions(4), "auto")
    assert len(fast) == len(slow) == 4
    for (seconds, source, a), (_, _, b) in zip(fast, slow):
        assert np.array_equal(a.planes[0], source.planes[0])  # the film's own luma
        scale = 1 << (a.bits - 8)
        diff = [np.abs(a.planes[k].astype(int) - b.planes[k].astype(int)) / scale for k in (1, 2)]
        assert max(d.mean() for d in diff) < 0.4 * saturation, seconds
        assert max(np.percentile(d, 99) for d in diff) <= 3 * saturation, seconds
        colour = [sum(np.abs(f.planes[k].astype(int) - (128 * scale)).mean() for k in (1, 2)) for f in (a, b)]
        assert colour[1] > 2 * scale and abs(colour[0] / colour[1] - 1) < 0.05, seconds  # as colourful


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


@needs_ort
@pytest.mark.parametrize("option", [
    {"hints": ["0=h.png"]}, {"keyframes": ["0=k.png"]}, {"references": ["r.jpg"]}, {"people": True},
    {"guided": True}, {"engine": "torch"}, {"device": "cuda"},
])
def test_options_only_torch_has_keep_the_torch_path(option):
    assert isinstance(quick_look({**PLAIN, "engine": "onnxruntime"}), QuickLook)
    assert quick_look({**PLAIN, **option}) is None


@needs_ort
def test_without_onnxruntime_the_torch_path(monkeypatch):
    assert isinstance(quick_look(PLAIN), QuickLook)
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
    monkeypatch.setattr(machine.sys, "platform", "win32")  # no driver files to look for: CUDA may be there
    assert machine.gpu_possible()
    monkeypatch.setattr(machine.sys, "platform", "darwin")  # torch has no CUDA on macOS
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


def test_a_photos_sheet_does_not_call_it_a_short_video(tmp_path):
    import cv2
    from click.testing import CliRunner

    from vidcolor.cli import cli

    photo = tmp_path / "photo.png"
    assert cv2.imwrite(str(photo), np.full((48, 64), 120, np.uint8))
    result = CliRunner().invoke(cli, ["preview", str(photo), "--render-size", "64"])
    assert result.exit_code == 0, result.output
    assert "1 frame, gray | colour" in result.output and "the video has only" not in result.output
