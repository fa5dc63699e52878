"""Sparse colour hints spread over the regions they belong to, following the luma's edges (Levin, Lischinski and
Weiss, "Colorization using Optimization", 2004), as a weighted least-squares solve on a 4-neighbour grid.

Neighbouring pixels are tied by w = exp(-(L1 - L2)^2 / (2 edge^2)) (near 1 inside a region, near 0 across a
strong luma edge); hinted pixels are pinned by `pin`; every pixel leaks towards zero by `leak`, so a hint's
influence fades where the regions it reaches are weakly tied to it instead of flooding the whole picture.
Two right-hand sides are solved with one factorisation: the hinted values and the hint indicator. Their ratio
is the value spread over the hint's region (normalised, so it does not fade with distance), and the
indicator's solution, scaled by `full_reach`, is how sure that spread is (`reach`, 1 near hints, 0 where no
hint reaches): callers blend by it, so regions no hint reaches keep what they had.

Pure numpy/scipy functions; SciPy's sparse LU does the solve.
"""

from __future__ import annotations

import numpy as np

# Chosen on the pack's validation split (benchmarks/hints_spread.py; docs/experiments.md, "Colour hints")
HINT_EDGE = 2.0  # L* difference between neighbours at which their tie falls to exp(-1/2)
HINT_LEAK = 1e-5  # per-pixel pull towards zero: how far, and how much past weak edges, a hint reaches
HINT_PIN = 100.0  # how firmly a hinted pixel keeps its value
HINT_FULL_REACH = 0.5  # the indicator's solution at which a hint's spread counts as sure (reach 1)


def grid_laplacian(L: np.ndarray, edge: float = HINT_EDGE):
    """The (h*w, h*w) weighted graph Laplacian of the 4-neighbour grid of L (h,w), as a SciPy CSC matrix."""
    import scipy.sparse as sp

    h, w = L.shape
    L = L.astype(np.float64)
    idx = np.arange(h * w).reshape(h, w)
    wx = np.exp(-np.square(L[:, 1:] - L[:, :-1]) / (2 * edge ** 2))
    wy = np.exp(-np.square(L[1:, :] - L[:-1, :]) / (2 * edge ** 2))
    rows = np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()])
    cols = np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()])
    weights = np.concatenate([wx.ravel(), wy.ravel()])
    W = sp.coo_matrix((weights, (rows, cols)), shape=(h * w, h * w))
    W = (W + W.T).tocsc()
    return (sp.diags(np.asarray(W.sum(axis=1)).ravel()) - W).tocsc()


def spread(L: np.ndarray, mask: np.ndarray, values: np.ndarray, edge: float = HINT_EDGE, leak: float = HINT_LEAK,
           pin: float = HINT_PIN, full_reach: float = HINT_FULL_REACH) -> tuple[np.ndarray, np.ndarray]:
    """Spread `values` (C,h,w), given where `mask` (h,w) is true, over L's (h,w) regions.

    Returns (spread values (C,h,w), reach (h,w) in [0,1]). With no hinted pixel: zeros and zero reach."""
    import scipy.sparse as sp
    import scipy.sparse.linalg as sla

    h, w = L.shape
    m = mask.reshape(-1).astype(np.float64)
    if not m.any():
        return np.zeros_like(values, dtype=np.float64), np.zeros((h, w))
    A = (grid_laplacian(L, edge) + sp.diags(leak + pin * m)).tocsc()
    rhs = np.concatenate([pin * m[:, None] * values.reshape(values.shape[0], -1).T, pin * m[:, None]], axis=1)
    solved = sla.splu(A, permc_spec="MMD_AT_PLUS_A").solve(rhs)
    indicator = np.maximum(solved[:, -1], 1e-12)
    out = (solved[:, :-1] / indicator[:, None]).T.reshape(values.shape)
    reach = np.clip(solved[:, -1] / full_reach, 0.0, 1.0).reshape(h, w)
    return out, reach
