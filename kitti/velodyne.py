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
    # Homogeneous points as one contiguous float64 (4, n) block: np.dot computes every
    # projection with the reference's arithmetic (np.dot(P, points.T) on the float32 (n, 4)
    # scan; equal bit for bit, see tests/test_kitti_velodyne.py) without casting a transposed
    # copy first.
    xyz1 = np.empty((4, front.shape[0]))
    xyz1[:3] = front[:, :3].T
    xyz1[3] = 1.0
    projected = np.dot(calib.P_velo2im(cam), xyz1)
    with np.errstate(divide="ignore", invalid="ignore"):  # z = 0 gives inf/nan, dropped below
        col = np.round(projected[0] / projected[2])  # the reference's u + 1
        row = np.round(projected[1] / projected[2])
    inside = (col >= 1) & (row >= 1) & (col <= width) & (row <= height)
    col = np.compress(inside, col).astype(np.int64) - 1
    row = np.compress(inside, row).astype(np.int64) - 1
    value = np.compress(inside, xyz1[0] if vel_depth else projected[2])
    depth = np.zeros((height, width))
    if value.size == 0:
        return depth

    # Plain assignment, as the reference does: when several points hit a pixel, numpy keeps
    # the last one in scan order. Writing each point's number first tells which points lost.
    flat = depth.reshape(-1)
    pixel = row * width + col
    ids = np.arange(value.size, dtype=np.float64)
    flat[pixel] = ids
    winner = flat[pixel]
    crowded = winner != ids
    flat[pixel] = value

    # The reference's duplicate rule on lin = v * (W - 1) + u - 1 (shifted by one here): the
    # minimum of each group of points sharing a lin, written at the group's first point. A
    # group is a crowded pixel, or pixels (r, W-1) and (r+1, 0), which share a lin; real scans
    # have few of either, so only those points are sorted.
    edge = (col == 0) | (col == width - 1)
    if crowded.any() or edge.any():
        members = np.union1d(np.flatnonzero(crowded | edge), winner[crowded].astype(np.int64))
        lin = pixel[members] - row[members]
        order = np.argsort(lin, kind="stable")  # scan order inside each group
        members, lin = members[order], lin[order]
        starts = np.flatnonzero(np.r_[True, lin[1:] != lin[:-1]])
        several = np.diff(np.r_[starts, lin.size]) > 1
        minima = np.minimum.reduceat(value[members], starts)
        flat[pixel[members[starts[several]]]] = minima[several]

    # Negative depths become 0; only written pixels can hold one (-0.0 stays, as there).
    if value.min() < 0:
        negative = flat[pixel] < 0
        flat[pixel[negative]] = 0
    return depth
