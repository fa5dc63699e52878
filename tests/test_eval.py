"""`vidcolor eval` and `vidcolor run --cuts-only` on generated clips with known answers."""

from __future__ import annotations

import json
from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from vidcolor import evaluate
from vidcolor.cli import cli
from vidcolor.evaluate import decode_rgb
from vidcolor.fd import lite0_unavailable
from vidcolor.media.reader import plane_arrays
from vidcolor.metrics import PSNR_CAP_DB


def invoke(*args):
    return CliRunner(env={"COLUMNS": "300"}).invoke(cli, [str(a) for a in args])


def write_static(path, frames: int = 8, width: int = 96, height: int = 64):
    """A colour clip whose frames are all the same picture, encoded losslessly (qp 0, yuv444p)."""
    yy, xx = np.mgrid[0:height, 0:width]
    rgb = np.stack([128 + 80 * np.sin(xx / 7), 128 + 80 * np.cos(yy / 5), 128 + 60 * np.sin((xx + yy) / 9)], -1)
    rgb = rgb.clip(0, 255).astype(np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(24), options={"qp": "0", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv444p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv444p")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def colour_clip(tmp_path_factory, make_video):
    return make_video(tmp_path_factory.mktemp("clips") / "colour.mp4", width=128, height=72, frames=12, gray=False)


def test_identical_pair_gives_the_psnr_cap_and_the_reference_own_temporal_scores(tmp_path, colour_clip):
    report = tmp_path / "scores.json"
    result = invoke("eval", colour_clip, colour_clip, "--json", report)
    assert result.exit_code == 0, result.output
    assert "colour.mp4" in result.output and "PSNR" in result.output
    doc = json.loads(report.read_text())
    (video,) = doc["videos"]
    assert video["frames"] == 12
    assert video["psnr"] == PSNR_CAP_DB
    assert video["ssim"] == pytest.approx(1.0)
    assert video["colorfulness"] == pytest.approx(video["colorfulness_ref"]) and video["colorfulness"] > 10
    # a copy of the reference is exactly as consistent as the reference: nothing added on top
    assert video["cdc"] == pytest.approx(video["cdc_ref"], abs=1e-12)
    assert video["warp_error"] == pytest.approx(video["warp_error_ref"], abs=1e-12)
    assert video["cdc_chroma"] == pytest.approx(video["cdc_chroma_ref"], abs=1e-12) and video["cdc_chroma"] > 0
    assert video["warp_error_chroma"] == pytest.approx(video["warp_error_chroma_ref"], abs=1e-12)
    assert doc["mean"]["psnr"] == PSNR_CAP_DB


def test_static_pair_has_zero_warp_error_and_cdc(tmp_path):
    clip = write_static(tmp_path / "static.mp4")
    res = evaluate.evaluate_pair(clip, clip)
    assert res.scores.frames == 8
    assert res.scores.psnr == PSNR_CAP_DB
    assert res.scores.cdc == 0.0 and res.scores.warp_error == pytest.approx(0.0, abs=1e-9)
    assert res.scores.cdc_chroma == 0.0 and res.scores.warp_error_chroma == pytest.approx(0.0, abs=1e-9)


def test_different_videos_score_lower(tmp_path, colour_clip, make_video):
    gray = make_video(tmp_path / "gray.mp4", width=128, height=72, frames=12, gray=True)
    res = evaluate.evaluate_pair(gray, colour_clip)
    assert res.scores.psnr < 40 and res.scores.ssim < 0.99
    assert res.scores.colorfulness < 3 < res.scores.colorfulness_ref  # a gray prediction has no colour


def test_eval_pairs_and_length_mismatch(tmp_path, colour_clip, make_video):
    assert invoke("eval", colour_clip).exit_code == 2  # PRED without REF
    short = make_video(tmp_path / "short.mp4", width=128, height=72, frames=5, gray=False)
    small = make_video(tmp_path / "small.mp4", width=64, height=36, frames=12, gray=False)
    report = tmp_path / "scores.json"
    result = invoke("eval", short, colour_clip, small, colour_clip, colour_clip, colour_clip, "--no-fd",
                    "--json", report)
    # each bad pair is one line; the good pair after them is still scored; the exit says something failed
    assert result.exit_code == 1
    assert "5 frames against 12" in result.output
    assert "size 64x36 against 128x72" in result.output and "Traceback" not in result.output
    assert [v["pred"] for v in json.loads(report.read_text())["videos"]] == [str(colour_clip)]


def test_a_mismatched_pair_fails_from_its_containers_before_any_scoring(tmp_path, colour_clip, make_video,
                                                                        monkeypatch):
    def no_scoring(*args, **kwargs):
        raise AssertionError("scored a pair that cannot match")

    monkeypatch.setattr(evaluate, "score_video", no_scoring)
    long = make_video(tmp_path / "long.mp4", width=128, height=72, frames=40, gray=False)
    fast = make_video(tmp_path / "fast.mp4", width=128, height=72, frames=12, fps=30, gray=False)
    result = invoke("eval", long, colour_clip, fast, colour_clip, "--no-fd")
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 2 and "40 frames against 12" in lines[0] and "frame rate 30.000 against 24.000" in lines[1]


def test_write_gray_keeps_luma_and_drops_colour(tmp_path, colour_clip, read_video):
    gray = evaluate.write_gray(colour_clip, tmp_path / "gray.mp4")
    src, out = read_video(colour_clip, planes=True), read_video(gray, planes=True)
    assert out.pts == src.pts and len(out.planes) == 12
    for a, b in zip(src.planes, out.planes):
        assert np.array_equal(a[0], b[0])  # Y code values exactly
        assert (b[1] == 128).all() and (b[2] == 128).all()


def test_eval_colorize_runs_the_model_and_writes_json(tmp_path, colour_clip, neutral_model, tiny_model):
    report = tmp_path / "neutral.json"
    result = invoke("eval", "--colorize", colour_clip, "--model", neutral_model, "--render-size", 64,
                    "--preset", "ultrafast", "--smoothing", "window", "--json", report, "--keep-dir", tmp_path / "kept")
    assert result.exit_code == 0, result.output
    doc = json.loads(report.read_text())
    neutral = doc["videos"][0]
    assert doc["options"]["smoothing"] == "window" and neutral["fps"] > 0
    assert neutral["colorfulness"] < 2  # gray output: the reference's luma, no colour
    assert neutral["colorfulness_ratio"] < 0.05 and neutral["delta_cf"] < -10
    if lite0_unavailable() is None:  # --colorize scores fd_lite0 too: gray is far from the colour frames
        assert neutral["fd_lite0"] > 1.0
    else:
        assert neutral["fd_lite0"] is None and "vidcolor[train]" in doc["options"]["fd_lite0"]
    assert (tmp_path / "kept" / "colour_color.mp4").is_file()
    kept = tmp_path / "coloured.mp4"
    coloured = evaluate.evaluate_colorize(colour_clip, _colorizer(tiny_model), keep=kept)
    assert coloured.scores.colorfulness > neutral["colorfulness"] + 10  # the model's colour got through
    assert coloured.scores.frames == 12
    # --colorize scores exactly the file `run` wrote, and the neutral model's output is the gray version
    # of the reference (its luma with neutral chroma) up to the encoder's loss
    assert coloured.scores == evaluate.evaluate_pair(kept, colour_clip).scores
    gray = evaluate.evaluate_pair(evaluate.write_gray(colour_clip, tmp_path / "gray.mp4"), colour_clip).scores
    assert neutral["psnr"] == pytest.approx(gray.psnr, abs=0.5), (neutral["psnr"], gray.psnr)
    assert coloured.scores.psnr < gray.psnr - 1  # a wrong, strong colour is worse than none
    assert neutral["cdc_chroma"] < 1e-3 and neutral["warp_error_chroma"] < 1e-5  # no colour, no colour flicker


def _colorizer(model):
    from vidcolor.pipeline import Colorizer

    return Colorizer(model, device="cpu", render_size=64, smoothing="none")


def test_cuts_only_prints_known_cuts_and_writes_nothing(tmp_path, make_video, tiny_model):
    clip = make_video(tmp_path / "cuts.mp4", width=160, height=96, frames=36, cuts=(10, 23))
    result = invoke("run", "--cuts-only", clip, "--model", tiny_model)
    assert result.exit_code == 0, result.output
    assert "cut at frame 10 (0.417 s)" in result.output
    assert "cut at frame 23 (0.958 s)" in result.output
    assert "2 cuts" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cuts.mp4", "tiny.pt"]
    assert evaluate.find_cuts(clip) == [(10, pytest.approx(10 / 24)), (23, pytest.approx(23 / 24))]
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    result = invoke("run", "--cuts-only", broken, clip, "--model", tiny_model)
    assert result.exit_code == 1  # the broken file is one line; the clip after it is still listed
    assert "broken.mp4" in result.output and "cut at frame 23 (0.958 s)" in result.output


def test_flow_side_sets_the_resolution_of_the_warp_error_flow(tmp_path, colour_clip, make_video):
    gray = make_video(tmp_path / "gray.mp4", width=128, height=72, frames=12, gray=True)
    scores = {}
    for side in (0, 32):
        report = tmp_path / f"side{side}.json"
        assert invoke("eval", gray, colour_clip, "--flow-side", side, "--no-fd", "--json", report).exit_code == 0
        doc = json.loads(report.read_text())
        assert doc["options"]["flow_side"] == side
        scores[side] = doc["videos"][0]
    full = evaluate.evaluate_pair(gray, colour_clip, flow_max_side=None).scores
    assert scores[0]["warp_error"] == pytest.approx(full.warp_error)  # 0 = full resolution
    coarse = evaluate.evaluate_pair(gray, colour_clip, flow_max_side=32).scores
    assert scores[32]["warp_error"] == pytest.approx(coarse.warp_error, rel=1e-9)  # the flow really at 32 px
    assert abs(coarse.warp_error - full.warp_error) > 0.02 * full.warp_error, (coarse.warp_error, full.warp_error)
    assert scores[32]["psnr"] == scores[0]["psnr"]  # only the flow-based scores depend on it


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv444p"])
def test_decode_rgb_applies_the_exact_matrix_to_every_chroma_layout(tmp_path, pix_fmt):
    # swscale's default 4:2:0 -> RGB path reads about 1.5 codes low; scores would then depend on the layout.
    y, cb, cr = 120, 90, 170  # flat planes, BT.601 limited range
    path = tmp_path / f"{pix_fmt}.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=Fraction(24))
        stream.width, stream.height, stream.pix_fmt = 32, 16, pix_fmt
        stream.codec_context.colorspace, stream.codec_context.color_range = 6, 1  # smpte170m, tv
        frame = av.VideoFrame(32, 16, pix_fmt)
        for view, value in zip(plane_arrays(frame), (y, cb, cr)):
            view[...] = value
        frame.pts = 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    rgb = next(decode_rgb(path))[0].double()
    Y, U, V = (y - 16) * 255 / 219, (cb - 128) * 255 / 224, (cr - 128) * 255 / 224
    r, b = Y + 1.402 * V, Y + 1.772 * U
    expected = torch.tensor([r, (Y - 0.299 * r - 0.114 * b) / 0.587, b], dtype=torch.float64)
    assert (rgb - expected[:, None, None]).abs().max() <= 0.5 + 1e-6
