"""Velodyne ground truth: ``kitti.velodyne_depth`` vs the reference recipe, per frame.

The baseline (:func:`reference_depth`) follows monodepth2's ``generate_depth_map`` step by step:
it parses the calibration files on every call, projects with ``np.dot(P, points.T)`` on the
(N, 4) float32 scan and loops in Python over the duplicate linear indices.

Scans (target: >= 3x on the real-shaped ones):

* real-shaped (:func:`hdl64_scan`): what a Velodyne HDL-64E gives in a KITTI street: 64 beams at
  the sensor's elevations (upper block +2.0 to -8.33 degrees, lower block -8.83 to -24.33), 2,080
  firings per turn (0.17 degrees at 10 Hz) with per-laser azimuth offsets, returns from the road
  1.73 m below the sensor, two building fronts and a few dozen cars and poles, no return past
  120 m and 4 % dropouts: about 127,000 points, half of them in front (x >= 0), about 14 % inside
  the camera image, 17,000-19,000 valid pixels, almost no two points on one pixel (real KITTI
  scans: about 120,000 points, 19,000 valid pixels);
* duplicate-heavy (the earlier benchmark's): the test-vector scan plus perturbed copies that
  repeat 20 % of their points at slightly other ranges, so the duplicate rule works hard.

The reference's projection takes a slow BLAS path for its transposed float32 operand on some
machines; the "reference, fast dot" line runs the same recipe with the contiguous float64 layout
``velodyne_depth`` uses, so the speed-up can be read without that effect too.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from kitti import Calibration, velodyne_depth

TESTVECTORS = Path(__file__).resolve().parents[1] / "tests" / "data" / "vectors" / "kitti"
# np.dot sums each projection's 4 float64 products in a BLAS kernel, and kernels (FMA or not,
# summation order) differ between CPUs and operand layouts: depths may differ in their last
# bits between machines, or between the recipe's layout and ours. A point could only change
# pixel within ~1e-13 px of a rounding boundary (the test vectors' scan: 9e-6 px at the least).
DEPTH_RTOL = 1e-12


def assert_same_depth(ours: np.ndarray, ref: np.ndarray, err_msg: str = "") -> None:
    """The same pixels hold a depth (0 = none), with depths equal to :data:`DEPTH_RTOL`."""
    np.testing.assert_array_equal(ours == 0, ref == 0, err_msg=f"pixels with a depth {err_msg}")
    np.testing.assert_allclose(ours, ref, rtol=DEPTH_RTOL, atol=0, err_msg=err_msg)


def _reference_calib(path: Path) -> dict:
    data: dict = {}
    for line in path.read_text().splitlines():
        key, value = line.split(":", 1)
        value = value.strip()
        data[key] = value
        if set("0123456789.e+- ").issuperset(value):
            try:
                data[key] = np.array([float(x) for x in value.split(" ")])
            except ValueError:
                pass
    return data


def reference_depth(
    calib_dir: Path, bin_path: Path, cam: int = 2, vel_depth: bool = False, fast_dot: bool = False
) -> np.ndarray:
    """The reference recipe written out plainly (spec kitti.md section 3); ``fast_dot`` projects
    a contiguous float64 copy of the points instead (same numbers, faster BLAS path)."""
    cam2cam = _reference_calib(calib_dir / "calib_cam_to_cam.txt")
    velo = _reference_calib(calib_dir / "calib_velo_to_cam.txt")
    velo2cam = np.hstack((velo["R"].reshape(3, 3), velo["T"][..., np.newaxis]))
    velo2cam = np.vstack((velo2cam, np.array([0, 0, 0, 1.0])))
    im_shape = cam2cam["S_rect_02"][::-1].astype(np.int32)
    r_cam2rect = np.eye(4)
    r_cam2rect[:3, :3] = cam2cam["R_rect_00"].reshape(3, 3)
    p_rect = cam2cam[f"P_rect_0{cam}"].reshape(3, 4)
    p_velo2im = np.dot(np.dot(p_rect, r_cam2rect), velo2cam)

    points = np.fromfile(bin_path, dtype=np.float32).reshape(-1, 4)
    points[:, 3] = 1.0
    points = points[points[:, 0] >= 0, :]
    if fast_dot:
        im = np.dot(p_velo2im, np.ascontiguousarray(points.T, dtype=np.float64)).T
    else:
        im = np.dot(p_velo2im, points.T).T
    im[:, :2] = im[:, :2] / im[:, 2][..., np.newaxis]
    if vel_depth:
        im[:, 2] = points[:, 0]
    im[:, 0] = np.round(im[:, 0]) - 1
    im[:, 1] = np.round(im[:, 1]) - 1
    keep = (im[:, 0] >= 0) & (im[:, 1] >= 0) & (im[:, 0] < im_shape[1]) & (im[:, 1] < im_shape[0])
    im = im[keep, :]

    depth = np.zeros(im_shape[:2])
    depth[im[:, 1].astype(int), im[:, 0].astype(int)] = im[:, 2]
    lin = im[:, 1] * (im_shape[1] - 1) + im[:, 0] - 1
    for value in [item for item, count in Counter(lin).items() if count > 1]:
        hits = np.where(lin == value)[0]
        depth[int(im[hits[0], 1]), int(im[hits[0], 0])] = im[hits, 2].min()
    depth[depth < 0] = 0
    return depth


def perturbed(scan: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A jittered copy of ``scan`` plus 20 % of its points repeated at slightly other ranges."""
    jittered = scan + rng.normal(0, 0.02, scan.shape).astype(np.float32)
    extra = scan[rng.choice(len(scan), len(scan) // 5, replace=False)]
    extra = extra * np.float32(1 + rng.uniform(-1e-3, 1e-3))
    return np.concatenate([jittered, extra]).astype(np.float32)


def hdl64_scan(rng: np.random.Generator, firings: int = 2080) -> np.ndarray:
    """A real-shaped HDL-64E scan of a street (see the module docstring): float32 (N, 4)."""
    elevation = np.r_[np.linspace(2.0, -8.33, 32), np.linspace(-8.83, -24.33, 32)]
    elevation = np.deg2rad(elevation + rng.normal(0, 0.03, 64))[:, None]
    step = 2 * np.pi / firings
    azimuth = rng.uniform(0, 2 * np.pi) + step * np.arange(firings)[None, :]
    azimuth = azimuth + np.deg2rad(rng.normal(0, 0.5, (64, 1))) + rng.normal(0, 2e-4, (64, firings))
    elevation = np.broadcast_to(elevation, azimuth.shape)
    ray = np.stack(
        [np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth),
         np.sin(elevation)], axis=-1,
    ).reshape(-1, 3)  # fmt: skip
    height = 1.73  # KITTI's LiDAR above the road
    dist = np.full(len(ray), np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        down = ray[:, 2] < 0
        dist[down] = height / -ray[down, 2]
        left, right = rng.uniform(5, 12, 2)
        for wall_y in (left, -right):  # building fronts along the street
            t = wall_y / ray[:, 1]
            hit = (t > 0) & (t * ray[:, 2] < rng.uniform(6, 15) - height) & (t < dist)
            dist = np.where(hit, t, dist)
        for _ in range(25):  # cars and poles: upright boxes
            cx, cy = rng.uniform(-60, 60), rng.uniform(-right + 1, left - 1)
            sx, sy, top = rng.uniform(1, 4.5), rng.uniform(0.3, 2), rng.uniform(1.2, 3)
            ax, bx = (cx - sx / 2) / ray[:, 0], (cx + sx / 2) / ray[:, 0]
            ay, by = (cy - sy / 2) / ray[:, 1], (cy + sy / 2) / ray[:, 1]
            enter = np.maximum(np.minimum(ax, bx), np.minimum(ay, by))
            leave = np.minimum(np.maximum(ax, bx), np.maximum(ay, by))
            hit = (enter < leave) & (enter > 0) & (enter * ray[:, 2] < top - height)
            dist = np.where(hit & (enter < dist), enter, dist)
    keep = (dist < 120) & (rng.random(len(ray)) > 0.04)
    points = ray[keep] * (dist[keep] + rng.normal(0, 0.02, int(keep.sum())))[:, None]
    return np.c_[points, rng.random(len(points))].astype(np.float32)


def write_scans(folder: Path, count: int = 4, seed: int = 0) -> tuple[Path, list[Path]]:
    """The test-vector calibration folder and ``count`` duplicate-heavy scans in ``folder``."""
    rng = np.random.default_rng(seed)
    calib = _calib_dir()
    base = np.fromfile(TESTVECTORS / "scan.bin", dtype=np.float32).reshape(-1, 4)
    scans = [base] + [perturbed(base, rng) for _ in range(count - 1)]
    return calib, _write(folder, "dup", scans)


def write_real_shaped(folder: Path, count: int = 8, seed: int = 0) -> list[Path]:
    """``count`` real-shaped scans (:func:`hdl64_scan`) written in ``folder``."""
    rng = np.random.default_rng(seed)
    return _write(folder, "hdl", [hdl64_scan(rng) for _ in range(count)])


def _calib_dir() -> Path:
    calib = TESTVECTORS / "2011_09_26"
    if not (TESTVECTORS / "scan.bin").is_file() or not calib.is_dir():
        raise SystemExit(f"bench_velodyne needs the KITTI test vectors at {TESTVECTORS}")
    return calib


def _write(folder: Path, prefix: str, scans: list[np.ndarray]) -> list[Path]:
    paths = []
    for index, scan in enumerate(scans):
        path = folder / f"{prefix}{index:06d}.bin"
        scan.tofile(path)
        paths.append(path)
    return paths


def _times(fns: dict[str, Callable[[Path], object]], paths: list[Path], rounds: int) -> dict:
    """Median ms per frame of each function, rounds interleaved (the machine is shared)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            for path in paths:
                start = time.perf_counter()
                fn(path)
                times[name].append(time.perf_counter() - start)
    return {name: 1e3 * float(np.median(t)) for name, t in times.items()}


def _scan_stats(calib: Path, paths: list[Path]) -> str:
    points, front, inside, valid = [], [], [], []
    cal = Calibration.from_dir(calib)
    h, w = cal.size(2)
    for path in paths:
        scan = np.fromfile(path, dtype=np.float32).reshape(-1, 4)
        q = cal.P_velo2im(2) @ np.c_[scan[:, :3], np.ones(len(scan))].T
        with np.errstate(divide="ignore", invalid="ignore"):
            u, v = np.round(q[0] / q[2]) - 1, np.round(q[1] / q[2]) - 1
        points.append(len(scan))
        front.append(float(np.mean(scan[:, 0] >= 0)))
        ok = (scan[:, 0] >= 0) & (u >= 0) & (v >= 0) & (u < w) & (v < h)
        inside.append(float(ok.mean()))
        valid.append(int(np.count_nonzero(velodyne_depth(cal, scan))))
    return (
        f"{np.mean(points):,.0f} points, {100 * np.mean(front):.0f} % in front (x >= 0), "
        f"{100 * np.mean(inside):.1f} % inside the image, {np.mean(valid):,.0f} valid pixels"
    )


def main() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        calib, dup_paths = write_scans(Path(tmp))
        sets = {"real-shaped": write_real_shaped(Path(tmp)), "duplicate-heavy": dup_paths}
        for name, paths in sets.items():
            for path in paths:  # same output, and warm every code path
                ours = velodyne_depth(calib, path)
                for fast in (False, True):
                    try:
                        assert_same_depth(ours, reference_depth(calib, path, fast_dot=fast))
                    except AssertionError as e:
                        message = f"velodyne_depth differs from the reference on {path}: {e}"
                        raise SystemExit(message) from e
            ms = _times(
                {
                    "reference": lambda p: reference_depth(calib, p),
                    "reference_fast_dot": lambda p: reference_depth(calib, p, fast_dot=True),
                    "ours": lambda p: velodyne_depth(calib, p),
                },
                paths,
                rounds=7,
            )
            print(f"{name} scans: {len(paths)}, {_scan_stats(calib, paths)}; same outputs")
            print(f"  reference recipe           : {ms['reference']:8.2f} ms/frame")
            print(f"  reference recipe, fast dot : {ms['reference_fast_dot']:8.2f} ms/frame")
            print(f"  velodyne_depth             : {ms['ours']:8.2f} ms/frame")
            print(
                f"  speed-up {ms['reference'] / ms['ours']:.2f}x (target >= 3x on real-shaped "
                f"scans); {ms['reference_fast_dot'] / ms['ours']:.2f}x vs the fast-dot reference"
            )
