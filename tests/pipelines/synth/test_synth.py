"""Synthetic worlds: files read back with independent standard readers, and geometry checks."""

from __future__ import annotations

import hashlib
import io
import re
import struct
import zipfile
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import scipy.io
from PIL import Image

from pipelines.synth.nyu import SCENES, plan_recording, render_rgb_truth, write_recording

RAW_SCENE = "kitchen_0003a"  # a plain folder scene of the NYU world


def _scene_files(raw: Path, scene: str) -> dict[str, bytes]:
    archive = SCENES[scene]
    if archive is None:
        return {p.name: p.read_bytes() for p in (raw / scene).iterdir()}
    with zipfile.ZipFile(raw / archive) as zf:
        prefix = f"{scene}/"
        return {n[len(prefix) :]: zf.read(n) for n in zf.namelist() if n.startswith(prefix)}


@pytest.mark.slow
def test_nyu_raw_formats(nyu_world: Path) -> None:
    files = _scene_files(nyu_world / "raw", RAW_SCENE)
    pgm = sorted(n for n in files if n.startswith("d-"))
    ppm = sorted(n for n in files if n.startswith("r-"))
    dump = sorted(n for n in files if n.startswith("a-"))
    assert pgm and ppm and dump
    for name in pgm:
        data = files[name]
        assert len(data) == 614_417 and data[:17] == b"P5 640 480 65535\n"
        little = np.frombuffer(data, "<u2", offset=17).reshape(480, 640)
        big = np.asarray(Image.open(io.BytesIO(data)), dtype=np.uint16)
        np.testing.assert_array_equal(big.byteswap(), little)  # PGM readers see big-endian
        assert little.max() == 2047 and 600 <= little[little < 2047].min()
    for name in ppm:
        data = files[name]
        assert len(data) == 921_615 and data[:15] == b"P6 640 480 255\n"
        rgb = np.asarray(Image.open(io.BytesIO(data)))
        assert rgb.shape == (480, 640, 3)
    for name in dump:
        assert len(files[name]) == 12
        ax, ay, az, tilt, status = struct.unpack("<hhhbxi", files[name])
        assert 700 < abs(ay) <= 819 and status == 0  # gravity mostly along the camera's y
    index = files["INDEX.txt"].decode().split()
    assert sorted(index) == sorted(pgm + ppm + dump)


@pytest.mark.slow
def test_nyu_timestamps_jittered_with_drops(nyu_world: Path) -> None:
    names = _scene_files(nyu_world / "raw", "bedroom_0001")
    pattern = re.compile(r"^([dra])-(\d{10}\.\d{6})-(\d+)\.(pgm|ppm|dump)$")
    times = {"d": [], "r": []}
    for n in names:
        if n == "INDEX.txt":
            continue
        m = pattern.match(n)
        assert m, n
        assert int(m.group(3)) < 2**32
        if m.group(1) in times:
            times[m.group(1)].append(float(m.group(2)))
    for t in times.values():
        dt = np.diff(sorted(t))
        assert abs(np.median(dt) - 1 / 30) < 0.004
        assert dt.std() > 0.0005  # jitter


@pytest.mark.slow
def test_nyu_zip_scene(nyu_world: Path) -> None:
    with zipfile.ZipFile(nyu_world / "raw" / "living_rooms_part1.zip") as zf:
        names = zf.namelist()
    assert names and all(n.startswith("living_room_0012/") for n in names)


@pytest.mark.slow
def test_corrupt_files_and_determinism(tmp_path: Path) -> None:
    rec = plan_recording("bedroom_0001", 4, seed=9)
    truth = write_recording(rec, tmp_path / "a", corrupt=True, truth=False)
    sizes = {p.name: p.stat().st_size for p in (tmp_path / "a" / "bedroom_0001").iterdir()}
    d, r, a = truth.corrupt
    assert sizes[d] < 614_417 and sizes[r] < 921_615 and sizes[a] == 13
    write_recording(
        plan_recording("bedroom_0001", 4, seed=9), tmp_path / "b", corrupt=True, truth=False
    )

    def digest(folder: Path) -> str:
        h = hashlib.sha256()
        for p in sorted(folder.iterdir()):
            h.update(p.name.encode() + p.read_bytes())
        return h.hexdigest()

    assert digest(tmp_path / "a" / "bedroom_0001") == digest(tmp_path / "b" / "bedroom_0001")


