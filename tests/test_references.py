"""Colours the user chooses: `--reference IMAGE`, `--keyframe WHEN=IMAGE`, `--reference-strength`.

The clips come from `make_video` (a red disc and a blue bar moving over a textured background, cuts at
known frames); a keyframe is the same frame drawn in colour. With the neutral model (ab = 0 exactly)
every colour in the output comes from the keyframe or the reference.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import draw_frame

from vidcolor.cli import cli
from vidcolor.errors import InputError, OptionError
from vidcolor.exemplar import match
from vidcolor.keyframes import carry_grid, propagate
from vidcolor.media import OutputOptions
from vidcolor.pipeline import Colorizer
from vidcolor.preview import colorizer_frames, preview_frames
from vidcolor.references import parse_keyframe, parse_when
from vidcolor.resume import work_dir

REPO = Path(__file__).resolve().parents[1]
FAST = OutputOptions(preset="ultrafast", pix_fmt="yuv444p")
W, H = 320, 180


def write_png(path: Path, rgb: np.ndarray) -> Path:
    cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))
    return path


def disc_mask(index: int, width: int = W, height: int = H, shrink: float = 0.6) -> np.ndarray:
    """The inner part of `draw_frame`'s disc at frame `index` (its edge pixels are left out)."""
    yy, xx = np.ogrid[0:height, 0:width]
    cx, cy = (20 + 5 * index) % width, height / 2 + height / 4 * np.sin(index / 5)
    return (xx - cx) ** 2 + (yy - cy) ** 2 < (shrink * min(width, height) / 6) ** 2


@pytest.fixture(scope="module")
def clip(tmp_path_factory, make_video):
    """In colour: the pipeline reads only its luma, so it is the B&W film whose true colours we know."""
    return make_video(tmp_path_factory.mktemp("clip") / "film.mp4", width=W, height=H, frames=36, gray=False,
                      cuts=(28,))


@pytest.fixture(scope="module")
def neutral(tmp_path_factory, make_model):
    return make_model(tmp_path_factory.mktemp("model") / "neutral.pt", ab=(0.0, 0.0))


# -- the maths, without video ---------------------------------------------------------------------------

def test_when_parses_frames_and_times():
    assert parse_when("120").frame == 120
    assert parse_when("00:01:23.480").seconds == pytest.approx(83.48)
    assert parse_when("1:02").seconds == pytest.approx(62.0)
    assert parse_when("2.5s").seconds == pytest.approx(2.5)
    assert parse_when("0").time(None) == 0.0  # the first frame needs no frame rate; frame 120 does
    with pytest.raises(InputError, match="no frame rate"):
        parse_when("120").time(None)
    when, image = parse_keyframe("00:00:01.5=shots/a=b.png")
    assert when.seconds == pytest.approx(1.5) and image == Path("shots/a=b.png")
    for bad in ("", "1:75", "-3s", "abc", "12=", "=x.png"):
        with pytest.raises(OptionError):
            parse_keyframe(bad if "=" in bad else f"{bad}=x.png")


def test_match_takes_the_matching_region_and_ignores_the_rest():
    """A frame showing only region B gets B's colour; region A of the reference gets no weight."""
    torch.manual_seed(0)
    a, b = torch.nn.functional.normalize(torch.randn(2, 16), dim=1)
    ref = torch.stack([a] * 5 + [b] * 5)
    ref_ab = torch.tensor([[60.0, 40.0]] * 5 + [[-20.0, -50.0]] * 5)
    frame = torch.nn.functional.normalize(b + 0.05 * torch.randn(3, 16), dim=1)[None]
    ab, conf = match(frame, ref, ref_ab)
    assert torch.allclose(ab, torch.tensor([-20.0, -50.0]).expand_as(ab), atol=1e-3)
    assert (conf > 0.9).all()
    unrelated = torch.nn.functional.normalize(torch.randn(1, 4, 16), dim=-1)
    assert (match(unrelated, ref, ref_ab)[1] == 0).all()  # no confident match: the model's colour stays


