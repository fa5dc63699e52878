import itertools
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from vidcolor import pipeline
from vidcolor.color import gray_lightness, rgb_luma, rgb_to_lab
from vidcolor.colorspec import YuvSpec, rgb_frame_spec
from vidcolor.yuv import luma_to_gray, rgb_to_yuv, yuv_to_rgb
from vidcolor.errors import DeviceError, ModelError, OptionError, OutputError
from vidcolor.media import OutputOptions
from vidcolor.device import resolve_device
from vidcolor.geometry import pad_to_multiple, render_shape
from vidcolor.pipeline import Colorizer
from vidcolor.result import RunResult

REPO = Path(__file__).resolve().parents[1]
SWS_MATRIX = {1: "itu709", 5: "itu601", 6: "itu601"}  # AVColorSpace -> swscale name


def luma_psnr(a, b) -> float:
    ya = np.stack([p[0] for p in a.planes]).astype(np.float64)
    yb = np.stack([p[0] for p in b.planes]).astype(np.float64)
    return float(10 * np.log10(255 ** 2 / np.mean((ya - yb) ** 2)))


def chroma_deviation(facts) -> float:
    """Mean distance of Cb and Cr from neutral (128), in code values."""
    return float(np.mean([np.abs(p[i].astype(int) - 128).mean() for p in facts.planes for i in (1, 2)]))


def decoded_ab(path: Path, index: int) -> tuple[float, float]:
    """Mean Lab a, b of mid-tone pixels, decoding with swscale and the file's own colour tags."""
    with av.open(str(path)) as container:
        frame = list(container.decode(video=0))[index]
    rgb = frame.reformat(format="rgb24", src_colorspace=SWS_MATRIX[frame.colorspace],
                         src_color_range=frame.color_range).to_ndarray()
    lab = rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255)[0]
    mid = (lab[0] > 35) & (lab[0] < 65)
    assert mid.float().mean() > 0.5
    return lab[1][mid].mean().item(), lab[2][mid].mean().item()


@pytest.fixture(scope="module")
def models(tmp_path_factory, make_model):
    folder = tmp_path_factory.mktemp("models")
    return {"colour": make_model(folder / "colour.pt"), "neutral": make_model(folder / "neutral.pt", ab=(0, 0))}


@pytest.fixture(scope="module")
def colorized(tmp_path_factory, make_video, read_video, models):
    """A VFR clip with audio, rotation and a cut (scene 1 is mid-gray), colorized once."""
    folder = tmp_path_factory.mktemp("run")
    source = make_video(folder / "clip.mp4", frames=30, audio=True, vfr=True, rotation=90, cuts=(4, 8),
                        colorspace="bt709")
    result = Colorizer(models["colour"], device="cpu", render_size=64).run(source, folder / "out.mp4")
    return result, read_video(source, planes=True), read_video(result.output, planes=True)


def test_frames_timestamps_duration_and_audio_preserved(colorized):
    result, source, output = colorized
    assert result.frames_out == result.frames_expected == 30 and result.frames_lost == 0
    assert len(set(np.diff(source.pts))) >= 3  # the source really has a variable frame rate
    assert output.times == source.times
    assert abs(output.duration - source.duration) < 0.1 / 24
    assert len(source.audio_packets) > 50
    assert output.audio_packets == source.audio_packets


def test_luma_is_the_source_luma(colorized):
    _, source, output = colorized
    assert luma_psnr(source, output) > 40


def test_size_rotation_and_colour_tags_kept(colorized):
    _, source, output = colorized
    assert (output.width, output.height, output.pix_fmt) == (322, 182, "yuv420p")
    assert output.rotation == 90
    assert output.color == source.color == (1, 1, 1, 1)


def test_predicted_colour_survives_encoding(colorized):
    """Decoded with the output's tags, mid-tones carry the model's ab (44, 33): the chroma maths,
    matrix and range agree with the tags (a wrong matrix or range moves a or b by about 5)."""
    result, _, output = colorized
    assert chroma_deviation(output) > 10
    a, b = decoded_ab(result.output, index=8)
    assert abs(a - 44) < 3 and abs(b - 33) < 3