def _matlab_string(f: h5py.File, ref) -> str:
    return "".join(chr(c) for c in f[ref][:].ravel())


@pytest.mark.slow
def test_nyu_labeled_mat(nyu_world: Path) -> None:
    path = nyu_world / "nyu_depth_v2_labeled.mat"
    header = path.read_bytes()[:128]
    assert header.startswith(b"MATLAB 7.3 MAT-file") and header[124:128] == b"\x00\x02IM"
    with pytest.raises(NotImplementedError):
        scipy.io.loadmat(path)  # v7.3 is HDF5: scipy refuses it, as with the real file
    with h5py.File(path, "r") as f:
        n = f["images"].shape[0]
        assert f["images"].shape == (n, 3, 640, 480) and f["images"].dtype == np.uint8
        for name in ("depths", "rawDepths"):
            assert f[name].shape == (n, 640, 480) and f[name].dtype == np.float32
        assert f["labels"].dtype == np.uint16 and f["instances"].dtype == np.uint8
        assert f["accelData"].shape == (4, n)
        assert f["names"].shape == (1, 894) and _matlab_string(f, f["names"][0, 20]) == "wall"
        assert f["depths"].attrs["MATLAB_class"] == b"single"
        scenes = [_matlab_string(f, r) for r in f["scenes"][0]]
        rgb_names = [_matlab_string(f, r) for r in f["rawRgbFilenames"][0]]
        depth_names = [_matlab_string(f, r) for r in f["rawDepthFilenames"][0]]
        types = [_matlab_string(f, r) for r in f["sceneTypes"][0]]
        # Orientation: a plain transpose gives the image; re-render frame 0 to check.
        image0 = np.transpose(f["images"][0], (2, 1, 0))
        depth0 = f["depths"][0].T
    assert set(types) <= {"bedroom", "kitchen", "living_room"}
    for scene, rgb, dep in zip(scenes, rgb_names, depth_names, strict=True):
        files = _scene_files(nyu_world / "raw", scene)
        assert rgb.split("/")[1] in files and dep.split("/")[1] in files
    rec = plan_recording(scenes[0], 6, seed=3)
    t = next(t for t, name in rec.rgb if name == rgb_names[0].split("/")[1])
    rgb, depth, _, _ = render_rgb_truth(rec.room, rec.traj, t - rec.depth[0][0])
    np.testing.assert_array_equal(image0, rgb)
    np.testing.assert_allclose(depth0, np.minimum(depth, 10), rtol=1e-6)

    splits = scipy.io.loadmat(nyu_world / "splits.mat")
    train, test = splits["trainNdxs"].ravel(), splits["testNdxs"].ravel()
    assert splits["testNdxs"].shape[1] == 1 and test.min() >= 1  # 1-based column vectors
    assert sorted(np.concatenate([train, test]).astype(int)) == list(range(1, n + 1))
    test_scenes = {scenes[i - 1] for i in test.astype(int)}
    train_scenes = {scenes[i - 1] for i in train.astype(int)}
    assert len(test_scenes) == 1 and not test_scenes & train_scenes


def _calib(path: Path) -> dict[str, np.ndarray]:
    out = {}
    for line in path.read_text().splitlines():
        key, value = line.split(":", 1)
        try:
            out[key] = np.array(value.split(), dtype=np.float64)
        except ValueError:
            pass
    return out