def test_propagate_follows_motion_both_ways_and_stops_at_cuts():
    """A bright square moving 2 px a frame: the key's colour on it stays on it, forward and backward."""
    grays, cuts = [], []
    for t in range(12):
        g = np.full((64, 96), 60, np.uint8)
        g[20:40, 10 + 2 * t:30 + 2 * t] = 200
        g += (np.arange(96)[None] * 7 % 23).astype(np.uint8)  # texture for the flow
        grays.append(g)
        cuts.append(t == 10)
    key = 5
    key_ab = torch.zeros(2, 64, 96)
    key_ab[0, 20:40, 10 + 2 * key:30 + 2 * key] = 50.0
    out = propagate(grays, cuts, key, key_ab, decay=0.9)
    assert out[10] is None and out[11] is None  # after the cut
    for t in (0, 2, 7, 9):
        ab, weight = out[t]
        inside = ab[0, 24:36, 14 + 2 * t:26 + 2 * t]
        assert inside.mean() > 40, t  # the colour moved with the square
        assert ab[0, :, :8].abs().max() < 5 and ab[0, 50:].abs().max() < 5  # and stayed off the background
        assert 0 < weight.mean() <= 0.9 ** abs(t - key) + 1e-6


def test_keyframes_are_carried_on_the_frames_own_grid_capped_for_large_frames():
    assert carry_grid(360, 640) == (360, 640)  # not the render size: colour carried there blurs step by step
    assert carry_grid(1080, 1920) == (540, 960) and carry_grid(2160, 4096) == (540, 1024)


# -- whole runs ------------------------------------------------------------------------------------------