def test_untagged_sd_source_gets_bt601(tmp_path, make_video, read_video, models):
    source = make_video(tmp_path / "clip.mp4", frames=12, cuts=(2, 4))
    result = Colorizer(models["colour"], device="cpu", render_size=64).run(source, tmp_path / "out.mp4")
    assert read_video(result.output).color == (6, 1, 6, 6)
    a, b = decoded_ab(result.output, index=8)
    assert abs(a - 44) < 3 and abs(b - 33) < 3


def test_guided_upsampling_in_the_pipeline(tmp_path, make_video, read_video, models):
    """--guided runs end to end and keeps the model's colour where it is flat (mid-tones)."""
    source = make_video(tmp_path / "clip.mp4", frames=12, cuts=(2, 4))
    result = Colorizer(models["colour"], device="cpu", render_size=64, guided=True).run(source, tmp_path / "g.mp4")
    assert len(read_video(result.output).pts) == 12
    a, b = decoded_ab(result.output, index=8)
    assert abs(a - 44) < 3 and abs(b - 33) < 3


def test_neutral_model_gives_gray(tmp_path, make_video, read_video, models):
    source = make_video(tmp_path / "clip.mp4", frames=10, gray=False)
    result = Colorizer(models["neutral"], device="cpu", render_size=64).run(source, tmp_path / "out.mp4")
    output = read_video(result.output, planes=True)
    assert chroma_deviation(read_video(source, planes=True)) > 5  # the source had colour
    assert chroma_deviation(output) < 0.5


def test_mirrored_display_matrix_kept(tmp_path, make_video, read_video, models):
    source = make_video(tmp_path / "clip.mp4", frames=3, rotation=-90, mirrored=True)
    result = Colorizer(models["colour"], device="cpu", render_size=64).run(source, tmp_path / "out.mov")
    before, after = read_video(source), read_video(result.output)
    assert before.display_matrix is not None and after.display_matrix == before.display_matrix
    assert after.rotation == -90


def test_subtitles_copied(tmp_path, make_video, read_video, models):
    source = make_video(tmp_path / "clip.mkv", frames=30, subtitles=True)
    colorizer = Colorizer(models["colour"], device="cpu", render_size=64)
    result = colorizer.run(source, tmp_path / "out.mkv")
    assert len(read_video(source).subtitle_packets) == 3
    assert read_video(result.output).subtitle_packets == read_video(source).subtitle_packets
    mp4 = colorizer.run(source, tmp_path / "out.mp4")  # MP4 cannot hold SubRip: dropped, with a warning
    assert mp4.warnings == ["not kept: subtitle #1 (srt): mp4 cannot hold it ('mp4' format does not support 'srt' "
                            "codec); an .mkv output keeps it"]
    assert mp4.plan.not_kept == [mp4.warnings[0].removeprefix("not kept: ")]


def test_odd_size_444(tmp_path, make_video, read_video, models):
    source = make_video(tmp_path / "odd.mkv", width=321, height=181, frames=6, pix_fmt="yuv444p")
    result = Colorizer(models["colour"], device="cpu", render_size=64).run(
        source, tmp_path / "out.mkv", OutputOptions(pix_fmt="yuv444p"))
    output = read_video(result.output, planes=True)
    assert (output.width, output.height, output.pix_fmt) == (321, 181, "yuv444p")
    assert len(output.pts) == 6
    assert luma_psnr(read_video(source, planes=True), output) > 40


def test_batch_size_does_not_change_the_result(tmp_path, make_video, make_model, read_video):
    """Cut detection and smoothing carry state across batches, and the pending FIFO keeps order.

    Lossless output and a model whose colour follows the content, so a frame out of place
    would show; float maths may round differently per batch size, hence the 1-code tolerance.
    """
    source = make_video(tmp_path / "clip.mp4", frames=14, cuts=(9,), gray=False)
    model = make_model(tmp_path / "busy.pt", gain=0.3)
    outputs = []
    for batch_size in (1, 5):
        colorizer = Colorizer(model, device="cpu", render_size=64, batch_size=batch_size, strength=0.8)
        result = colorizer.run(source, tmp_path / f"out{batch_size}.mp4", OutputOptions(crf=0))
        outputs.append([np.stack(p[1:]).astype(int) for p in read_video(result.output, planes=True).planes])
    frames_1, frames_5 = outputs
    assert max(np.abs(a - b).max() for a, b in zip(frames_1, frames_5)) <= 1
    assert min(np.abs(a - b).max() for a, b in itertools.pairwise(frames_1)) > 10


