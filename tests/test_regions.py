"""People coloured at their own scale (`vidcolor.regions`): the box and mask maths, the blend, and the
promise that a frame with no face keeps its colours bit for bit."""

from __future__ import annotations

import pytest
import torch

from vidcolor import regions
from vidcolor.errors import OptionError
from vidcolor.media import OutputOptions
from vidcolor.pipeline import Colorizer
from vidcolor.regions import (MIN_GAIN, PERSON_ASPECT, crop_shape, feather_mask, person_box, recolor_people)


def test_person_box_holds_the_face_at_the_fixed_aspect():
    face = (100, 60, 130, 90)  # 30 px wide
    x0, y0, x1, y1 = person_box(face, 480, 640)
    assert x0 <= 100 and y0 <= 60 and x1 >= 130 and y1 >= 90
    assert x1 - x0 == 90  # PERSON_FACES face widths
    assert (y1 - y0) / (x1 - x0) == pytest.approx(PERSON_ASPECT[0] / PERSON_ASPECT[1], abs=0.02)


def test_person_box_is_moved_inside_the_image_not_cut():
    x0, y0, x1, y1 = person_box((0, 0, 20, 20), 100, 100)  # a face in the corner
    assert (x0, y0) == (0, 0) and (x1, y1) == (60, 80)
    x0, y0, x1, y1 = person_box((80, 90, 100, 100), 100, 100)  # at the bottom right
    assert (x1, y1) == (100, 100) and (x1 - x0, y1 - y0) == (60, 80)


def test_feather_mask_is_one_inside_and_fades_to_the_edges():
    m = feather_mask(40, 60, border=10)
    assert m[20, 30] == 1.0 and m[10:30, 10:50].min() == 1.0
    assert m[0, 30] < 0.05 and m[20, 0] < 0.05 and m[0, 0] < 0.01
    assert torch.equal(m, m.flip(0)) and torch.equal(m, m.flip(1))
    assert bool((m[:10, 30].diff() > 0).all())  # rises monotonically over the border


def const_predict(a: float, b: float):
    def predict(L: torch.Tensor) -> torch.Tensor:
        assert L.shape[-2:] == crop_shape(64)  # every crop is coloured at the same shape, in one batch
        return torch.stack([torch.full_like(L[:, 0], a), torch.full_like(L[:, 0], b)], dim=1)
    return predict


def test_recolor_people_without_boxes_returns_the_same_tensor():
    ab = torch.randn(1, 2, 64, 96)
    assert recolor_people(ab, torch.rand(1, 1, 256, 384) * 100, [], (256, 384), const_predict(9, 9), 64) is ab


def test_recolor_people_paints_the_box_and_nothing_else():
    ab = torch.zeros(1, 2, 64, 96)
    L = torch.rand(1, 1, 256, 384) * 100
    box = (96, 32, 144, 96)  # luma pixels; at ab scale (x/4): (24, 8, 36, 24), 12 px wide -> gain 64/12
    out = recolor_people(ab, L, [box], (256, 384), const_predict(30.0, -20.0), 64)
    assert torch.allclose(out[0, :, 16, 30], torch.tensor([30.0, -20.0]))  # the box's centre takes the crop's colour
    outside = torch.ones(64, 96, dtype=torch.bool)
    outside[8:24, 24:36] = False
    assert torch.equal(out[0, :, outside], ab[0, :, outside])


