import av
import numpy as np
import pytest
import torch

from vidcolor.media.reader import plane_arrays
from vidcolor.colorspec import LUMA_WEIGHTS, YuvSpec
from vidcolor.yuv import rgb_to_yuv, to_uint8, yuv_to_rgb

SPECS = [YuvSpec(m, full) for m in LUMA_WEIGHTS for full in (False, True)]
PRIMARIES = torch.tensor([[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=torch.float32)


def as_image(rgb_rows: torch.Tensor) -> torch.Tensor:
    """(N,3) colours -> (1,3,1,N) image."""
    return rgb_rows.T.reshape(1, 3, 1, -1)


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_round_trip(spec):
    rgb = torch.rand(2, 3, 17, 23, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(yuv_to_rgb(rgb_to_yuv(rgb, spec), spec), rgb, atol=1e-5)
    quantised = to_uint8(rgb_to_yuv(rgb, spec)).float() / 255
    assert (yuv_to_rgb(quantised, spec) - rgb).abs().max() < 3 / 255  # 8-bit YUV costs about 1-2 RGB codes


# (spec, colour, expected 8-bit Y, Cb, Cr): the published reference values.
KNOWN = [
    (YuvSpec("bt709", False), (1, 0, 0), (63, 102, 240)),
    (YuvSpec("bt709", False), (0, 1, 0), (173, 42, 26)),
    (YuvSpec("bt709", False), (0, 0, 1), (32, 240, 118)),
    (YuvSpec("bt709", False), (1, 1, 1), (235, 128, 128)),
    (YuvSpec("bt709", False), (0, 0, 0), (16, 128, 128)),
    (YuvSpec("bt601", False), (1, 0, 0), (81, 90, 240)),
    (YuvSpec("bt601", False), (0, 1, 0), (145, 54, 34)),
    (YuvSpec("bt601", False), (0, 0, 1), (41, 240, 110)),
    (YuvSpec("bt601", True), (1, 0, 0), (76, 85, 255)),
    (YuvSpec("bt601", True), (1, 1, 1), (255, 128, 128)),
    (YuvSpec("bt709", True), (0, 0, 1), (18, 255, 116)),
]


@pytest.mark.parametrize("spec,rgb,expected", KNOWN)
def test_known_values(spec, rgb, expected):
    yuv = to_uint8(rgb_to_yuv(as_image(torch.tensor([rgb], dtype=torch.float32)), spec))
    assert yuv.flatten().tolist() == list(expected)


@pytest.mark.parametrize("spec", [s for s in SPECS if s.matrix != "bt2020"], ids=str)
def test_matches_swscale(spec):
    """FFmpeg's own converter agrees within one code value, so our tags and maths agree."""
    rgb8 = np.random.default_rng(1).integers(0, 256, (16, 32, 3), dtype=np.uint8)
    frame = av.VideoFrame.from_ndarray(rgb8, format="rgb24").reformat(
        format="yuv444p", dst_colorspace={"bt601": "itu601", "bt709": "itu709"}[spec.matrix],
        dst_color_range=2 if spec.full_range else 1)
    reference = np.stack(plane_arrays(frame))
    ours = to_uint8(rgb_to_yuv(torch.from_numpy(rgb8).permute(2, 0, 1)[None].float() / 255, spec))[0].numpy()
    assert np.abs(ours.astype(int) - reference).max() <= 1


def test_neutral_chroma_for_gray():
    gray = torch.linspace(0, 1, 11).view(1, 1, 1, 11).expand(1, 3, 1, 11)
    for spec in SPECS:
        assert to_uint8(rgb_to_yuv(gray, spec))[:, 1:].eq(128).all()


def test_unknown_matrix_rejected():
    with pytest.raises(ValueError, match="bt470"):
        YuvSpec("bt470")


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_luma_lightness_equals_full_conversion_for_gray(spec):
    """L* from Y alone (the pipeline's fast path) is the L* of the full Y'CbCr -> RGB -> Lab chain
    for every 8-bit luma code with neutral chroma, in both ranges (clamped outside limited range)."""
    from vidcolor.color import gray_lightness, rgb_to_lab
    from vidcolor.yuv import luma_to_gray

    y = torch.arange(256, dtype=torch.float32) / 255
    yuv = torch.stack([y, torch.full_like(y, 128 / 255), torch.full_like(y, 128 / 255)]).view(1, 3, 1, 256)
    full = rgb_to_lab(yuv_to_rgb(yuv, spec))[0, 0, 0]
    fast = gray_lightness(luma_to_gray(y, spec))
    assert (full - fast).abs().max() < 1e-3
    assert fast[0] == 0 and abs(fast[-1] - 100) < 1e-3 and bool((fast.diff() >= 0).all())