def test_kitti_formats(kitti_world: Path) -> None:
    sizes = {"2011_09_26": (375, 1242), "2011_09_28": (370, 1224)}
    for date, (h, w) in sizes.items():
        cam = _calib(kitti_world / date / "calib_cam_to_cam.txt")
        assert tuple(cam["S_rect_02"].astype(int)) == (w, h)
        text = (kitti_world / date / "calib_cam_to_cam.txt").read_text()
        assert text.startswith("calib_time: ") and re.search(
            r"^P_rect_03: (\S+ ){11}\S+$", text, re.M
        )
        baseline = (cam["P_rect_02"][3] - cam["P_rect_03"][3]) / cam["P_rect_02"][0]
        assert abs(baseline - 0.54) < 1e-5
        velo = _calib(kitti_world / date / "calib_velo_to_cam.txt")
        assert velo["R"].size == 9 and velo["T"].size == 3
        assert (kitti_world / date / "calib_imu_to_velo.txt").exists()
        for drive in sorted((kitti_world / date).glob("*_sync")):
            for cam_id in range(4):
                img = cv2.imread(
                    str(drive / f"image_{cam_id:02d}" / "data" / "0000000000.png"),
                    cv2.IMREAD_UNCHANGED,
                )
                assert img.shape == ((h, w, 3) if cam_id >= 2 else (h, w)) and img.dtype == np.uint8
            stamps = (drive / "image_02" / "timestamps.txt").read_text().splitlines()
            assert len(stamps) == 5
            assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9}", stamps[0])
            scan = drive / "velodyne_points" / "data" / "0000000000.bin"
            assert scan.stat().st_size % 16 == 0
            pts = np.fromfile(scan, np.float32).reshape(-1, 4)
            assert len(pts) > 20_000 and np.isfinite(pts).all()
            oxts = (drive / "oxts" / "data" / "0000000000.txt").read_text().split()
            assert len(oxts) == 30
    split = (kitti_world / "splits" / "eigen_zhou" / "train_files.txt").read_text().splitlines()
    assert all(re.fullmatch(r"\d{4}_\d\d_\d\d/\S+_sync \d+ [lr]", ln) for ln in split)
    test = (kitti_world / "splits" / "eigen" / "test_files.txt").read_text().splitlines()
    assert all(re.fullmatch(r"\S+ \d{10} l", ln) for ln in test)
    folder, frame, _ = test[0].split()
    gt = cv2.imread(
        str(kitti_world / folder / "proj_depth" / "groundtruth" / "image_02" / f"{frame}.png"),
        cv2.IMREAD_UNCHANGED,
    )
    assert gt.dtype == np.uint16 and gt.shape == (375, 1242)


def test_velodyne_lands_on_rendered_depth(kitti_world: Path) -> None:
    truth = np.load(kitti_world / "truth.npz")
    for date in ("2011_09_26", "2011_09_28"):
        cam = _calib(kitti_world / date / "calib_cam_to_cam.txt")
        velo = _calib(kitti_world / date / "calib_velo_to_cam.txt")
        velo2cam = np.eye(4)
        velo2cam[:3, :3], velo2cam[:3, 3] = velo["R"].reshape(3, 3), velo["T"]
        rect = np.eye(4)
        rect[:3, :3] = cam["R_rect_00"].reshape(3, 3)
        proj = cam["P_rect_02"].reshape(3, 4) @ rect @ velo2cam
        drive = sorted((kitti_world / date).glob("*_sync"))[0]
        depth = truth[f"{date}/{drive.name}/depth"][2]
        pts = np.fromfile(drive / "velodyne_points" / "data" / "0000000002.bin", np.float32)
        pts = pts.reshape(-1, 4).astype(np.float64)
        pts = pts[pts[:, 0] >= 0]
        pts[:, 3] = 1
        q = pts @ proj.T
        u, v = np.round(q[:, 0] / q[:, 2]).astype(int), np.round(q[:, 1] / q[:, 2]).astype(int)
        h, w = depth.shape
        ok = (u >= 0) & (u < w) & (v >= 0) & (v < h) & (q[:, 2] > 0)
        rendered = depth[v[ok], u[ok]]
        rel = np.abs(q[ok, 2] - rendered) / np.maximum(rendered, 1e-6)
        assert ok.sum() > 5000
        assert np.median(rel) < 0.01


@pytest.mark.slow
def test_nyu_raw_depth_projects_onto_rgb_truth(nyu_world: Path) -> None:
    """The toolbox's projection of raw depth lands on the rendered RGB-frame depth.

    Residuals come from Kinect quantisation (one raw unit = z^2 / 351.3 m), the few ms between
    a depth frame and its synced RGB frame, and the toolbox's 1-based pixel conventions.
    """
    import nyutools

    truth = np.load(nyu_world / "raw" / "truth.npz")
    scene = nyutools.open_scene(nyu_world / "raw" / RAW_SCENE)
    names = list(truth[f"{RAW_SCENE}/rgb_names"])
    for frame in nyutools.sync_frames(scene)[:2]:
        depth, _ = nyutools.project_depth(scene.read_depth(frame.depth), scene.read_rgb(frame.rgb))
        gt = truth[f"{RAW_SCENE}/depth"][names.index(frame.rgb)]
        valid = (depth > 0) & (gt > 0)
        assert valid.mean() > 0.7
        step = gt[valid] ** 2 / 351.3
        err = np.abs(depth[valid] - gt[valid])
        assert np.median(err / step) < 1.0  # within one Kinect quantisation step
