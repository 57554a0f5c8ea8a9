"""Depth in-painting by colorization: the toolbox's ``fill_depth_colorization`` (spec nyuv2.md 5).

Every pixel's depth is asked to equal a gray-similarity weighted mean of its up-to-8 neighbours,
and known pixels are additionally pulled towards their measured value with weight ``alpha``:
``(A + G) x = alpha * known * d`` with ``A = I - W`` (W row-stochastic). Pixels are numbered in
column-major order like MATLAB's. Known pixels are NOT copied back (toolbox behaviour).

The system is built with shifted arrays (no per-pixel loop) directly in CSR form and solved
with a preconditioned iterative method (:mod:`nyutools.fill_solver`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from nyutools import camera
from nyutools.fill_solver import solve_colorization

# MATLAB rgb2gray coefficients (the inverse of the NTSC YIQ matrix's first row).
RGB2GRAY = (0.298936021293775, 0.587043074451121, 0.114020904255103)
_LN_100 = -np.log(0.01)
_CSIG_FLOOR = 2e-6
# The 8 neighbour offsets (row, column) of a radius-1 window.
_OFFSETS = tuple((di, dj) for dj in (-1, 0, 1) for di in (-1, 0, 1) if (di, dj) != (0, 0))


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2gray``: float64 (H, W) gray; uint8 input gives rounded 0..255 values.

    Args:
        rgb: (H, W, 3) uint8, or float in [0, 1].
    """
    r, g, b = (rgb[..., c].astype(np.float64) for c in range(3))
    gray = RGB2GRAY[0] * r + RGB2GRAY[1] * g + RGB2GRAY[2] * b
    if rgb.dtype == np.uint8:
        gray = np.clip(np.floor(gray + 0.5), 0, 255)
    return gray


def _shift(a: np.ndarray, di: int, dj: int, fill: float = 0.0) -> np.ndarray:
    """``out[i, j] = a[i + di, j + dj]``, ``fill`` outside the image."""
    h, w = a.shape
    out = np.full_like(a, fill)
    out[max(0, -di) : h - max(0, di), max(0, -dj) : w - max(0, dj)] = a[
        max(0, di) : h - max(0, -di), max(0, dj) : w - max(0, -dj)
    ]
    return out


def neighbour_weights(gray: np.ndarray) -> np.ndarray:
    """Colorization weights of the 8 neighbours of every pixel (spec 5 step 4).

    Args:
        gray: float64 (H, W) gray image.

    Returns:
        float64 (8, H, W): weight of neighbour ``_OFFSETS[k]`` of each pixel, 0 outside the image;
        the weights of a pixel sum to 1.
    """
    h, w = gray.shape
    inside = np.stack([_shift(np.ones((h, w)), di, dj) for di, dj in _OFFSETS]) > 0
    g_n = np.stack([_shift(gray, di, dj) for di, dj in _OFFSETS])
    count = inside.sum(axis=0) + 1.0  # neighbours plus the pixel itself
    mean = (g_n.sum(axis=0) + gray) / count
    dev2 = np.where(inside, (g_n - mean) ** 2, 0.0)
    var = (dev2.sum(axis=0) + (gray - mean) ** 2) / count
    diff2 = (g_n - gray) ** 2
    mgv = np.where(inside, diff2, np.inf).min(axis=0)
    csig = np.maximum(np.maximum(0.6 * var, mgv / _LN_100), _CSIG_FLOOR)
    weights = np.where(inside, np.exp(-diff2 / csig), 0.0)
    weights /= weights.sum(axis=0)
    return weights


def colorization_matrix(gray: np.ndarray, known: np.ndarray, alpha: float) -> sp.csr_matrix:
    """``A + G`` of spec 5 step 5 as a CSR (N, N) matrix, N = H*W, column-major pixel order.

    Built directly in CSR: every row has up to 9 slots (8 neighbours and the diagonal) whose
    column offsets ``di + dj*H`` ascend, so the indices come out sorted. Zero weights (outside
    the image, or underflowed) are dropped like MATLAB's ``sparse`` does.
    """
    h, w = gray.shape
    n = h * w
    weights = neighbour_weights(gray)
    offsets = [di + dj * h for di, dj in _OFFSETS]
    # Slots in ascending offset order: the 4 "before" neighbours, the diagonal, the 4 "after".
    vals = np.empty((n, 9))
    vals[:, :4] = -weights[:4].transpose(0, 2, 1).reshape(4, n).T
    vals[:, 4] = 1.0 + alpha * known.T.ravel()
    vals[:, 5:] = -weights[4:].transpose(0, 2, 1).reshape(4, n).T
    cols = np.arange(n)[:, None] + np.array(offsets[:4] + [0] + offsets[4:])[None, :]
    keep = vals != 0
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(keep.sum(axis=1), out=indptr[1:])
    matrix = sp.csr_matrix((vals[keep], cols[keep], indptr), shape=(n, n))
    matrix.has_sorted_indices = True
    return matrix


def fill_depth(rgb: np.ndarray, depth_m: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """In-paint a projected depth map with the toolbox's colorization method.

    Args:
        rgb: (H, W, 3) uint8, or float in [0, 1] (the toolbox documents [0, 1]; uint8 input gets
            MATLAB's rounded uint8 gray, which changes the result slightly).
        depth_m: float64 (H, W) metres; 0 and exactly 10 are unknown.
        alpha: weight of the data term for known pixels, in (0, 1].

    Returns:
        float64 (H, W) metres, dense. Known pixels are blended too, not copied back.

    Raises:
        ValueError: if no pixel is known or the shapes disagree.
    """
    depth_m = np.asarray(depth_m, dtype=np.float64)
    if rgb.shape[:2] != depth_m.shape or rgb.ndim != 3:
        raise ValueError(f"fill_depth: rgb {rgb.shape} does not match depth {depth_m.shape}")
    known = (depth_m != 0) & (depth_m != camera.MAX_DEPTH)
    if not known.any():
        raise ValueError("fill_depth: no known depth pixel (all 0 or 10)")
    scale = depth_m[known].max()
    d = np.minimum(depth_m / scale, 1.0)
    matrix = colorization_matrix(rgb_to_gray(rgb), known, alpha)
    rhs = alpha * known.T.ravel() * d.T.ravel()
    x = solve_colorization(matrix, rhs, known.T.ravel())
    h, w = depth_m.shape
    return x.reshape(w, h).T * scale
