"""The ab-bin head's maths: gamut bins, soft encoding, annealed-mean decoding, rebalancing."""

from __future__ import annotations

import math

import pytest
import torch

from vidcolor.colorbins import (annealed_mean, bin_histogram, gamut_bins, rebalance_weights, soft_cross_entropy,
                                soft_encode)


@pytest.fixture(scope="module")
def centers() -> torch.Tensor:
    return gamut_bins()


def _probs_from_soft(idx: torch.Tensor, w: torch.Tensor, q: int) -> torch.Tensor:
    probs = torch.zeros(idx.shape[0], q, *idx.shape[2:])
    return probs.scatter_add_(1, idx, w)


def test_gamut_bins_are_a_grid_inside_srgb(centers):
    assert 200 < len(centers) < 330  # "about 313" in Zhang et al.; 256 with our sRGB/D65 conversion
    assert torch.equal(centers % 10, torch.zeros_like(centers))
    assert len(torch.unique(centers, dim=0)) == len(centers)
    assert any(torch.equal(c, torch.tensor([0.0, 0.0])) for c in centers)  # gray is a bin
    # Out-of-gamut corners are not bins: no sRGB colour has a = b = -110.
    assert not any(torch.equal(c, torch.tensor([-110.0, -110.0])) for c in centers)


def test_soft_encoding_decodes_back_within_a_bin(centers):
    gen = torch.Generator().manual_seed(0)
    # Random ab values near bin centres that are in gamut (so the 5 nearest bins surround them).
    pick = torch.randint(0, len(centers), (64,), generator=gen)
    ab = centers[pick] + (torch.rand(64, 2, generator=gen) - 0.5) * 10
    ab = ab.T.reshape(1, 2, 8, 8)
    idx, w = soft_encode(ab, centers)
    assert idx.shape == (1, 5, 8, 8)
    torch.testing.assert_close(w.sum(1), torch.ones(1, 8, 8))
    logits = _probs_from_soft(idx, w, len(centers)).clamp(min=1e-12).log()
    decoded = annealed_mean(logits, centers, temperature=1.0)
    err = (decoded - ab).pow(2).sum(1).sqrt()
    assert err.max() < 10.0  # within a bin's width
    assert err.mean() < 5.0


def test_soft_weights_are_gaussian_in_distance(centers):
    ab = torch.tensor([[3.0], [0.0]]).view(1, 2, 1, 1)
    idx, w = soft_encode(ab, centers, sigma=5.0)
    d2 = (centers[idx.flatten()] - ab.flatten()).pow(2).sum(1)
    expected = torch.softmax(-d2 / 50.0, dim=0)
    torch.testing.assert_close(w.flatten(), expected)
    assert w.flatten()[0] == w.max()  # the nearest bin first


def test_temperature_mode_and_mean(centers):
    q = len(centers)
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(2, q, 3, 3, generator=gen) * 2
    probs = torch.softmax(logits, 1)
    mean = torch.einsum("bqhw,qc->bchw", probs, centers)
    torch.testing.assert_close(annealed_mean(logits, centers, 1.0), mean, atol=1e-4, rtol=0)
    mode = centers[logits.argmax(1)].permute(0, 3, 1, 2)
    torch.testing.assert_close(annealed_mean(logits, centers, 1e-4), mode, atol=1e-3, rtol=0)
    # In between: T = 0.38 is more saturated than the mean for a two-peaked distribution.
    two = torch.full((1, q, 1, 1), -30.0)
    far = int((centers - torch.tensor([60.0, 60.0])).abs().sum(1).argmin())
    zero = int(centers.abs().sum(1).argmin())
    two[0, far], two[0, zero] = 0.3, 0.0
    chroma = [annealed_mean(two, centers, t).norm() for t in (1.0, 0.38, 0.05)]
    assert chroma[0] < chroma[1] < chroma[2]


def test_rebalance_weights_from_a_known_histogram(centers):
    q = len(centers)
    counts = torch.zeros(q, dtype=torch.float64)
    counts[7] = 100.0
    # sigma -> 0: no smoothing, so p is one-hot; lambda = 1/2.
    w = rebalance_weights(counts, centers, sigma=1e-3, mix=0.5).double()
    # w ~ 1 / (p/2 + 1/(2Q)), normalised to E_p[w] = 1: the seen bin 1, every other bin Q + 1.
    assert w[7].item() == pytest.approx(1.0, rel=1e-5)
    others = torch.cat([w[:7], w[8:]])
    torch.testing.assert_close(others, torch.full_like(others, q + 1.0), rtol=1e-5, atol=0)
    # A uniform histogram gives uniform weights of 1, whatever the smoothing.
    flat = rebalance_weights(torch.ones(q, dtype=torch.float64), centers, sigma=5.0, mix=0.5)
    assert flat.min() > 0.5 and flat.max() < 2.0
    # Smoothing spreads a peak to its neighbours: a bin next to the peak weighs less than a far one.
    w5 = rebalance_weights(counts, centers, sigma=5.0, mix=0.5)
    d = (centers - centers[7]).norm(dim=1)
    near = int(torch.where((d > 0) & (d <= 10))[0][0])
    far = int(d.argmax())
    assert w5[near] < w5[far]


def test_histogram_counts_nearest_bins(centers):
    ab = torch.tensor([[0.0, 1.0, 12.0], [0.0, -2.0, 0.0]]).view(1, 2, 1, 3)
    hist = bin_histogram(ab, centers)
    assert hist.sum() == 3
    zero = int(centers.abs().sum(1).argmin())
    ten = int((centers - torch.tensor([10.0, 0.0])).abs().sum(1).argmin())
    assert hist[zero] == 2 and hist[ten] == 1


def test_soft_cross_entropy_is_lowest_at_the_target(centers):
    ab = torch.tensor([[20.0], [-30.0]]).view(1, 2, 1, 1)
    idx, w = soft_encode(ab, centers)
    target = _probs_from_soft(idx, w, len(centers))
    best = soft_cross_entropy(target.clamp(min=1e-9).log(), idx, w)
    flat = soft_cross_entropy(torch.zeros(1, len(centers), 1, 1), idx, w)
    assert best < flat
    assert flat.item() == pytest.approx(math.log(len(centers)), rel=1e-5)
    weighted = soft_cross_entropy(torch.zeros(1, len(centers), 1, 1), idx, w, torch.full((1, 1, 1), 2.0))
    assert weighted.item() == pytest.approx(2 * flat.item(), rel=1e-6)
