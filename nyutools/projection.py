"""Kinect depth -> RGB camera projection: the toolbox's ``project_depth_map`` (spec nyuv2.md 4).

Steps: undistort the RGB (4.2); build the noise mask and dilate it by undistorting it (4.3);
undistort the raw depth with the noise mask applied at the source indices (4.4); thresholds and
raw -> metres (4.5); back-project with 1-based pixels (4.6); rotate then translate into the RGB
camera (4.7); project, round half away from zero, bound-check (4.8); z-buffer (4.9).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from nyutools import camera
from nyutools.undistort import DEPTH_CAMERA, undistort_map, undistort_rgb

H, W = camera.HEIGHT, camera.WIDTH

# Toolbox projection mask (get_projection_mask.m / crop_image.m), spec 4.11 and 7.1.
CROP_ROWS = slice(44, 471)
CROP_COLS = slice(40, 601)
CROP_SHAPE = (427, 561)
# Other evaluation crops of spec 7.1 (0-based, half-open).
EIGEN_CROP_ROWS = slice(45, 471)
EIGEN_CROP_COLS = slice(41, 601)
DENSEDEPTH_CROP_ROWS = slice(20, 460)
DENSEDEPTH_CROP_COLS = slice(24, 616)


def projection_mask(height: int = H, width: int = W) -> np.ndarray:
    """bool (480, 640): True inside the toolbox projection window, rows 44:471, cols 40:601."""
    mask = np.zeros((height, width), dtype=bool)
    mask[CROP_ROWS, CROP_COLS] = True
    return mask


def crop_image(image: np.ndarray) -> np.ndarray:
    """``crop_image.m``: the (427, 561[, C]) projection-mask window of a (480, 640[, C]) image."""
    return image[CROP_ROWS, CROP_COLS]


def noise_mask(raw_depth: np.ndarray) -> np.ndarray:
    """bool (H, W): undistorted, one-pixel-dilated noise mask of a raw depth frame (spec 4.3).

    Raw noise is every pixel equal to the frame's maximum (normally 2047). An output pixel is noise
    when a raw-noise pixel has non-zero weight in its bilinear footprint, or when its footprint
    leaves the image (the toolbox fills those with 255).
    """
    umap = undistort_map(DEPTH_CAMERA, *raw_depth.shape)
    raw_noise = (raw_depth == raw_depth.max()).ravel().astype(np.float64)
    hit = umap.matrix @ raw_noise
    return ((hit > 0) | ~umap.valid.ravel()).reshape(raw_depth.shape)


def undistort_depth(raw_depth: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """``undistort_depth.m``: float64 (H, W) undistorted raw values (spec 4.4).

    Bilinear weights are zeroed where ``noise`` (an output-geometry mask) is True at the SOURCE
    indices, then renormalised; outputs with no weight left, and invalid outputs, are 0.
    """
    height, width = raw_depth.shape
    umap = undistort_map(DEPTH_CAMERA, height, width)
    keep = (~noise).ravel().astype(np.float64)
    # sum(w * keep * d) / sum(w * keep) equals the toolbox's renormalised blend up to round-off.
    weight_sum = umap.matrix @ keep
    blend = umap.matrix @ (keep * raw_depth.ravel())
    out = np.zeros(height * width)
    ok = weight_sum > 0
    out[ok] = blend[ok] / weight_sum[ok]
    return out.reshape(height, width)


def zbuffer_depth(target: np.ndarray, z: np.ndarray, n_targets: int) -> np.ndarray:
    """float64 (n_targets,): nearest z landing on each target, 0 where nothing landed (spec 4.9).

    Equal to writing the winners of :func:`zbuffer_winners`: the written value is z itself, so
    the tie rule cannot change it.
    """
    out = np.full(n_targets, np.inf)
    np.minimum.at(out, target, z)
    out[np.isinf(out)] = 0.0
    return out


def zbuffer_winners(target: np.ndarray, z: np.ndarray, n_targets: int) -> np.ndarray:
    """Winner of each target pixel under the toolbox's z-buffer rule (spec 4.9).

    Args:
        target: int (N,) target index of each source point, in [0, n_targets).
        z: float64 (N,) depth of each point; points are given in increasing source order.
        n_targets: number of target pixels.

    Returns:
        int64 (n_targets,): index into the N points of the winner (smallest z; among equal z the
        latest point), -1 where nothing landed.
    """
    target = np.asarray(target, dtype=np.int64)
    order = np.argsort(target, kind="stable")
    t_sorted = target[order]
    z_sorted = z[order]
    if t_sorted.size == 0:
        return np.full(n_targets, -1, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, t_sorted[1:] != t_sorted[:-1]])
    group_min = np.minimum.reduceat(z_sorted, starts)
    sizes = np.diff(np.r_[starts, t_sorted.size])
    is_min = z_sorted == np.repeat(group_min, sizes)
    # Last minimal point of each group = largest source index among ties.
    pos = np.where(is_min, np.arange(t_sorted.size), -1)
    last = np.maximum.reduceat(pos, starts)
    winners = np.full(n_targets, -1, dtype=np.int64)
    winners[t_sorted[starts]] = order[last]
    return winners


Points = tuple[np.ndarray, np.ndarray, np.ndarray]


def depth_plane_to_world(u1: np.ndarray, v1: np.ndarray, z: np.ndarray) -> Points:
    """``depth_plane2depth_world``: 1-based pixels (u1 column, v1 row) + depth z (m) -> X, Y, Z.

    Uses the 0-based principal point with 1-based pixels, exactly as the toolbox (spec 4.6).
    All arrays float64 (N,), metres.
    """
    x = (u1 - camera.CX_D) * z / camera.FX_D
    y = (v1 - camera.CY_D) * z / camera.FY_D
    return x, y, z


def depth_world_to_rgb_world(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> Points:
    """``depth_world2rgb_world``: ``R @ P + T`` (rotation first, then translation; spec 4.7)."""
    r, t = camera.R, camera.T
    xr = r[0, 0] * x + r[0, 1] * y + r[0, 2] * z + t[0]
    yr = r[1, 0] * x + r[1, 1] * y + r[1, 2] * z + t[1]
    zr = r[2, 0] * x + r[2, 1] * y + r[2, 2] * z + t[2]
    return xr, yr, zr


def rgb_world_to_plane(
    x: np.ndarray, y: np.ndarray, z: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``rgb_world2rgb_plane``: unrounded 1-based RGB pixel coordinates (x column, y row)."""
    return x * camera.FX_RGB / z + camera.CX_RGB, y * camera.FY_RGB / z + camera.CY_RGB


