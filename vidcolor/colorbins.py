"""Quantised ab colour bins: the maths of the classification head (Zhang et al. 2016, "Colorful
Image Colorization").

Regressing ab with L1/L2 averages the plausible colours of an ambiguous object (a car may be red or
blue) into a dull brown. Predicting a distribution over ab bins and decoding it by the annealed
mean keeps the colour of the likely mode. Pure tensor functions, so they test without a network.

Units: ab in Lab units (about +-110) unless a name says otherwise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .controls import BIN_TEMPERATURE

BIN_SIZE = 10.0
AB_LIMIT = 110.0
SOFT_NEIGHBOURS = 5
SOFT_SIGMA = 5.0
PRIOR_SIGMA = 5.0
PRIOR_MIX = 0.5          # lambda: mix of the empirical prior with the uniform one
DEFAULT_TEMPERATURE = BIN_TEMPERATURE  # declared in controls.py, where the CLI reads it


def gamut_bins(bin_size: float = BIN_SIZE, limit: float = AB_LIMIT) -> torch.Tensor:
    """(Q,2) centres of the ab grid cells that hold at least one sRGB colour at some L.

    Zhang et al. keep 313 cells (from ImageNet's colours under their Lab conversion); the cells
    that overlap the sRGB gamut under our (kornia, D65) conversion number 256 at size 10.
    A cell counts when any point of a grid at 1/8 of the cell inside it is in gamut for some L
    in 0..100 (steps of 1).
    """
    import kornia.color as kc

    half = bin_size / 2
    fine = torch.arange(-limit - half, limit + half + 1e-6, bin_size / 8)
    a, b = torch.meshgrid(fine, fine, indexing="ij")
    lightness = torch.linspace(0, 100, 101)
    n = len(lightness)
    lab = torch.stack([lightness[:, None].expand(n, a.numel()), a.flatten()[None].expand(n, -1),
                       b.flatten()[None].expand(n, -1)])[None]
    rgb = kc.lab_to_rgb(lab, clip=False)
    inside = ((rgb >= 0) & (rgb <= 1)).all(1)[0].any(0).view(a.shape)
    cells = torch.stack([torch.round(a[inside] / bin_size), torch.round(b[inside] / bin_size)], 1)
    cells = torch.unique(cells, dim=0)  # sorted: a deterministic bin order
    return (cells * bin_size).float()


def soft_encode(ab: torch.Tensor, centers: torch.Tensor, k: int = SOFT_NEIGHBOURS,
                sigma: float = SOFT_SIGMA) -> tuple[torch.Tensor, torch.Tensor]:
    """(B,2,H,W) ab -> (indices, weights), each (B,k,H,W): the k nearest bins, Gaussian-weighted.

    Soft targets tell the network that neighbouring bins are nearly right, which a one-hot
    target would not (Zhang et al.: k = 5, sigma = 5).
    """
    b, _, h, w = ab.shape
    flat = ab.float().permute(0, 2, 3, 1).reshape(-1, 2)
    d2 = torch.cdist(flat, centers.to(flat)).pow(2)
    dist, idx = d2.topk(k, dim=1, largest=False)
    weights = torch.softmax(-dist / (2 * sigma * sigma), dim=1)
    shape = (b, h, w, k)
    return (idx.view(shape).permute(0, 3, 1, 2).contiguous(),
            weights.view(shape).permute(0, 3, 1, 2).contiguous())


def nearest_bin(ab: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """(B,2,H,W) ab -> (B,H,W) index of the nearest bin."""
    b, _, h, w = ab.shape
    flat = ab.float().permute(0, 2, 3, 1).reshape(-1, 2)
    return torch.cdist(flat, centers.to(flat)).argmin(1).view(b, h, w)


def bin_histogram(ab: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """(Q,) counts of the nearest bins of every pixel of (B,2,H,W) ab."""
    return torch.bincount(nearest_bin(ab, centers).flatten(), minlength=len(centers)).double()


def rebalance_weights(counts: torch.Tensor, centers: torch.Tensor, sigma: float = PRIOR_SIGMA,
                      mix: float = PRIOR_MIX) -> torch.Tensor:
    """(Q,) class-rebalancing weights from a bin histogram.

    w ~ ((1 - mix) * p_smooth + mix / Q)^-1, normalised so that the expected weight under
    p_smooth is 1. Desaturated bins dominate natural images; without this the loss is won by
    predicting them everywhere. p_smooth is the histogram smoothed by a Gaussian in ab.
    """
    p = counts.double() / counts.sum().clamp(min=1)
    c = centers.double()
    kernel = torch.exp(-torch.cdist(c, c).pow(2) / (2 * sigma * sigma))
    smooth = kernel @ p
    smooth = smooth / smooth.sum()
    q = len(centers)
    w = 1.0 / ((1 - mix) * smooth + mix / q)
    w = w / (smooth * w).sum()
    return w.float()


def annealed_mean(logits: torch.Tensor, centers: torch.Tensor, temperature: float) -> torch.Tensor:
    """(B,Q,H,W) logits -> (B,2,H,W) ab: the mean of the distribution sharpened by 1/T.

    T = 1 is the mean (smooth but dull), T -> 0 the mode (vivid but patchy); Zhang et al. use 0.38.
    Since softmax(logits)^(1/T) renormalised is softmax(logits / T), no log is needed.
    """
    # Bins last: one softmax over contiguous memory and one small GEMM for a channels_last
    # network (the product's), about twice as fast as softmax over dim 1 + einsum.
    x = logits.float().permute(0, 2, 3, 1)
    probs = torch.softmax(x * (1.0 / max(temperature, 1e-4)), dim=-1)
    return (probs @ centers.to(probs)).permute(0, 3, 1, 2)


def soft_cross_entropy(logits: torch.Tensor, idx: torch.Tensor, weights: torch.Tensor,
                       pixel_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of (B,Q,H,W) logits against soft targets (indices, weights), optionally
    weighted per pixel (the rebalancing weight of its nearest bin), averaged over pixels."""
    logp = F.log_softmax(logits.float(), dim=1)
    ce = -(logp.gather(1, idx) * weights).sum(1)
    if pixel_weight is not None:
        ce = ce * pixel_weight
    return ce.mean()
