"""Bouguet-style undistortion resampler of the NYU toolbox (``undistort.m``, spec nyuv2.md 4.1).

For every output pixel the toolbox distorts the pixel's normalised ray, finds the source position
in the distorted image and blends its 2x2 neighbourhood bilinearly; outputs whose 2x2 block leaves
the image are filled (255 for images and masks, 0 for depth). The geometry depends only on the
camera, so it is computed once per camera (:func:`undistort_map`, cached) as four source indices
and four float64 weights per output pixel. Applying it is a sparse matrix product whose per-row
sum order (top-left, top-right, bottom-left, bottom-right) is the toolbox's, so the float64 result
is bit-identical to the toolbox's arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.sparse as sp

from nyutools import camera


@dataclass(frozen=True)
class CameraModel:
    """Pinhole intrinsics (pixels, 0-based principal point), distortion ``[k1, k2, p1, p2, k3]``."""

    fx: float
    fy: float
    cx: float
    cy: float
    dist: tuple[float, float, float, float, float]


RGB_CAMERA = CameraModel(
    camera.FX_RGB, camera.FY_RGB, camera.CX_RGB, camera.CY_RGB, tuple(camera.DIST_RGB.tolist())
)
DEPTH_CAMERA = CameraModel(
    camera.FX_D, camera.FY_D, camera.CX_D, camera.CY_D, tuple(camera.DIST_D.tolist())
)


@dataclass(frozen=True)
class UndistortMap:
    """Precomputed resampling of one camera at H x W.

    Attributes:
        valid: bool (H, W); False where the 2x2 source block leaves the image (filled instead).
        src_x, src_y: float64 (H, W), 0-based source position of each output pixel.
        index: int64 (Nv, 4), row-major flat source indices (top-left, top-right, bottom-left,
            bottom-right) of the valid outputs, in row-major output order.
        weight: float64 (Nv, 4), the matching bilinear weights.
        matrix: CSR (H*W, H*W) sparse matrix holding ``weight`` at ``index``; rows of invalid
            outputs are empty.
    """

    valid: np.ndarray
    src_x: np.ndarray
    src_y: np.ndarray
    index: np.ndarray
    weight: np.ndarray
    matrix: sp.csr_matrix


def source_coordinates(
    cam: CameraModel, height: int = camera.HEIGHT, width: int = camera.WIDTH
) -> tuple[np.ndarray, np.ndarray]:
    """0-based source position (sx, sy) in the distorted image of every output pixel.

    Returns two float64 (H, W) arrays. Follows ``undistort.m``: the ray is ``inv(K) @ [u; v; 1]``
    with 0-based (u, v), the distortion is ``apply_distortion.m``, then ``K`` maps back to pixels.
    """
    kk = np.array([[cam.fx, 0.0, cam.cx], [0.0, cam.fy, cam.cy], [0.0, 0.0, 1.0]])
    kinv = np.linalg.inv(kk)
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    x = kinv[0, 0] * u + kinv[0, 1] * v + kinv[0, 2]
    y = kinv[1, 0] * u + kinv[1, 1] * v + kinv[1, 2]
    k1, k2, p1, p2, k3 = cam.dist
    r2 = x**2 + y**2
    r4 = r2**2
    r6 = r2**3
    radial = 1 + k1 * r2 + k2 * r4 + k3 * r6
    a1 = 2 * x * y
    a2 = r2 + 2 * x**2
    a3 = r2 + 2 * y**2
    xd = x * radial + (p1 * a1 + p2 * a2)
    yd = y * radial + (p1 * a3 + p2 * a1)
    return cam.fx * xd + cam.cx, cam.fy * yd + cam.cy


@lru_cache(maxsize=4)
def undistort_map(
    cam: CameraModel, height: int = camera.HEIGHT, width: int = camera.WIDTH
) -> UndistortMap:
    """Indices and weights of the toolbox bilinear undistortion for ``cam`` (cached)."""
    sx, sy = source_coordinates(cam, height, width)
    x0 = np.floor(sx)
    y0 = np.floor(sy)
    valid = (x0 >= 0) & (x0 <= width - 2) & (y0 >= 0) & (y0 <= height - 2)
    xs, ys = sx[valid], sy[valid]
    x0v, y0v = x0[valid], y0[valid]
    ax, ay = xs - x0v, ys - y0v
    weight = np.stack([(1 - ay) * (1 - ax), (1 - ay) * ax, ay * (1 - ax), ay * ax], axis=1)
    top_left = (y0v * width + x0v).astype(np.int64)
    index = np.stack([top_left, top_left + 1, top_left + width, top_left + width + 1], axis=1)
    rows = np.flatnonzero(valid.ravel())
    indptr = np.zeros(height * width + 1, dtype=np.int64)
    indptr[rows + 1] = 4
    np.cumsum(indptr, out=indptr)
    n = height * width
    # Entries are kept in toolbox order (no sort, no duplicate merge): CSR products then sum each
    # row as ((tl + tr) + bl) + br, exactly like the toolbox.
    matrix = sp.csr_matrix((weight.ravel(), index.ravel(), indptr), shape=(n, n))
    for arr in (valid, sx, sy, index, weight):
        arr.flags.writeable = False
    return UndistortMap(valid, sx, sy, index, weight, matrix)


def undistort(image: np.ndarray, cam: CameraModel = RGB_CAMERA, fill: float = 255.0) -> np.ndarray:
    """Undistort an image with the toolbox's resampler (``undistort.m``), in float64.

    Args:
        image: (H, W) or (H, W, C) array of any real dtype.
        cam: the camera whose distortion is removed (default: the NYU RGB camera).
        fill: value of outputs whose source block leaves the image (the toolbox uses 255).

    Returns:
        float64 array of the same shape (not rounded; see :func:`undistort_rgb` for uint8).
    """
    height, width = image.shape[:2]
    umap = undistort_map(cam, height, width)
    flat = np.asarray(image, dtype=np.float64).reshape(height * width, -1)
    out = umap.matrix @ flat
    out[~umap.valid.ravel()] = fill
    return out.reshape(image.shape)


def matlab_round(values: np.ndarray) -> np.ndarray:
    """MATLAB ``round``: half away from zero (``np.round`` rounds half to even)."""
    return np.sign(values) * np.floor(np.abs(values) + 0.5)


def undistort_rgb(rgb: np.ndarray) -> np.ndarray:
    """Undistort a uint8 (H, W, 3) NYU RGB frame (spec 4.2) -> uint8 (H, W, 3), 255 border."""
    # A convex blend of uint8 values (or the 255 fill) is in [0, 255]: rounding half away from
    # zero is truncation after adding 0.5, no clipping needed.
    out = undistort(rgb, RGB_CAMERA, fill=255.0)
    out += 0.5
    return out.astype(np.uint8)
