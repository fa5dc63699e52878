import pytest
import torch
import torch.nn.functional as F

from vidcolor.geometry import resize
from vidcolor.upsample import _box_mean_torch, box_mean, guided_upsample


@pytest.mark.parametrize("box", [box_mean, _box_mean_torch], ids=["cpu-opencv", "torch"])
def test_box_mean_matches_brute_force_with_clipped_borders(box):
    x = torch.rand(2, 3, 11, 14, generator=torch.Generator().manual_seed(0))
    r = 2
    expected = torch.empty_like(x)
    for i in range(11):
        for j in range(14):
            expected[..., i, j] = x[..., max(0, i - r):i + r + 1, max(0, j - r):j + r + 1].mean(dim=(-2, -1))
    torch.testing.assert_close(box(x, r), expected)


def scene(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A dark disc on a bright ground (L) whose colour differs from the ground's (ab): colour edges = luma edges."""
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    inside = ((xs * 1.3) ** 2 + ys ** 2 < 0.4).float()[None, None]
    L = 80 - 50 * inside
    ab = torch.cat([40 * inside - 10, -30 * inside + 20], dim=1)
    return L, ab


def test_guided_upsampling_puts_colour_edges_on_luma_edges():
    L_high, ab_true = scene(360, 640)
    L_low = resize(L_high, (90, 160))
    ab_low = resize(ab_true, (90, 160))  # what a model at render size would predict at best
    bilinear = F.interpolate(ab_low, size=(360, 640), mode="bilinear", align_corners=False)
    guided = guided_upsample(ab_low, L_low, L_high)
    assert guided.shape == ab_true.shape
    err_bilinear = (bilinear - ab_true).abs().mean()
    err_guided = (guided - ab_true).abs().mean()
    assert err_guided < 0.5 * err_bilinear


def test_guided_upsampling_keeps_flat_colour_and_ignores_uncorrelated_grain():
    g = torch.Generator().manual_seed(1)
    L_high = 50 + 3 * torch.randn(1, 1, 120, 160, generator=g)  # film grain, no structure
    L_low = resize(L_high, (60, 80))
    ab_low = torch.tensor([12.0, -7.0]).view(1, 2, 1, 1).expand(1, 2, 60, 80)
    out = guided_upsample(ab_low, L_low, L_high)
    torch.testing.assert_close(out, ab_low[:, :, :1, :1].expand(1, 2, 120, 160), atol=1e-3, rtol=0)
