"""Smoothing through the whole `vidcolor run` path: no mode carries colour across a scene cut.

The model is replaced by a hook whose colour depends only on the shot (dark shot: one colour,
bright shot: another), so without smoothing every frame of a shot has the same chroma, and
any colour carried over a cut shows as a chroma change on the frames next to it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidcolor.media import OutputOptions
from vidcolor.pipeline import Colorizer
from vidcolor.temporal import SMOOTHERS

CUT = 10  # make_video's scene 0 (level 50) is dark, scene 1 (level 200) bright


def per_shot_ab(L: torch.Tensor) -> torch.Tensor:
    """(B,1,h,w) L -> (B,2,h,w): ab (40, 30) for a dark frame, (-35, -25) for a bright one."""
    dark = (L.mean(dim=(1, 2, 3)) < 50).float().view(-1, 1, 1, 1)
    colour = dark * torch.tensor([40.0, 30.0]).view(1, 2, 1, 1) + (1 - dark) * torch.tensor([-35.0, -25.0]).view(1, 2, 1, 1)
    return colour.expand(-1, -1, *L.shape[-2:]).clone()


def chroma_means(read_video, path) -> np.ndarray:
    """(T,2) mean Cb, Cr of each decoded frame."""
    return np.array([[p[1].mean(), p[2].mean()] for p in read_video(path, planes=True).planes])


@pytest.fixture(scope="module")
def source(tmp_path_factory, make_video):
    return make_video(tmp_path_factory.mktemp("cut") / "cut.mp4", width=160, height=96, frames=20, cuts=(CUT,))


@pytest.fixture(scope="module")
def unsmoothed(tmp_path_factory, source, make_model, read_video):
    model = make_model(tmp_path_factory.mktemp("m") / "m.pt")
    colorizer = Colorizer(model, device="cpu", render_size=64, batch_size=3, smoothing="none")
    colorizer.predict_ab = per_shot_ab
    out = colorizer.run(source, tmp_path_factory.mktemp("none") / "none.mp4", OutputOptions(crf=0, preset="ultrafast"))
    chroma = chroma_means(read_video, out.output)
    assert np.abs(chroma[CUT - 1] - chroma[CUT]).max() > 20  # the two shots' colours are far apart
    return model, chroma


@pytest.mark.parametrize("mode", sorted(set(SMOOTHERS) - {"none"}))
def test_no_colour_across_a_cut_in_any_mode(tmp_path, source, unsmoothed, read_video, mode):
    model, expected = unsmoothed
    colorizer = Colorizer(model, device="cpu", render_size=64, batch_size=3, smoothing=mode, strength=0.9, window=9)
    colorizer.predict_ab = per_shot_ab
    out = colorizer.run(source, tmp_path / f"{mode}.mp4", OutputOptions(crf=0, preset="ultrafast"))
    chroma = chroma_means(read_video, out.output)
    assert len(chroma) == len(expected) == 20
    # every frame, those on both sides of the cut included, keeps its own shot's colour
    assert np.abs(chroma - expected).max() < 1.0, np.abs(chroma - expected).max(axis=1)
