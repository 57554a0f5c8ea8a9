"""Velodyne ground truth: ``kitti.velodyne_depth`` vs the reference recipe, per frame.

The baseline (:func:`reference_depth`) follows monodepth2's ``generate_depth_map`` step by step:
it parses the calibration files on every call and loops in Python over the duplicate linear
indices. Scans: the test-vector scan plus perturbed copies; each copy also repeats 20 % of its
points at slightly different ranges so the duplicate rule is exercised.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import numpy as np

from kitti import velodyne_depth

TESTVECTORS = Path(__file__).resolve().parents[1].parent / "shared" / "testvectors" / "kitti"


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
    calib_dir: Path, bin_path: Path, cam: int = 2, vel_depth: bool = False
) -> np.ndarray:
    """The reference recipe written out plainly (spec kitti.md section 3)."""
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


def write_scans(folder: Path, count: int = 4, seed: int = 0) -> tuple[Path, list[Path]]:
    """The test-vector calibration folder and ``count`` scan files written in ``folder``."""
    rng = np.random.default_rng(seed)
    calib = TESTVECTORS / "2011_09_26"
    if not (TESTVECTORS / "scan.bin").is_file() or not calib.is_dir():
        raise SystemExit(f"bench_velodyne needs the KITTI test vectors at {TESTVECTORS}")
    base = np.fromfile(TESTVECTORS / "scan.bin", dtype=np.float32).reshape(-1, 4)
    scans = [base] + [perturbed(base, rng) for _ in range(count - 1)]
    paths = []
    for index, scan in enumerate(scans):
        path = folder / f"{index:010d}.bin"
        scan.tofile(path)
        paths.append(path)
    return calib, paths


def _time_per_frame(fn, paths: list[Path], repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for path in paths:
            fn(path)
        best = min(best, (time.perf_counter() - start) / len(paths))
    return best * 1e3


def main() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        calib, paths = write_scans(Path(tmp))
        for path in paths:  # same output, and warm both code paths
            ours, ref = velodyne_depth(calib, path), reference_depth(calib, path)
            if not np.array_equal(ours, ref):
                raise SystemExit(f"velodyne_depth differs from the reference on {path.name}")
        ours_ms = _time_per_frame(lambda p: velodyne_depth(calib, p), paths, repeats=5)
        ref_ms = _time_per_frame(lambda p: reference_depth(calib, p), paths, repeats=3)
    print(f"scans: {len(paths)} (test-vector scan + perturbed copies), outputs identical")
    print(f"reference recipe : {ref_ms:8.2f} ms/frame")
    print(f"velodyne_depth   : {ours_ms:8.2f} ms/frame")
    print(f"speed-up         : {ref_ms / ours_ms:8.2f}x")