@pytest.mark.parametrize("failure", [KeyboardInterrupt, RuntimeError])
def test_failure_leaves_no_output_and_no_temp(tmp_path, make_video, models, failure):
    source = make_video(tmp_path / "clip.mp4", frames=40)
    target = tmp_path / "out.mp4"
    target.write_bytes(b"previous result")

    def fail(done, total):
        if done >= 16:
            raise failure()

    with pytest.raises(failure):
        Colorizer(models["colour"], device="cpu", render_size=64).run(
            source, target, OutputOptions(preset="ultrafast", overwrite=True), progress=fail)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "out.mp4"]
    assert target.read_bytes() == b"previous result"


def test_overwrite_and_same_file(tmp_path, make_video, models):
    source = make_video(tmp_path / "clip.mp4", frames=4)
    original = source.read_bytes()
    target = tmp_path / "out.mp4"
    target.write_bytes(b"keep me")
    colorizer = Colorizer(models["colour"], device="cpu", render_size=64)
    with pytest.raises(OutputError, match="exists"):
        colorizer.run(source, target)
    assert target.read_bytes() == b"keep me"
    assert colorizer.run(source, target, OutputOptions(overwrite=True)).frames_out == 4
    assert av.open(str(target)).streams.video[0].frames == 4
    with pytest.raises(OutputError, match="is the input"):
        colorizer.run(source, source, OutputOptions(overwrite=True))
    assert source.read_bytes() == original