def chroma_of(read_video, path: Path):
    """Each frame's (Cb, Cr) at full size (4:2:0 planes repeated), as floats."""
    facts = read_video(path, planes=True)
    full = lambda c, y: np.repeat(np.repeat(c, y.shape[0] // c.shape[0], 0), y.shape[1] // c.shape[1], 1)  # noqa: E731
    return [(full(p[1], p[0]).astype(float), full(p[2], p[0]).astype(float)) for p in facts.planes]


def test_keyframe_is_exact_at_its_frame_and_carried_both_ways_within_its_shot(tmp_path, clip, neutral, read_video):
    key = 14
    image = write_png(tmp_path / "key.png", draw_frame(key, W, H, gray=False, cuts=(28,)))
    out = tmp_path / "out.mp4"
    Colorizer(neutral, device="cpu", render_size=96, keyframes=[f"{key}={image}"], reference_strength=0.0,
              smoothing="none").run(clip, out, FAST)
    chroma = chroma_of(read_video, out)
    # At the keyframe: its own colours (the film's true chroma; ab rendered at 96 px, so away from edges).
    truth = chroma_of(read_video, clip)[key]
    inner = disc_mask(key)
    for plane in (0, 1):
        assert abs(chroma[key][plane][inner].mean() - truth[plane][inner].mean()) < 4
    assert np.abs(chroma[key][1] - truth[1]).mean() < 4  # the whole frame, background included
    # Carried: the disc stays red (Cr well above neutral, above Cb) for 8 frames either way.
    for t in range(key - 8, key + 9):
        cb, cr = chroma[t][0][disc_mask(t)].mean(), chroma[t][1][disc_mask(t)].mean()
        assert cr > 150 and cr > cb + 30, (t, cb, cr)
    # Never across the cut at 28: the neutral model's gray from there on (up to the encoder's residue).
    for t in range(28, 36):
        for plane in chroma[t]:
            assert np.abs(plane - 128).mean() < 0.3 and abs(plane[disc_mask(t)].mean() - 128) < 1, t


def test_a_reference_colours_matching_content_only(tmp_path, make_video, read_video):
    """With the packaged model's features: a reference of this scene colours it; a reference of other content
    (a region the frames do not contain) changes nothing."""
    clip = make_video(tmp_path / "film.mp4", width=W, height=H, frames=6, gray=False)
    same = write_png(tmp_path / "same.png", draw_frame(3, W, H, gray=False, cuts=()))
    yy, xx = np.mgrid[0:H, 0:W]
    other = np.stack([(xx * 3) % 255, np.full_like(xx, 200), (yy * 5) % 255], -1).astype(np.uint8)
    other = write_png(tmp_path / "other.png", other)
    outs = {}
    for name, refs in (("auto", []), ("same", [same]), ("other", [other])):
        outs[name] = tmp_path / f"{name}.mp4"
        Colorizer(device="cpu", render_size=128, references=refs, smoothing="none").run(clip, outs[name], FAST)
    auto, with_same, with_other = (chroma_of(read_video, outs[n]) for n in ("auto", "same", "other"))
    disc = disc_mask(3)
    assert with_same[3][1][disc].mean() > auto[3][1][disc].mean() + 15  # the red disc of the reference
    for a, o in zip(auto, with_other):
        assert np.abs(a[0] - o[0]).mean() < 1.0 and np.abs(a[1] - o[1]).mean() < 1.0


@pytest.mark.parametrize("option,setup,message", [
    ("--reference", lambda d: d / "missing.png", "not found"),
    ("--reference", lambda d: write_png(d / "gray.png", np.repeat(np.arange(W, dtype=np.uint8)[None, :, None] % 255,
                                                                    H, 0).repeat(3, 2)), "is gray"),
    ("--reference", lambda d: (d / "text.png").write_text("not an image") and d / "text.png", "cannot be read"),
    ("--keyframe", lambda d: f"500={write_png(d / 'k.png', draw_frame(0, W, H, False, ()))}", "past the end"),
    ("--keyframe", lambda d: "0:00:09=" + str(write_png(d / 'k.png', draw_frame(0, W, H, False, ()))), "past the end"),
    ("--keyframe", lambda d: f"3={write_png(d / 'sq.png', draw_frame(0, 200, 200, False, ()))}", "aspect ratio"),
    ("--keyframe", lambda d: "soon=x.png", "expected a frame number"),
])
def test_bad_references_fail_in_one_line_before_any_work(tmp_path, clip, neutral, option, setup, message):
    out = tmp_path / "out.mp4"
    value = setup(tmp_path)
    result = CliRunner().invoke(cli, ["run", str(clip), "-o", str(out), "--model", str(neutral), "--device", "cpu",
                                      option, str(value)])
    assert result.exit_code != 0
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert any(message in line for line in lines), result.output
    assert "Traceback" not in result.output and len([l for l in lines if "error" in l.lower()]) == 1, result.output
    assert not out.exists() and not work_dir(out).exists()


def test_references_join_the_resume_identity(tmp_path, neutral):
    a = write_png(tmp_path / "a.png", draw_frame(0, W, H, False, ()))
    b = write_png(tmp_path / "b.png", draw_frame(9, W, H, False, ()))
    settings = [Colorizer(neutral, device="cpu", **kw).settings() for kw in (
        {}, {"references": [a]}, {"references": [b]}, {"references": [a], "reference_strength": 0.5},
        {"keyframes": [f"3={a}"]}, {"keyframes": [f"4={a}"]})]
    assert len({repr(s) for s in settings}) == len(settings)
    b.write_bytes(a.read_bytes())  # same content under another name: the same identity
    assert Colorizer(neutral, device="cpu", references=[b]).settings() == settings[1]


@pytest.mark.slow
def test_a_resumed_run_with_references_is_identical(tmp_path, make_video, neutral, read_video):
    clip = make_video(tmp_path / "clip.mp4", width=W, height=H, frames=96, gray=False, audio=True, cuts=(50,))
    key = write_png(tmp_path / "key.png", draw_frame(30, W, H, gray=False, cuts=(50,)))
    ref = write_png(tmp_path / "ref.png", draw_frame(70, W, H, gray=False, cuts=(50,)))

    def command(target: Path) -> list[str]:
        return [sys.executable, "-m", "vidcolor", "run", str(clip), "-o", str(target), "--model", str(neutral),
                "--render-size", "256", "--preset", "ultrafast", "--device", "cpu", "--segment-seconds", "1",
                "--keyframe", f"30={key}", "--reference", str(ref)]

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole = tmp_path / "whole.mp4"
    assert subprocess.run(command(whole), cwd=REPO, env=env, capture_output=True).returncode == 0
    target = tmp_path / "resumed.mp4"
    process = subprocess.Popen(command(target), cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    from test_resume import finished_segments, wait_for_segments
    wait_for_segments(process, target, 1, timeout=120)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert 1 <= finished_segments(target) < 4
    resumed = subprocess.run(command(target), cwd=REPO, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0 and "resumed after" in resumed.stderr, resumed.stderr
    a, b = read_video(whole, planes=True), read_video(target, planes=True)
    assert a.pts == b.pts
    for i, (pa, pb) in enumerate(zip(a.planes, b.planes)):
        assert all(np.array_equal(x, y) for x, y in zip(pa, pb)), f"frame {i} differs"
    assert not np.allclose(a.planes[30][2], 128, atol=2)  # the keyframe's colour is there


def test_carried_keyframe_colour_keeps_the_detail_a_444_output_holds(tmp_path, neutral, read_video):
    """Colour alternating column by column survives the carrying in a 4:4:4 output: it is stored at the
    output's chroma resolution (a 4:2:0 store would average each pair of columns to one colour)."""
    import av
    rng = np.random.default_rng(0)
    luma = cv2.GaussianBlur(rng.integers(60, 200, (H, W)).astype(np.uint8), (0, 0), 2)  # texture for the flow
    film = tmp_path / "film.mkv"
    with av.open(str(film), "w") as out:
        stream = out.add_stream("ffv1", rate=24)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv444p"
        for _ in range(12):
            frame = av.VideoFrame(W, H, "yuv444p")
            for plane, value in zip(frame.planes, (luma, np.full((H, W), 128, np.uint8), np.full((H, W), 128, np.uint8))):
                np.copyto(np.frombuffer(plane, np.uint8).reshape(H, plane.line_size)[:, :W], value)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    key = np.repeat(luma[..., None], 3, axis=2).astype(np.int16)
    key[:, 0::2] += (60, -30, -30)  # even columns red, odd ones blue
    key[:, 1::2] += (-30, -30, 60)
    image = write_png(tmp_path / "key.png", key.clip(0, 255).astype(np.uint8))
    out = tmp_path / "out.mkv"
    Colorizer(neutral, device="cpu", render_size=96, keyframes=[f"6={image}"], reference_strength=0.0,
              smoothing="none").run(film, out, OutputOptions(codec="ffv1", pix_fmt="yuv444p"))
    planes = read_video(out, planes=True).planes
    for t in (2, 4, 6, 8, 11):  # carried both ways, and the keyframe itself
        cr = planes[t][2].astype(float)[8:-8, 8:-8]
        assert np.abs(cr[:, 0::2][:, :-1] - cr[:, 1::2][:, :-1]).mean() > 20, t


def test_preview_carries_keyframes_with_the_automatic_pixel_format(tmp_path, clip, neutral):
    """`preview_frames` is given `--pix-fmt auto`: the keyframe store's layout comes from the resolved one."""
    key = 14
    image = write_png(tmp_path / "key.png", draw_frame(key, W, H, gray=False, cuts=(28,)))
    colorizer = Colorizer(neutral, device="cpu", render_size=96, keyframes=[f"{key}={image}"],
                          reference_strength=0.0, smoothing="none")
    _, frames = preview_frames(colorizer_frames(colorizer), clip, [16.5 / 36])
    seconds, _, coloured = frames[0]
    t = round(seconds * 24)  # the clip's frame index (24 fps)
    assert key < t < 28
    y, cb, cr = coloured.planes
    mask = disc_mask(t)[::H // cr.shape[0], ::W // cr.shape[1]]
    assert cr[mask].mean() > 150 and cr[mask].mean() > cb[mask].mean() + 30  # the keyframe's red disc, carried
