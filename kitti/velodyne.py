"""Velodyne scans and the sparse ground-truth depth projected from them (spec kitti.md section 3).

:func:`velodyne_depth` reproduces monodepth2's ``generate_depth_map`` bit for bit, vectorised.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kitti.calib import Calibration


def read_velodyne(bin_path: str | Path) -> np.ndarray:
    """Read a velodyne ``.bin`` scan: float32 (N, 4) of x, y, z (metres, LiDAR frame), reflectance.

    Raises:
        ValueError: the file cannot be read or its size is not a multiple of 16 bytes.
    """
    bin_path = Path(bin_path)
    try:
        raw = np.fromfile(bin_path, dtype="<f4")
    except OSError as err:
        raise ValueError(f"{bin_path}: cannot read velodyne scan ({err})") from err
    if raw.size % 4:
        raise ValueError(
            f"{bin_path}: velodyne scan of {raw.nbytes} bytes is not a whole number of "
            "16-byte (x, y, z, reflectance) float32 points (truncated file?)"
        )
    return raw.astype(np.float32, copy=False).reshape(-1, 4)


def velodyne_depth(
    calib: str | Path | Calibration,
    scan: str | Path | np.ndarray,
    cam: int = 2,
    vel_depth: bool = False,
) -> np.ndarray:
    """Project a velodyne scan into a rectified camera: monodepth2 ``generate_depth_map``.

    Args:
        calib: the date folder holding the calibration files, or a loaded :class:`Calibration`.
        scan: a ``.bin`` path, or points already loaded as an (N, >=3) array (x, y, z first;
            float32 as read from the file for bit-identical output).
        cam: target camera, 2 (left colour) or 3 (right colour); any camera in the file works.
        vel_depth: store the LiDAR forward range x instead of the rectified camera depth.

    Returns:
        float64 (H, W) depth in metres at camera 02's rectified size (even for ``cam=3``),
        0 = no measurement. Pixel = ``round(projection) - 1`` (numpy half-to-even); when several
        points hit one pixel the last one is kept, then the reference's duplicate rule writes the
        minimum depth of each group sharing ``v * (W - 1) + u - 1`` at the group's first point.
    """
    if not isinstance(calib, Calibration):
        calib = Calibration.from_dir(calib)
    points = read_velodyne(scan) if isinstance(scan, (str, Path)) else np.asarray(scan)
    if points.ndim != 2 or points.shape[1] < 3:
        raise ValueError(f"velodyne points must have shape (N, 3 or 4), got {points.shape}")
    height, width = calib.size(2)

    front = np.compress(points[:, 0] >= 0, points, axis=0)  # = points[x >= 0], faster
    homogeneous = np.empty((front.shape[0], 4), dtype=front.dtype)
    homogeneous[:, :3] = front[:, :3]
    homogeneous[:, 3] = 1.0
    projected = np.dot(calib.P_velo2im(cam), homogeneous.T).T
    with np.errstate(divide="ignore", invalid="ignore"):  # z = 0 gives inf/nan, dropped below
        u = np.round(projected[:, 0] / projected[:, 2]) - 1
        v = np.round(projected[:, 1] / projected[:, 2]) - 1
    value = front[:, 0].astype(np.float64) if vel_depth else projected[:, 2]

    inside = (u >= 0) & (v >= 0) & (u < width) & (v < height)
    u = u[inside].astype(np.int64)
    v = v[inside].astype(np.int64)
    value = value[inside]
    depth = np.zeros((height, width))
    if value.size == 0:
        return depth

    # One stable sort by pixel serves both rules: within a pixel, points stay in scan order.
    pixel = v * width + u
    order = np.argsort(pixel, kind="stable")
    pixel_sorted = pixel[order]
    value_sorted = value[order]

    # Plain assignment: when several points hit a pixel, the last one in scan order wins.
    ends = np.flatnonzero(np.r_[pixel_sorted[1:] != pixel_sorted[:-1], True])
    depth.flat[pixel_sorted[ends]] = value_sorted[ends]

    # The reference's duplicate rule on lin = v * (W - 1) + u - 1 = pixel - v - 1, which is
    # non-decreasing in pixel (it only merges (r, W-1) with (r+1, 0)), so groups are contiguous.
    lin_sorted = pixel_sorted - v[order] - 1
    starts = np.flatnonzero(np.r_[True, lin_sorted[1:] != lin_sorted[:-1]])
    dupes = np.diff(np.r_[starts, lin_sorted.size]) > 1
    if dupes.any():
        minima = np.minimum.reduceat(value_sorted, starts)[dupes]
        first = np.minimum.reduceat(order, starts)[dupes]  # earliest point of each group
        depth[v[first], u[first]] = minima

    depth[depth < 0] = 0
    return depth