def test_truncated_input_keeps_what_decodes(tmp_path, make_video, read_video, models):
    source = make_video(tmp_path / "clip.mkv", frames=48)
    data = source.read_bytes()
    source.write_bytes(data[:len(data) * 6 // 10])
    result = Colorizer(models["colour"], device="cpu", render_size=64).run(source, tmp_path / "out.mkv")
    assert 0 < result.frames_out < 48
    assert result.frames_expected == 48 and result.frames_lost == 48 - result.frames_out
    assert len(read_video(result.output).pts) == result.frames_out


def test_default_output_name(tmp_path, make_video, models):
    source = make_video(tmp_path / "film.mov", frames=3)
    result = Colorizer(models["colour"], device="cpu", render_size=64).run(source)
    assert result.output == tmp_path / "film_color.mov" and result.output.is_file()


def test_colorize_tensor_api(models):
    """The eval/benchmark entry: same size, the input's luma kept, colour added."""
    rgb = torch.rand(3, 3, 50, 70, generator=torch.Generator().manual_seed(0)) * 0.5 + 0.25
    colorizer = Colorizer(models["colour"], device="cpu", render_size=64)
    out = colorizer.colorize(rgb)
    assert out.shape == rgb.shape
    spec = rgb_frame_spec(50)
    inside = ((out > 0) & (out < 1)).all(dim=1, keepdim=True)  # where the colour did not leave the RGB gamut
    assert inside.float().mean() > 0.9
    gap = (rgb_luma(out, spec) - rgb_luma(rgb, spec)).abs()
    assert gap[inside].max() < 1e-5 and gap.mean() < 1e-3
    lab_out = rgb_to_lab(out)
    assert lab_out[:, 1].mean() > 30 and lab_out[:, 2].mean() > 20


@pytest.mark.parametrize("guided", [False, True])
def test_colorize_is_the_run_path(tmp_path, make_video, read_video, models, guided):
    """One L* definition: `colorize` of the RGB frames of a 4:4:4 clip gives the colour `run` writes for that
    clip (smoothing off), to within the 8-bit rounding of run's planes; a colour source, so the L* of
    the luma and the CIE L* of the RGB really differ."""
    source = make_video(tmp_path / "clip.mkv", width=96, height=64, frames=3, gray=False, pix_fmt="yuv444p",
                        colorspace="bt601")
    colorizer = Colorizer(models["colour"], device="cpu", render_size=64, smoothing="none", guided=guided)
    out = colorizer.run(source, tmp_path / "out.mkv", OutputOptions(crf=0, preset="ultrafast", pix_fmt="yuv444p"))
    spec = YuvSpec("bt601", full_range=False)
    src, run = ([np.stack(p) for p in read_video(path, planes=True).planes] for path in (source, out.output))
    rgb = yuv_to_rgb(torch.from_numpy(np.stack(src)).float() / 255, spec)
    out_rgb = colorizer.colorize(rgb, spec)
    coloured = rgb_to_yuv(out_rgb, spec) * 255
    expected = torch.from_numpy(np.stack(run)).float()
    # Where neither RGB frame was clipped to the gamut (that moves Y'CbCr), run's planes are colorize's rounded.
    inside = ((rgb > 0) & (rgb < 1) & (out_rgb > 0) & (out_rgb < 1)).all(dim=1, keepdim=True).expand_as(coloured)
    assert inside.float().mean() > 0.8
    gap = (coloured - expected).abs()
    assert gap[inside].max() <= 1.01 and gap.mean() < 0.5, (gap[inside].max(), gap.mean())
    lab_gap = (rgb_to_lab(rgb)[:, 0] - gray_lightness(luma_to_gray(torch.from_numpy(np.stack(src))[:, :1].float()
                                                                   / 255, spec))[:, 0]).abs().mean()
    assert lab_gap > 0.5  # the old path (CIE L* of the RGB) would have shown the model another picture


# -- --saturation: ab scaled right after the model, on every colouring path ----------------------

@pytest.fixture(scope="module")
def moderate_model(tmp_path_factory, make_model):
    """Colour well inside the gamut even when doubled (ab ~ (11, 9) Lab units), so 2x is not clipped."""
    return make_model(tmp_path_factory.mktemp("moderate") / "moderate.pt", ab=(0.1, 0.08))


def test_saturation_scales_predicted_ab(models):
    """predict_ab (the one place ab is produced) gives exactly S x the unscaled prediction, bounds included."""
    L = torch.linspace(20, 80, 64 * 96).reshape(1, 1, 64, 96)
    base = Colorizer(models["colour"], device="cpu", render_size=64).predict_ab(L)
    assert base.abs().mean() > 30
    for s in (0.0, 0.5, 1.0, 2.0, 3.0):
        scaled = Colorizer(models["colour"], device="cpu", render_size=64, saturation=s).predict_ab(L)
        assert torch.equal(scaled, base * s), s


def test_saturation_in_colorize(moderate_model):
    """The tensor API (eval, benchmarks): S = 2 doubles the output's Lab ab, S = 0 gives gray, L* kept."""
    rgb = torch.rand(3, 3, 48, 80, generator=torch.Generator().manual_seed(1)) * 0.3 + 0.35
    ab, L = {}, {}
    for s in (1.0, 2.0, 0.0):
        lab = rgb_to_lab(Colorizer(moderate_model, device="cpu", render_size=64, saturation=s).colorize(rgb))
        L[s], ab[s] = lab[:, :1], lab[:, 1:]
    assert ab[1.0].abs().mean() > 5
    ratio = ab[2.0].abs().mean() / ab[1.0].abs().mean()
    assert abs(ratio - 2) < 0.02, ratio
    assert ab[0.0].abs().max() < 0.5
    assert (L[2.0] - L[1.0]).abs().max() < 0.5


def test_saturation_in_run(tmp_path, make_video, read_video, moderate_model):
    """The streaming pass: --saturation 1 is bit-identical to no option, 2 doubles the decoded chroma,
    0 gives neutral Cb/Cr."""
    source = make_video(tmp_path / "clip.mp4", frames=12, cuts=(2, 4))

    def run(name: str, **kwargs) -> Path:
        return Colorizer(moderate_model, device="cpu", render_size=64, **kwargs).run(source, tmp_path / name).output

    default, one, double, gray = run("d.mp4"), run("1.mp4", saturation=1.0), run("2.mp4", saturation=2.0), \
        run("0.mp4", saturation=0.0)
    assert one.read_bytes() == default.read_bytes()
    planes = {path: read_video(path, planes=True) for path in (default, one, double, gray)}
    assert len(planes[default].planes) == 12
    for pa, pb in zip(planes[default].planes, planes[one].planes):
        assert all(np.array_equal(x, y) for x, y in zip(pa, pb))
    a1, b1 = decoded_ab(default, index=8)
    a2, b2 = decoded_ab(double, index=8)
    assert a1 > 5 and b1 > 4
    assert abs(a2 / a1 - 2) < 0.15 and abs(b2 / b1 - 2) < 0.15, (a1, b1, a2, b2)
    # Cb/Cr are not linear in ab and the white disc clips: about 1.83x here (1.0 without the scaling)
    ratio = chroma_deviation(planes[double]) / chroma_deviation(planes[default])
    assert 1.7 < ratio < 2.05, ratio
    assert chroma_deviation(planes[gray]) < 0.5


@pytest.mark.parametrize("value", [-0.1, 3.01, float("nan"), float("inf"), "much"])
def test_saturation_out_of_bounds(models, value):
    """A clear one-line error, a ValueError to API callers, raised before the model is loaded."""
    with pytest.raises(OptionError, match="saturation must be a number from 0 to 3") as info:
        Colorizer(models["colour"], device="cpu", saturation=value)
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)


def test_frame_lightness_matches_full_resolution_lab():
    """The pipeline's L* (Y only, box-reduced to chroma size, render size from that) agrees with
    converting the full-size gray frame to Lab and resizing, and integer reductions are box means."""
    from vidcolor.color import frame_lightness
    from vidcolor.geometry import resize
    from vidcolor.colorspec import YuvSpec
    from vidcolor.yuv import yuv_to_rgb

    spec = YuvSpec("bt709", False)
    g = torch.Generator().manual_seed(0)
    y = torch.nn.functional.interpolate(torch.rand(2, 1, 18, 32, generator=g), size=(72, 128), mode="bilinear")
    y = (16 + 219 * y).round() / 255
    L_render, L_chroma = frame_lightness(y, (24, 43), (36, 64), spec)
    yuv = torch.cat([y, torch.full_like(y, 128 / 255), torch.full_like(y, 128 / 255)], 1)
    lab = rgb_to_lab(yuv_to_rgb(yuv, spec))[:, :1]
    assert L_render.shape == (2, 1, 24, 43) and L_chroma.shape == (2, 1, 36, 64)
    assert (L_chroma - resize(lab, (36, 64))).abs().mean() < 0.3
    assert (L_render - resize(lab, (24, 43))).abs().mean() < 1.0  # two-step vs one-step filtering of fine texture
    box = resize(y, (36, 64))
    assert torch.allclose(box[0, 0, 0, 0], y[0, 0, :2, :2].mean())
    # a render size larger than the chroma planes is taken from the full-size plane
    big, _ = frame_lightness(y, (72, 128), (36, 64), spec)
    assert torch.allclose(big, rgb_to_lab(yuv_to_rgb(yuv, spec))[:, :1], atol=1e-3)


@pytest.mark.parametrize("arch", ["unet", "effnet_unet"])
def test_inference_network_equals_trained_network(tmp_path, make_model, arch):
    """BatchNorm folding and channels_last change speed, not the prediction."""
    from vidcolor.checkpoint import load_generator
    from vidcolor.nets import build_generator, for_inference

    net = load_generator(make_model(tmp_path / "m.pt"))[0] if arch == "unet" else build_generator(arch).eval()
    count = lambda m: sum(isinstance(x, torch.nn.BatchNorm2d) for x in m.modules())  # noqa: E731
    with torch.no_grad():
        for module in net.modules():  # non-trivial running statistics, so folding has work to do
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
        x = torch.rand(2, 1, 64, 96) * 2 - 1
        expected = net(x)
        fast = for_inference(net)
        assert count(fast) < count(net) and (arch == "unet" or count(fast) == 0)
        assert fast.size_multiple == net.size_multiple
        torch.testing.assert_close(fast(x.contiguous(memory_format=torch.channels_last)), expected,
                                   atol=1e-4, rtol=1e-3)


def test_shapes_and_padding():
    assert render_shape(360, 640, 256) == (256, 455)
    assert render_shape(1080, 720, 256) == (384, 256)
    x = torch.arange(2 * 30 * 45, dtype=torch.float32).view(2, 1, 30, 45)
    padded = pad_to_multiple(x, 32)
    assert padded.shape == (2, 1, 32, 64) and torch.equal(padded[..., :30, :45], x)
    assert torch.equal(padded[..., 30, :45], x[..., 28, :])  # reflected, not repeated
    assert pad_to_multiple(x, 256).shape == (2, 1, 256, 256)  # too small to reflect: replicated


def test_device_and_model_errors(tmp_path, monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(DeviceError, match="unknown device"):
        resolve_device("tpu")
    with pytest.raises(DeviceError, match="unsupported device"):
        resolve_device("mps")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="not available"):
            resolve_device("cuda:0")
    monkeypatch.setattr(pipeline, "default_model_path", lambda: tmp_path / "default.pt")
    with pytest.raises(ModelError, match="no default model"):
        Colorizer(device="cpu")


def test_run_result_fields():
    result = RunResult(Path("a"), Path("b"), frames_out=90, frames_expected=100,
                       decode_errors=2, seconds=3.0)
    assert result.frames_lost == 10 and result.fps == 30
    counted = RunResult(Path("a"), Path("b"), frames_out=77, frames_expected=78, decode_errors=0,
                        seconds=1.0)
    assert counted.frames_lost == 1
    counted.frames_estimated = True  # e.g. Matroska: 78 from the duration, which includes a start offset
    assert counted.frames_lost == 0


def test_chaplin(tmp_path, shared_data, read_video, models):
    """Real footage with MP3 audio: every frame, timestamp and audio packet survives."""
    source = shared_data / "bw" / "chaplin.mp4"
    if not source.is_file():
        pytest.skip("chaplin.mp4 not in the shared data")
    result = Colorizer(models["colour"], device="cpu", render_size=64).run(
        source, tmp_path / "chaplin.mp4", OutputOptions(preset="ultrafast"))
    before, after = read_video(source, planes=True), read_video(result.output, planes=True)
    assert result.frames_out == len(before.pts) == 241
    assert after.times == before.times and after.audio_packets == before.audio_packets
    assert luma_psnr(before, after) > 40


def peak_rss_kib(video: Path, model: Path, output: Path) -> int:
    """Peak RSS of `vidcolor run` in a fresh process."""
    code = ("import resource\nfrom vidcolor.cli import main\ntry:\n    main()\nexcept SystemExit as exit:\n"
            "    assert not exit.code, exit.code\nprint(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    args = ["run", str(video), "-o", str(output), "--model", str(model), "--render-size", "64",
            "--preset", "ultrafast", "--device", "cpu"]
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1])


@pytest.mark.slow
def test_memory_does_not_grow_with_length(tmp_path, make_video, read_video, models):
    """720p at 1 fps: 2 minutes must peak at most 1.2x the memory of 10 seconds."""
    short = make_video(tmp_path / "short.mp4", width=1280, height=720, frames=10, fps=1)
    long = make_video(tmp_path / "long.mp4", width=1280, height=720, frames=120, fps=1)
    short_rss = peak_rss_kib(short, models["colour"], tmp_path / "short_out.mp4")
    long_rss = peak_rss_kib(long, models["colour"], tmp_path / "long_out.mp4")
    assert long_rss <= 1.2 * short_rss, (short_rss, long_rss)
    output = read_video(tmp_path / "long_out.mp4")
    assert len(output.pts) == 120 and output.color == (1, 1, 1, 1)  # untagged HD gets BT.709
