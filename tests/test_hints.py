"""Colour hints (`--hints WHEN=IMAGE`): the spread within a frame (`vidcolor.spread`), the checks of hint images,
and whole runs: the hint's colour at its pixels with the film's luma, spread within a region and stopped at a
strong edge, carried through the shot and never past a cut. With the neutral model (ab = 0 exactly) every
colour in the output comes from the hints."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import draw_frame

from vidcolor.cli import cli
from vidcolor.color import join_lab, lab_to_rgb, rgb_to_lab
from vidcolor.colorspec import YuvSpec
from vidcolor.errors import InputError
from vidcolor.hints import HINT_ALPHA, load_hints
from vidcolor.media import OutputOptions
from vidcolor.pipeline import Colorizer
from vidcolor.resume import work_dir
from vidcolor.spread import spread
from vidcolor.yuv import rgb_to_yuv

LOSSLESS = OutputOptions(preset="ultrafast", pix_fmt="yuv444p", crf=0)
W, H = 320, 180
RED = (200, 40, 40)


def write_rgba(path: Path, rgba: np.ndarray) -> Path:
    cv2.imwrite(str(path), np.ascontiguousarray(rgba[..., [2, 1, 0, 3]]))
    return path


def stroke(width: int, height: int, box: tuple[int, int, int, int], colour=RED) -> np.ndarray:
    """A transparent picture with one opaque rectangle (x0, y0, x1, y1) of `colour`."""
    rgba = np.zeros((height, width, 4), np.uint8)
    x0, y0, x1, y1 = box
    rgba[y0:y1, x0:x1, :3] = colour
    rgba[y0:y1, x0:x1, 3] = 255
    return rgba


def write_gray_video(path: Path, frames: list[np.ndarray], fps: int = 24) -> Path:
    """A lossless 4:4:4 H.264 clip of these (H,W) uint8 luma frames (neutral chroma)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv444p"
        stream.options = {"crf": "0", "preset": "ultrafast"}
        stream.time_base = Fraction(1, fps)
        for i, y in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.stack([y, np.full_like(y, 128), np.full_like(y, 128)]),
                                               format="yuv444p")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def halves(left: int = 70, right: int = 190) -> np.ndarray:
    """A frame of two flat regions with a strong edge between them, a little texture in each."""
    rng = np.random.default_rng(0)
    y = np.where(np.arange(W)[None, :] < W // 2, left, right).repeat(H, 0) + rng.integers(-2, 3, (H, W))
    return y.clip(16, 235).astype(np.uint8)


def chroma(read_video, path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(p[1].astype(float), p[2].astype(float)) for p in read_video(path, planes=True).planes]


@pytest.fixture(scope="module")
def neutral(tmp_path_factory, make_model):
    return make_model(tmp_path_factory.mktemp("model") / "neutral.pt", ab=(0.0, 0.0))


# -- the spread, without video ---------------------------------------------------------------------------

def test_spread_fills_a_flat_region_and_stops_at_a_strong_edge():
    L = np.where(np.arange(80)[None, :] < 40, 30.0, 80.0).repeat(60, 0)
    mask = np.zeros((60, 80), bool)
    mask[28:32, 8:12] = True
    values = np.zeros((2, 60, 80))
    values[:, mask] = [[20.0], [-10.0]]
    out, reach = spread(L, mask, values)
    left, right = np.s_[:, :38], np.s_[:, 42:]
    assert np.allclose(out[0][left], 20.0, atol=0.5) and np.allclose(out[1][left], -10.0, atol=0.5)
    assert reach[left].min() > 0.5  # the whole region, even 30 pixels from the stroke
    assert reach[right].max() < 0.01  # not past the edge


def test_spread_keeps_hinted_values_and_gives_nothing_without_hints():
    rng = np.random.default_rng(1)
    L = rng.uniform(0, 100, (20, 30))
    mask = rng.random((20, 30)) < 0.05
    values = rng.uniform(-50, 50, (2, 20, 30))
    out, reach = spread(L, mask, values)
    assert np.allclose(out[:, mask], values[:, mask], atol=0.5) and (reach[mask] > 0.99).all()
    out, reach = spread(L, np.zeros((20, 30), bool), values)
    assert not out.any() and not reach.any()


# -- hint images: checked before any work -----------------------------------------------------------------

def test_hint_colours_give_their_chroma_only(tmp_path):
    image = write_rgba(tmp_path / "h.png", stroke(W, H, (10, 10, 20, 20)))
    hint, = load_hints([f"5={image}"])
    assert hint.mask.sum() == 100 and hint.when.frame == 5
    expected = rgb_to_lab(torch.tensor(RED, dtype=torch.float32).view(1, 3, 1, 1) / 255)[0, 1:, 0, 0].numpy()
    assert np.allclose(hint.ab[:, 15, 15], expected, atol=0.01) and not hint.ab[:, 0, 0].any()


def test_two_hint_images_for_one_frame_merge_the_later_winning(tmp_path):
    a = write_rgba(tmp_path / "a.png", stroke(W, H, (0, 0, 40, 40), RED))
    b = write_rgba(tmp_path / "b.png", stroke(W, H, (20, 20, 60, 60), (40, 40, 200)))
    hint, = load_hints([f"3={a}", f"3={b}"])
    assert hint.mask[10, 10] and hint.mask[50, 50]
    assert hint.ab[1, 30, 30] < 0 < hint.ab[1, 10, 10]  # blue (b* < 0) where both painted, red alone elsewhere


@pytest.mark.parametrize("setup,message", [
    (lambda d: write_rgba(d / "empty.png", np.zeros((H, W, 4), np.uint8)), "no hinted pixels"),
    (lambda d: (cv2.imwrite(str(d / "rgb.png"), np.zeros((H, W, 3), np.uint8)), d / "rgb.png")[1], "no alpha channel"),
    (lambda d: write_rgba(d / "dark.png", stroke(W, H, (5, 7, 9, 9), (3, 2, 2))), "8 hinted pixels are too dark"),
    (lambda d: write_rgba(d / "light.png", stroke(W, H, (0, 0, 2, 2), (255, 255, 252))), "too light"),
    (lambda d: d / "missing.png", "not found"),
])
def test_bad_hint_images_are_refused_in_one_line(tmp_path, setup, message):
    with pytest.raises(InputError, match=message) as caught:
        load_hints([f"4={setup(tmp_path)}"])
    assert "\n" not in str(caught.value)
    if "dark" in message:
        assert "x=5 y=7" in str(caught.value)  # which pixels


@pytest.mark.parametrize("spec,message", [
    (lambda d: f"500={write_rgba(d / 'h.png', stroke(W, H, (0, 0, 9, 9)))}", "past the end"),
    (lambda d: f"3={write_rgba(d / 'sq.png', stroke(200, 200, (0, 0, 9, 9)))}", "aspect ratio"),
    (lambda d: f"3={write_rgba(d / 'e.png', np.zeros((H, W, 4), np.uint8))}", "no hinted pixels"),
    (lambda d: "soon=x.png", "expected a frame number"),
    (lambda d: "x.png", "expected WHEN=IMAGE"),
])
def test_bad_hints_fail_the_run_in_one_line_before_any_work(tmp_path, make_video, neutral, spec, message):
    clip = make_video(tmp_path / "film.mp4", width=W, height=H, frames=12)
    out = tmp_path / "out.mp4"
    result = CliRunner().invoke(cli, ["run", str(clip), "-o", str(out), "--model", str(neutral), "--device", "cpu",
                                      "--hints", spec(tmp_path)])
    assert result.exit_code != 0
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert any(message in line for line in lines), result.output
    assert "Traceback" not in result.output and len([l for l in lines if "error" in l.lower()]) == 1, result.output
    assert not out.exists() and not work_dir(out).exists()


def test_hints_join_the_resume_identity(tmp_path, neutral):
    a = write_rgba(tmp_path / "a.png", stroke(W, H, (0, 0, 9, 9)))
    b = write_rgba(tmp_path / "b.png", stroke(W, H, (0, 0, 9, 9), (40, 200, 40)))
    settings = [Colorizer(neutral, device="cpu", hints=h).settings() for h in ([], [f"3={a}"], [f"4={a}"], [f"3={b}"])]
    assert len({repr(s) for s in settings}) == len(settings)
    b.write_bytes(a.read_bytes())  # the same content under another name: the same identity
    assert Colorizer(neutral, device="cpu", hints=[f"3={b}"]).settings() == settings[1]


# -- whole runs -------------------------------------------------------------------------------------------

def test_a_hint_colours_its_region_with_the_films_luma_and_nothing_past_the_edge(tmp_path, neutral, read_video):
    frames = [halves()] * 6
    clip = write_gray_video(tmp_path / "halves.mp4", frames)
    hint = write_rgba(tmp_path / "h.png", stroke(W, H, (6, 6, 16, 16)))  # one corner of the dark half
    out = tmp_path / "out.mp4"
    Colorizer(neutral, device="cpu", render_size=96, smoothing="none", hints=[f"2={hint}"]).run(clip, out, LOSSLESS)
    cb, cr = chroma(read_video, out)[2]
    # At the hinted pixels: the hint's chroma with the film's own luma.
    y = torch.from_numpy(frames[2][6:16, 6:16]).float()[None, None] / 255
    L = rgb_to_lab(torch.cat([(y - 16 / 255) * 255 / 219] * 3, dim=1).clamp(0, 1))[:, :1]
    ab = rgb_to_lab(torch.tensor(RED, dtype=torch.float32).view(1, 3, 1, 1).expand(1, 3, 10, 10) / 255)[:, 1:]
    expected = rgb_to_yuv(lab_to_rgb(join_lab(L, ab)), YuvSpec("bt601", full_range=False)) * 255  # as run builds chroma: unclipped
    assert abs(cb[6:16, 6:16].mean() - expected[0, 1].mean().item()) < 3
    assert abs(cr[6:16, 6:16].mean() - expected[0, 2].mean().item()) < 3
    # Spread over the dark half, far from the stroke too; the bright half keeps the automatic (neutral) colour.
    assert cr[:, 100:150].mean() > 150 and cr[150:, :60].mean() > 150
    assert np.abs(cb[:, W // 2 + 4:] - 128).max() <= 1 and np.abs(cr[:, W // 2 + 4:] - 128).max() <= 1


def test_a_hint_is_carried_through_its_shot_and_not_past_a_cut(tmp_path, make_video, neutral, read_video):
    clip = make_video(tmp_path / "film.mp4", width=W, height=H, frames=36, gray=False, cuts=(28,))
    key = 20
    truth = draw_frame(key, W, H, gray=False, cuts=(28,))
    rgba = np.zeros((H, W, 4), np.uint8)
    yy, xx = np.ogrid[0:H, 0:W]
    cx, cy = (20 + 5 * key) % W, H / 2 + H / 4 * np.sin(key / 5)
    disc = (xx - cx) ** 2 + (yy - cy) ** 2 < (0.3 * min(W, H) / 6) ** 2
    rgba[disc, :3], rgba[disc, 3] = truth[disc], HINT_ALPHA  # a few true-colour strokes on the red disc
    hint = write_rgba(tmp_path / "h.png", rgba)
    out = tmp_path / "out.mp4"
    Colorizer(neutral, device="cpu", render_size=96, smoothing="none", hints=[f"{key}={hint}"]).run(
        clip, out, LOSSLESS)
    planes = chroma(read_video, out)
    for t in range(key, 28):  # carried to the next frames of its shot: the disc stays red
        cx, cy = (20 + 5 * t) % W, H / 2 + H / 4 * np.sin(t / 5)
        inner = (xx - cx) ** 2 + (yy - cy) ** 2 < (0.3 * min(W, H) / 6) ** 2
        cb, cr = planes[t][0][inner].mean(), planes[t][1][inner].mean()
        assert cr > 150 and cr > cb + 30, (t, cb, cr)
    for t in range(28, 36):  # never past the cut: the neutral model's gray
        assert np.abs(planes[t][0] - 128).max() <= 1 and np.abs(planes[t][1] - 128).max() <= 1, t


def test_hints_keyframes_and_references_in_one_run(tmp_path, make_video, neutral, read_video):
    """Hints win at the pixels they reach, keyframes at their own frames."""
    clip = make_video(tmp_path / "film.mp4", width=W, height=H, frames=24, gray=False)
    key, hinted = 8, 12
    keyframe = tmp_path / "key.png"
    cv2.imwrite(str(keyframe), draw_frame(key, W, H, gray=False, cuts=())[..., ::-1])
    blue = (40, 60, 220)
    rgba = np.zeros((H, W, 4), np.uint8)
    yy, xx = np.ogrid[0:H, 0:W]

    def disc(t: int, r: float = 0.3) -> np.ndarray:
        cx, cy = (20 + 5 * t) % W, H / 2 + H / 4 * np.sin(t / 5)
        return (xx - cx) ** 2 + (yy - cy) ** 2 < (r * min(W, H) / 6) ** 2

    rgba[disc(key), :3], rgba[disc(key), 3] = blue, 255  # a blue stroke on the keyframe's own frame: ignored
    rgba[disc(hinted), :3], rgba[disc(hinted), 3] = blue, 255
    hint = write_rgba(tmp_path / "h.png", rgba)
    reference = tmp_path / "ref.png"
    cv2.imwrite(str(reference), draw_frame(3, W, H, gray=False, cuts=())[..., ::-1])
    out = tmp_path / "out.mp4"
    Colorizer(neutral, device="cpu", render_size=96, smoothing="none", keyframes=[f"{key}={keyframe}"],
              references=[reference], hints=[f"{key}={hint}", f"{hinted}={hint}"]).run(clip, out, LOSSLESS)
    planes = chroma(read_video, out)
    cb, cr = planes[key][0][disc(key)].mean(), planes[key][1][disc(key)].mean()
    assert cr > 150 and cr > cb + 30, (cb, cr)  # the keyframe's red disc, not the hint's blue
    cb, cr = planes[hinted][0][disc(hinted)].mean(), planes[hinted][1][disc(hinted)].mean()
    assert cb > 150 and cb > cr + 30, (cb, cr)  # the hint's blue over the keyframe's carried red
