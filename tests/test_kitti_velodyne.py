"""kitti.velodyne: monodepth2's ground truth from velodyne scans.

The same pixels as the reference, with depths equal to a relative 1e-12
(:func:`benchmarks.bench_velodyne.assert_same_depth`): the projections are float64 dot
products of 4 terms computed by BLAS, whose last bits depend on the CPU's kernel (equal bit for
bit on the machine that recorded the vectors).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.bench_velodyne import (
    DEPTH_RTOL,
    assert_same_depth,
    hdl64_scan,
    perturbed,
    reference_depth,
)
from kitti import Calibration, read_velodyne, velodyne_depth


@pytest.mark.parametrize("cam", [2, 3])
@pytest.mark.parametrize("vel_depth", [False, True])
def test_matches_reference_outputs(testvectors: Path, cam: int, vel_depth: bool) -> None:
    kitti = testvectors / "kitti"
    expected = np.load(kitti / "gt_expected.npz")[f"cam{cam}_veldepth{int(vel_depth)}"]
    depth = velodyne_depth(kitti / "2011_09_26", kitti / "scan.bin", cam=cam, vel_depth=vel_depth)
    assert depth.dtype == np.float64 and depth.shape == (375, 1242)
    assert_same_depth(depth, expected)


@pytest.mark.parametrize("cam", [2, 3])
def test_vector_scan_is_far_from_rounding_boundaries(testvectors: Path, cam: int) -> None:
    """Why the pixels can be compared exactly: no projection of the vectors' scan lies within
    1e-6 px of a rounding boundary, while BLAS kernels differ by ~1e-13 px."""
    kitti = testvectors / "kitti"
    calib = Calibration.from_dir(kitti / "2011_09_26")
    front = read_velodyne(kitti / "scan.bin")
    front = front[front[:, 0] >= 0]
    q = calib.P_velo2im(cam) @ np.c_[front[:, :3].astype(np.float64), np.ones(len(front))].T
    uv = q[:2] / q[2]
    height, width = calib.size(2)
    pixel = np.round(uv)
    inside = (pixel[0] >= 1) & (pixel[1] >= 1) & (pixel[0] <= width) & (pixel[1] <= height)
    assert np.count_nonzero(inside) > 10_000
    assert np.abs(uv[:, inside] - np.floor(uv[:, inside]) - 0.5).min() > 1e-6


def test_loaded_points_and_calibration(testvectors: Path) -> None:
    kitti = testvectors / "kitti"
    points = read_velodyne(kitti / "scan.bin")
    assert points.dtype == np.float32 and points.shape[1] == 4
    expected = np.load(kitti / "gt_expected.npz")["cam2_veldepth1"]
    calib = Calibration.from_dir(kitti / "2011_09_26")
    assert_same_depth(velodyne_depth(calib, points, vel_depth=True), expected)


def test_duplicate_rule_matches_recipe(testvectors: Path, tmp_path: Path) -> None:
    """Scans with hundreds of points sharing a pixel: same output as the reference recipe."""
    kitti = testvectors / "kitti"
    base = read_velodyne(kitti / "scan.bin")
    scan = perturbed(base, np.random.default_rng(1))
    # Put points on the aliased columns 0 and W-1 too (lin index (r, W-1) == (r+1, 0)).
    scan = np.concatenate([scan, scan[::-1][:2000] * np.float32(1.0005)])
    path = tmp_path / "scan.bin"
    scan.tofile(path)
    for cam in (2, 3):
        for vel_depth in (False, True):
            ours = velodyne_depth(kitti / "2011_09_26", path, cam, vel_depth)
            assert_same_depth(ours, reference_depth(kitti / "2011_09_26", path, cam, vel_depth))


def test_real_shaped_scans_match_recipe(testvectors: Path, tmp_path: Path) -> None:
    """HDL-64E-shaped street scans (about 127k points, 18k valid pixels), as they are and with
    points stacked on shared pixels and on the aliased edge columns: the reference's output."""
    date = testvectors / "kitti" / "2011_09_26"
    rng = np.random.default_rng(7)
    scan = hdl64_scan(rng)
    assert 110_000 < len(scan) < 140_000
    crowded = np.concatenate([scan, scan[::-3] * np.float32(1.0003)])
    for name, points in (("plain", scan), ("crowded", crowded)):
        path = tmp_path / f"{name}.bin"
        points.tofile(path)
        for cam in (2, 3):
            for vel_depth in (False, True):
                ours = velodyne_depth(date, path, cam, vel_depth)
                ref = reference_depth(date, path, cam, vel_depth)
                assert_same_depth(ours, ref, err_msg=f"{name} cam {cam}")
        assert np.count_nonzero(ours) > 10_000


def test_no_points_in_view(testvectors: Path) -> None:
    behind = np.array([[-5.0, 0.0, 0.0, 1.0], [10.0, 0.0, 500.0, 1.0]], dtype=np.float32)
    depth = velodyne_depth(testvectors / "kitti" / "2011_09_26", behind)
    assert depth.shape == (375, 1242) and not depth.any()


def test_truncated_scan(tmp_path: Path) -> None:
    path = tmp_path / "0000000000.bin"
    np.zeros(4 * 10 + 3, dtype=np.float32).tofile(path)
    with pytest.raises(ValueError, match=r"0000000000\.bin.*16-byte"):
        read_velodyne(path)
    with pytest.raises(ValueError, match="nothing.bin"):
        read_velodyne(tmp_path / "nothing.bin")


def _points_at(calib: Calibration, pixels: list[tuple[int, int, float]]) -> np.ndarray:
    """LiDAR points (float32 (n, 4)) landing on output pixels (row, col) at about depth z."""
    p = calib.P_velo2im(2)
    rows = []
    for row, col, z in pixels:
        target = z * np.array([col + 1.0, row + 1.0, 1.0]) - p[:, 3]
        rows.append([*np.linalg.solve(p[:, :3], target), 0.5])
    return np.array(rows, dtype=np.float32)


def test_last_write_and_aliased_duplicates(testvectors: Path, tmp_path: Path) -> None:
    """Pixel (10, W-1) and (11, 0) share the reference's linear index v * (W - 1) + u - 1."""
    date = testvectors / "kitti" / "2011_09_26"
    calib = Calibration.from_dir(date)
    w = calib.size(2)[1]
    points = _points_at(
        calib,
        [
            (10, w - 1, 7.0),
            (11, 0, 3.0),
            (11, 0, 9.0),
            (50, 600, 4.0),
            (50, 600, 2.0),
            (50, 600, 6.0),
        ],
    )
    homogeneous = np.c_[points[:, :3].astype(np.float64), np.ones(len(points))]
    z = (calib.P_velo2im(2) @ homogeneous.T)[2]
    depth = velodyne_depth(calib, points)
    # z comes from another BLAS call than velodyne_depth's: equal to DEPTH_RTOL (the depths that
    # compete here differ by far more). Pixel (10, W-1): the group minimum, written at the
    # group's first point; (11, 0): untouched by the rule, the last point there wins; (50, 600):
    # plain duplicates, the minimum.
    assert depth[10, w - 1] == pytest.approx(z[1], rel=DEPTH_RTOL)
    assert depth[11, 0] == pytest.approx(z[2], rel=DEPTH_RTOL)
    assert depth[50, 600] == pytest.approx(z[4], rel=DEPTH_RTOL)
    assert np.count_nonzero(depth) == 3
    path = tmp_path / "scan.bin"
    points.tofile(path)
    assert_same_depth(depth, reference_depth(date, path))