@lru_cache(maxsize=2)
def _pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """1-based column and row of every pixel (MATLAB ``meshgrid``), in column-major order."""
    u1 = np.repeat(np.arange(1, width + 1, dtype=np.float64), height)
    v1 = np.tile(np.arange(1, height + 1, dtype=np.float64), width)
    return u1, v1


def project_points(depth_m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Back-project metric depth, move it to the RGB camera and project it (spec 4.6-4.8).

    Args:
        depth_m: float64 (H, W) depth in metres in the undistorted depth camera (0 = none).

    Returns:
        (source, target, z): int64 (N,) column-major source indices of the kept points
        (ascending), int64 (N,) COLUMN-MAJOR target indices in the RGB image, float64 (N,) depths
        z in metres (depth-camera frame, the value the toolbox writes).
    """
    height, width = depth_m.shape
    zf = depth_m.T.ravel()  # column-major source order, which decides z-buffer ties
    source = np.flatnonzero(zf > 0)
    z = zf[source]
    u1, v1 = _pixel_grid(height, width)
    px, py = rgb_world_to_plane(
        *depth_world_to_rgb_world(*depth_plane_to_world(u1[source], v1[source], z))
    )
    # MATLAB round (half away from zero) then the bounds 0 < x < W, 0 < y < H on the 1-based
    # result; for positive values that is floor(v + 0.5), and negative values are dropped anyway.
    px = np.floor(px + 0.5)
    py = np.floor(py + 0.5)
    keep = (px > 0) & (px < width) & (py > 0) & (py < height)
    target = (px[keep].astype(np.int64) - 1) * height + (py[keep].astype(np.int64) - 1)
    return source[keep], target, z[keep]


def raw_to_depth(raw_undistorted: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Thresholds and raw -> metres of spec 4.5: float64 metres, 0 = no reading."""
    d = raw_undistorted.copy()
    d[d < 600] = camera.RAW_NO_READING
    d[noise] = camera.RAW_NO_READING
    return camera.raw_to_metres(d)


def project_depth(raw_depth: np.ndarray, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The toolbox's ``project_depth_map``: raw Kinect depth aligned to the undistorted RGB.

    Args:
        raw_depth: uint16 (480, 640) raw Kinect values (already little-endian, 2047 = none).
        rgb: uint8 (480, 640, 3) distorted RGB frame.

    Returns:
        depth_m: float64 (480, 640) metres in the RGB camera's pixel grid, 0 = missing; row 479 and
            column 639 are always 0.
        rgb_undistorted: uint8 (480, 640, 3), 255 outside the undistortion's valid area.
    """
    raw_depth, rgb = np.asarray(raw_depth), np.asarray(rgb)
    if raw_depth.shape != (H, W) or rgb.shape != (H, W, 3):
        raise ValueError(
            f"project_depth: expected raw depth ({H}, {W}) and RGB ({H}, {W}, 3), "
            f"got {raw_depth.shape} and {rgb.shape}"
        )
    height, width = raw_depth.shape
    rgb_undistorted = undistort_rgb(rgb)
    noise = noise_mask(raw_depth)
    depth2 = raw_to_depth(undistort_depth(raw_depth, noise), noise)
    _, target, z = project_points(depth2)
    out = np.ascontiguousarray(zbuffer_depth(target, z, height * width).reshape(width, height).T)
    out[out > camera.MAX_DEPTH] = camera.MAX_DEPTH
    out[out < 0] = 0.0
    out[np.isnan(out)] = 0.0
    return out, rgb_undistorted
