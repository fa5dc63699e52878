"""`vidcolor.lab` is plain torch (training runs where kornia is not installed) and must stay kornia's maths:
the shipped model was trained, and is run, on kornia's L*a*b*."""

from __future__ import annotations

import kornia.color as kc
import torch

from vidcolor.lab import lab_to_rgb, rgb_to_lab


def test_lab_matches_kornia_both_ways_including_out_of_gamut():
    torch.manual_seed(0)
    rgb = torch.rand(3, 3, 32, 48)
    rgb[0, :, :4] = 0.0
    rgb[1, :, :4] = 1.0
    torch.testing.assert_close(rgb_to_lab(rgb), kc.rgb_to_lab(rgb), atol=1e-5, rtol=0)
    lab = kc.rgb_to_lab(rgb)
    lab[:, 1:] += torch.randn_like(lab[:, 1:]) * 40  # many pixels pushed out of the sRGB gamut
    torch.testing.assert_close(lab_to_rgb(lab), kc.lab_to_rgb(lab, clip=True), atol=1e-5, rtol=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # fp32 inside, whatever the caller's autocast
        assert rgb_to_lab(rgb).dtype == torch.float32