def test_recolor_people_skips_people_that_would_not_be_seen_larger():
    ab = torch.randn(1, 2, 64, 96)
    wide = round(64 / MIN_GAIN) + 2  # at ab scale: less than MIN_GAIN smaller than the crop
    box = (0, 0, 4 * wide, 4 * wide * 4 // 3)
    assert recolor_people(ab, torch.rand(1, 1, 256, 384) * 100, [box], (256, 384), const_predict(9, 9), 64) is ab


def test_overlapping_people_average_their_colours():
    ab = torch.zeros(1, 2, 64, 96)
    calls = []

    def predict(L):
        calls.append(L.shape[0])
        return torch.stack([torch.tensor([[10.0, 0.0]]), torch.tensor([[30.0, 0.0]])])[:, 0, :, None, None] \
            .expand(2, 2, *L.shape[-2:]).clone()

    box = (96, 32, 144, 96)
    out = recolor_people(ab, torch.rand(1, 1, 256, 384) * 100, [box, box], (256, 384), predict, 64)
    assert calls == [2]  # one batch for both people
    assert out[0, 0, 16, 30].item() == pytest.approx(20.0)


class Finder:
    """A face finder stub: the given person boxes for every frame."""

    def __init__(self, boxes):
        self.boxes, self.calls = boxes, 0

    def people(self, y):
        self.calls += 1
        return list(self.boxes)


def test_colorize_is_bit_identical_where_no_face_is_found(make_model, tmp_path):
    model = make_model(tmp_path / "m.pt", gain=0.5)
    rgb = torch.rand(2, 3, 180, 320)
    plain = Colorizer(model, device="cpu", render_size=64).colorize(rgb)
    people = Colorizer(model, device="cpu", render_size=64)
    people.finder = Finder([])
    assert torch.equal(people.colorize(rgb), plain)
    assert people.finder.calls == 2  # every frame was searched


def test_colorize_recolours_only_around_the_person(make_model, tmp_path):
    model = make_model(tmp_path / "m.pt", gain=0.5)
    rgb = torch.rand(1, 3, 180, 320)
    plain = Colorizer(model, device="cpu", render_size=64).colorize(rgb)
    people = Colorizer(model, device="cpu", render_size=64)
    people.finder = Finder([(200, 40, 236, 88)])
    out = people.colorize(rgb)
    assert (out - plain)[..., 50:80, 205:230].abs().max() > 1e-3
    far = torch.ones(180, 320, dtype=torch.bool)
    far[30:100, 190:246] = False
    assert torch.equal(out[..., far], plain[..., far])


def test_face_finder_needs_the_extra_or_finds_faces(monkeypatch, shared_data):
    dlib = pytest.importorskip("dlib", reason="the people extra (dlib) is not installed")
    assert dlib is not None
    import numpy as np

    from vidcolor.train.pack import read_image
    finder = regions.FaceFinder()
    assert finder(np.full((240, 320), 128, np.uint8)) == []  # a flat frame has no face
    photo = read_image(shared_data / "photos-people" / "group-photos" / "linzaer_18.jpg")
    gray = np.ascontiguousarray(photo.mean(axis=2).astype(np.uint8))
    faces = finder(gray)
    assert faces and all(0 <= x0 < x1 <= gray.shape[1] and 0 <= y0 < y1 <= gray.shape[0]
                         for x0, y0, x1, y1 in faces)


def test_without_dlib_the_option_fails_at_once_with_the_install_line(monkeypatch, tiny_model):
    import builtins
    real = builtins.__import__

    def no_dlib(name, *args, **kwargs):
        if name == "dlib":
            raise ImportError("no dlib")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dlib)
    with pytest.raises(OptionError, match=r"vidcolor\[people\]"):
        Colorizer(tiny_model, device="cpu", people=True)


def test_run_colours_a_video_identically_where_no_face_is_found(make_video, read_video, tiny_model, tmp_path):
    src = make_video(tmp_path / "in.mp4", frames=12)
    plain = Colorizer(tiny_model, device="cpu", render_size=64)
    plain.run(src, tmp_path / "plain.mp4")
    people = Colorizer(tiny_model, device="cpu", render_size=64)
    people.finder = Finder([])
    people.run(src, tmp_path / "people.mp4")
    a, b = (read_video(tmp_path / n, planes=True).planes for n in ("plain.mp4", "people.mp4"))
    assert people.finder.calls == 12 and len(a) == len(b) == 12
    assert all(all((p == q).all() for p, q in zip(fa, fb)) for fa, fb in zip(a, b))


def test_run_recolours_the_person_in_a_video(make_video, read_video, make_model, tmp_path):
    model = make_model(tmp_path / "m.pt", gain=0.5)
    src = make_video(tmp_path / "in.mp4", frames=6)
    plain = Colorizer(model, device="cpu", render_size=64, smoothing="none")
    lossless = OutputOptions(crf=0)  # x264's rate control would otherwise move bits all over the frame
    plain.run(src, tmp_path / "plain.mp4", lossless)
    people = Colorizer(model, device="cpu", render_size=64, smoothing="none")
    people.finder = Finder([(200, 40, 236, 88)])
    people.run(src, tmp_path / "people.mp4", lossless)
    assert people.settings()["people"] is False  # a stub finder: the option itself was not set
    a, b = (read_video(tmp_path / n, planes=True).planes for n in ("plain.mp4", "people.mp4"))
    cb = [(fa[1].astype(int) - fb[1].astype(int)) for fa, fb in zip(a, b)]  # Cb at chroma size (x/2, y/2)
    assert max(abs(d[25:40, 102:115]).max() for d in cb) > 2
    assert all(not d[:, :80].any() for d in cb)  # far from the person: exactly as before
