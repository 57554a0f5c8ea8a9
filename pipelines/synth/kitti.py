"""Synthetic KITTI raw world: a stereo rig and a 64-beam scanner driving down a textured street.

Written in the exact KITTI raw layout (calibration text files, synced rectified PNGs, velodyne
``.bin`` scans, oxts, timestamps) plus monodepth2-format split files. Rendering uses the
calibration values *as written to text* (7 significant digits), so the files are exactly
consistent with the rendered truth. ``image_00``/``image_01`` (grey) are the grey conversions
of the colour renders of cameras 02/03: no pipeline reads them, they exist for layout fidelity.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from pipelines.synth.kitti_files import OXTS_FIELDS, SPEED, oxts_line, stamp
from pipelines.synth.render import Box, Plane, Scene, cast, look_rotation, make_textures

FPS = 10.0
CAM_HEIGHT = 1.65
BASELINE = 0.54
MAX_RANGE = 120.0


@dataclass(frozen=True)
class DateSpec:
    """Per-date rectified camera: size (W, H), focal, principal point; drives recorded that day."""

    date: str
    size: tuple[int, int]
    focal: float
    centre: tuple[float, float]
    drives: tuple[str, ...]


DATES = (
    DateSpec("2011_09_26", (1242, 375), 721.5377, (609.5593, 172.854), ("0001", "0002")),
    DateSpec("2011_09_28", (1224, 370), 707.0493, (604.0814, 180.5066), ("0001",)),
)
TEST_DRIVE = "2011_09_26_drive_0002_sync"
# Camera c sits at rect-0 x = -t[c] (P_rect_0c[0, 3] = fx * t[c]).
CAM_T = {0: 0.0, 1: -BASELINE, 2: 0.06, 3: 0.06 - BASELINE}


def _fmt(values) -> str:
    return " ".join(f"{v:e}" for v in np.ravel(values))


def _small_rotation(rng: np.random.Generator, scale: float) -> np.ndarray:
    a = rng.normal(0, scale, 3)
    return cv2.Rodrigues(a)[0]


def calibration_text(spec: DateSpec, rng: np.random.Generator) -> dict[str, str]:
    """The three calibration files of a date, as text (KITTI's ``%e`` format)."""
    w, h = spec.size
    f, (cx, cy) = spec.focal, spec.centre
    lines = ["calib_time: 09-Jan-2012 13:57:47", f"corner_dist: {9.95e-2:e}"]
    r_rect = _small_rotation(rng, 0.006)
    for c in range(4):
        k = np.array([[f * 1.36, 0, 690.0], [0, f * 1.36, 240.0], [0, 0, 1]])
        lines += [
            f"S_{c:02d}: {_fmt([1392, 512])}",
            f"K_{c:02d}: {_fmt(k)}",
            f"D_{c:02d}: {_fmt(rng.normal(0, [0.2, 0.1, 1e-3, 1e-3, 0.05]))}",
            f"R_{c:02d}: {_fmt(np.eye(3) if c == 0 else _small_rotation(rng, 0.005))}",
            f"T_{c:02d}: {_fmt([-CAM_T[c], *rng.normal(0, 0.003, 2)])}",
            f"S_rect_{c:02d}: {_fmt([w, h])}",
            f"R_rect_{c:02d}: {_fmt(r_rect if c == 0 else _small_rotation(rng, 0.006))}",
            f"P_rect_{c:02d}: {_fmt([[f, 0, cx, f * CAM_T[c]], [0, f, cy, 0], [0, 0, 1, 0]])}",
        ]
    base = np.array(
        [[0.0, -1, 0], [0, 0, -1], [1, 0, 0]]
    )  # velodyne (x fwd, y left, z up) -> camera
    velo_r = _small_rotation(rng, 0.008) @ base
    velo_t = np.array([-0.004069766, -0.07631618, -0.2717806]) + rng.normal(0, 0.003, 3)
    velo = [
        "calib_time: 15-Mar-2012 11:37:16",
        f"R: {_fmt(velo_r)}",
        f"T: {_fmt(velo_t)}",
        f"delta_f: {_fmt([0, 0])}",
        f"delta_c: {_fmt([0, 0])}",
    ]
    imu = [
        "calib_time: 25-May-2012 16:47:16",
        f"R: {_fmt(_small_rotation(rng, 0.01))}",
        f"T: {_fmt([-0.8086759, 0.3195559, -0.7997231])}",
    ]
    return {
        "calib_cam_to_cam.txt": "\n".join(lines) + "\n",
        "calib_velo_to_cam.txt": "\n".join(velo) + "\n",
        "calib_imu_to_velo.txt": "\n".join(imu) + "\n",
    }


def parse_values(text: str) -> dict[str, np.ndarray]:
    """Numeric entries of a calibration text (used to render with the written values)."""
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        try:
            out[key] = np.array([float(x) for x in value.split()])
        except ValueError:
            continue
    return out


@dataclass
class Rig:
    """Rendering geometry read back from the written calibration of one date."""

    size: tuple[int, int]  # (W, H)
    K: np.ndarray  # (3, 3) rectified intrinsics (all colour cameras)
    cam_offset: dict[int, float]  # camera c centre at rect-0 x = cam_offset[c]
    velo_A: np.ndarray  # (3, 3) velodyne -> rect-0 linear part (R_rect_00 @ R_velo)
    velo_b: np.ndarray  # (3,) velodyne origin in rect-0

    @classmethod
    def from_text(cls, files: dict[str, str]) -> Rig:
        cc = parse_values(files["calib_cam_to_cam.txt"])
        vc = parse_values(files["calib_velo_to_cam.txt"])
        p2 = cc["P_rect_02"].reshape(3, 4)
        w, h = (int(v) for v in cc["S_rect_02"])
        r_rect = cc["R_rect_00"].reshape(3, 3)
        offsets = {c: -cc[f"P_rect_0{c}"][3] / cc[f"P_rect_0{c}"][0] for c in (2, 3)}
        return cls(
            (w, h), p2[:, :3].copy(), offsets, r_rect @ vc["R"].reshape(3, 3), r_rect @ vc["T"]
        )


def make_street(rng: np.random.Generator, length: float) -> Scene:
    """Ground, two bounded facades and parked cars / poles along a straight street."""
    tex = lambda: int(rng.integers(0, 8))  # noqa: E731
    grey = lambda: tuple(rng.uniform(0.45, 0.7) * np.ones(3) + rng.uniform(-0.05, 0.05, 3))  # noqa: E731
    left, right = -rng.uniform(7.0, 9.0), rng.uniform(7.0, 9.0)
    top = CAM_HEIGHT + 0.1
    planes = [
        Plane((0, CAM_HEIGHT, 0), (1, 0, 0), (0, 0, 1), tex(), grey(), 7),
        Plane(
            (left, 0, 0),
            (0, 0, 1),
            (0, 1, 0),
            tex(),
            tuple(rng.uniform(0.4, 0.95, 3)),
            1,
            bounds=(-50, length + 50, -rng.uniform(8, 14), top),
        ),
        Plane(
            (right, 0, 0),
            (0, 0, 1),
            (0, 1, 0),
            tex(),
            tuple(rng.uniform(0.4, 0.95, 3)),
            1,
            bounds=(-50, length + 50, -rng.uniform(8, 14), top),
        ),
    ]
    boxes = []
    for side_x in (left + 1.0, right - 2.8):
        z = rng.uniform(3, 10)
        while z < length:
            if rng.random() < 0.75:  # a car (VOC class 7)
                ln = rng.uniform(3.8, 4.6)
                boxes.append(
                    Box(
                        (side_x, CAM_HEIGHT - rng.uniform(1.4, 1.6), z),
                        (side_x + 1.8, CAM_HEIGHT, z + ln),
                        tex(),
                        tuple(rng.uniform(0.15, 0.95, 3)),
                        7,
                    )
                )
                z += ln + rng.uniform(1.5, 9.0)
            else:  # a pole
                px = side_x + (1.6 if side_x < 0 else 0.2)
                boxes.append(
                    Box(
                        (px, CAM_HEIGHT - 4.0, z),
                        (px + 0.2, CAM_HEIGHT, z + 0.2),
                        tex(),
                        (0.5, 0.5, 0.45),
                        0,
                    )
                )
                z += rng.uniform(4.0, 10.0)
    return Scene(planes, boxes, make_textures(rng), texel=0.04, sky=True)


def rig_pose(phase: np.ndarray, tau: float) -> tuple[np.ndarray, np.ndarray]:
    """Rect-0 camera-to-world rotation and centre at ``tau`` seconds: forward with gentle weave."""
    centre = np.array([0.8 * np.sin(0.35 * tau + phase[0]), 0.0, SPEED * tau])
    yaw = 0.05 * np.sin(0.35 * tau + phase[0] + 0.6) + 0.02 * np.sin(1.3 * tau + phase[1])
    rot = look_rotation(yaw, 0.01 * np.sin(0.9 * tau + phase[2]), 0.005 * np.sin(tau + phase[3]))
    return rot, centre


def _near(scene: Scene, z: float) -> Scene:
    """The scene restricted to boxes near camera depth ``z`` (speeds up casting)."""
    boxes = [b for b in scene.boxes if b.hi[2] > z - 15 and b.lo[2] < z + MAX_RANGE]
    return Scene(scene.planes, boxes, scene.textures, scene.texel, scene.sky, scene.light)


@lru_cache(maxsize=8)
def _pixel_rays(w: int, h: int, k: tuple[float, ...]) -> np.ndarray:
    """Camera-frame directions (H*W, 3) float32 with unit z for every pixel centre."""
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    x, y = (u - k[2]) / k[0], (v - k[5]) / k[4]
    return np.stack([x.ravel(), y.ravel(), np.ones(x.size)], 1).astype(np.float32)


def render_camera(scene: Scene, rig: Rig, cam: int, rot: np.ndarray, centre: np.ndarray):
    """Rectified colour camera ``cam`` (2 or 3): rgb uint8 (H, W, 3), z float32 (H, W), 0 = sky,
    and the true object mask uint8 (H, W): the VOC class of the box seen (7 = car), else 0."""
    w, h = rig.size
    k = rig.K
    dirs = _pixel_rays(w, h, tuple(k.ravel())) @ rot.T.astype(np.float32)
    origin = centre + rot @ np.array([rig.cam_offset[cam], 0.0, 0.0])
    hit = cast(_near(scene, centre[2]), origin, dirs, k[0, 0])
    rgb = np.rint(hit.color.reshape(h, w, 3) * 255).astype(np.uint8)
    depth = np.where(np.isfinite(hit.t), hit.t, 0).reshape(h, w).astype(np.float32)
    objects = hit.instance >= len(scene.planes)  # boxes; planes (ground, facades) are background
    mask = np.where(objects, hit.label, 0).reshape(h, w).astype(np.uint8)
    return rgb, depth, mask


def velodyne_scan(
    scene: Scene, rig: Rig, rot: np.ndarray, centre: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """A 64-beam sweep (HDL-64E-like: +2 to -24.9 deg, 0.18 deg azimuth): float32 (N, 4)."""
    el = np.deg2rad(np.linspace(2.0, -24.9, 64))[:, None]
    az = np.deg2rad(np.arange(0, 360, 0.18))[None, :] + rng.uniform(0, 0.003)
    d_v = np.stack(
        [np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el) * np.ones_like(az)], -1
    ).reshape(-1, 3)
    origin = centre + rot @ rig.velo_b
    dirs = d_v @ (rot @ rig.velo_A).T
    hit = cast(_near(scene, centre[2]), origin, dirs, 300.0)
    keep = np.isfinite(hit.t) & (hit.t < MAX_RANGE) & (hit.t > 0.9)
    pts = d_v[keep] * hit.t[keep, None]
    refl = hit.color[keep].mean(1, keepdims=True)
    return np.concatenate([pts, refl], 1).astype(np.float32)


@dataclass
class DriveTruth:
    """Ground truth of one drive: camera-02 depth per frame and camera-02 poses."""

    folder: str  # "<date>/<date>_drive_NNNN_sync"
    depth: np.ndarray  # (N, H, W) float32 metres, rectified camera-02 z, 0 = sky
    poses: np.ndarray  # (N, 4, 4) camera-02-to-world
    K: np.ndarray  # (3, 3)
    masks: dict[int, np.ndarray] | None = None  # camera 2/3 -> (N, H, W) uint8 VOC class


def write_drive(
    root: Path,
    spec: DateSpec,
    drive: str,
    rig: Rig,
    frames: int,
    seed: int,
    truth: bool,
    progress=None,
    masks: bool = False,
) -> DriveTruth:
    """Render and write one ``<date>_drive_<NNNN>_sync`` folder (``masks``: keep the true
    object masks of cameras 02 and 03 in the returned truth)."""
    name = f"{spec.date}_drive_{drive}_sync"
    rng = np.random.default_rng([seed, int(drive), sum(map(ord, spec.date))])
    scene = make_street(rng, SPEED * frames / FPS + MAX_RANGE)
    phase = rng.uniform(0, 2 * np.pi, 4)
    folder = root / spec.date / name
    dirs = {c: folder / f"image_{c:02d}" / "data" for c in range(4)}
    for sub in [*dirs.values(), folder / "velodyne_points" / "data", folder / "oxts" / "data"]:
        sub.mkdir(parents=True, exist_ok=True)
    times = np.arange(frames) / FPS + rng.normal(0, 0.002, frames) + 3600 * int(drive)
    depths, poses = [], []
    seg: dict[int, list[np.ndarray]] = {2: [], 3: []}
    oxts = []
    for i in range(frames):
        rot, centre = rig_pose(phase, i / FPS)
        for cam in (2, 3):
            rgb, depth, mask = render_camera(scene, rig, cam, rot, centre)
            if masks:
                seg[cam].append(mask)
            bgr = rgb[:, :, ::-1]
            cv2.imwrite(str(dirs[cam] / f"{i:010d}.png"), bgr)
            cv2.imwrite(str(dirs[cam - 2] / f"{i:010d}.png"), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
            if cam == 2 and truth:
                depths.append(depth)
                pose = np.eye(4)
                pose[:3, :3], pose[:3, 3] = rot, centre + rot @ [rig.cam_offset[2], 0, 0]
                poses.append(pose)
        scan = velodyne_scan(scene, rig, rot, centre, rng)
        scan.tofile(folder / "velodyne_points" / "data" / f"{i:010d}.bin")
        oxts.append(oxts_line(rot, centre, rng))
        (folder / "oxts" / "data" / f"{i:010d}.txt").write_text(oxts[-1] + "\n")
        if progress:
            progress()
    stamps = "".join(stamp(t) + "\n" for t in times)
    for c in range(4):
        (folder / f"image_{c:02d}" / "timestamps.txt").write_text(stamps)
    velo = folder / "velodyne_points"
    (velo / "timestamps.txt").write_text(stamps)
    (velo / "timestamps_start.txt").write_text("".join(stamp(t - 0.05) + "\n" for t in times))
    (velo / "timestamps_end.txt").write_text("".join(stamp(t + 0.05) + "\n" for t in times))
    (folder / "oxts" / "timestamps.txt").write_text(stamps)
    (folder / "oxts" / "dataformat.txt").write_text("".join(f"{f}:\n" for f in OXTS_FIELDS))
    w, h = rig.size
    return DriveTruth(
        f"{spec.date}/{name}",
        np.stack(depths) if depths else np.zeros((0, h, w), np.float32),
        np.stack(poses) if poses else np.zeros((0, 4, 4)),
        rig.K,
        {cam: np.stack(m) for cam, m in seg.items()} if masks else None,
    )


def write_improved_gt(root: Path, drive: DriveTruth, frames: list[int], rng) -> None:
    """KITTI depth "annotated" PNGs (uint16, depth * 256) for eigen_benchmark test frames."""
    out = root / drive.folder / "proj_depth" / "groundtruth" / "image_02"
    out.mkdir(parents=True, exist_ok=True)
    for i in frames:
        d = drive.depth[i].copy()
        d[(d > 80) | (rng.random(d.shape) < 0.3)] = 0
        cv2.imwrite(str(out / f"{i:010d}.png"), np.round(d * 256).astype(np.uint16))


def write_splits(root: Path, drives: list[DriveTruth], frames: int) -> None:
    """monodepth2-format split files: Eigen-style test, eigen_benchmark, Zhou-style train/val."""
    test = [d for d in drives if d.folder.endswith(TEST_DRIVE)]
    train = [d for d in drives if not d.folder.endswith(TEST_DRIVE)]
    test_lines = [f"{d.folder} {i:010d} l" for d in test for i in range(frames)]
    lines = [f"{d.folder} {i} {s}" for d in train for i in range(1, frames - 1) for s in "lr"]
    val = lines[::5]
    trn = [ln for k, ln in enumerate(lines) if k % 5]
    files = {
        "eigen/test_files.txt": test_lines,
        "eigen_benchmark/test_files.txt": test_lines,
        "eigen_zhou/train_files.txt": trn,
        "eigen_zhou/val_files.txt": val,
    }
    for name, content in files.items():
        path = root / "splits" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(ln + "\n" for ln in content))


def write_kitti(
    out: Path,
    *,
    frames: int = 12,
    seed: int = 0,
    truth: bool = True,
    progress=None,
    masks: bool = False,
) -> list[DriveTruth]:
    """Write the whole world: two dates, three drives, splits, and ``truth.npz`` when ``truth``.

    ``masks`` also writes ``masks.npz``: the true object masks, ``<folder>/image_02`` and
    ``<folder>/image_03`` uint8 (N, H, W) VOC class indices (7 = car, 0 = background), what
    DeepLabv3 would ideally find; the other files are the same with or without it.
    """
    out = Path(out)
    drives: list[DriveTruth] = []
    for spec in DATES:
        rng = np.random.default_rng([seed, sum(map(ord, spec.date))])
        files = calibration_text(spec, rng)
        (out / spec.date).mkdir(parents=True, exist_ok=True)
        for fname, text in files.items():
            (out / spec.date / fname).write_text(text)
        rig = Rig.from_text(files)
        for drive in spec.drives:
            drives.append(write_drive(out, spec, drive, rig, frames, seed, True, progress, masks))
    test = [d for d in drives if d.folder.endswith(TEST_DRIVE)]
    write_improved_gt(out, test[0], list(range(frames)), np.random.default_rng(seed))
    write_splits(out, drives, frames)
    if truth:
        arrays: dict[str, np.ndarray] = {}
        for d in drives:
            arrays[f"{d.folder}/depth"] = d.depth
            arrays[f"{d.folder}/poses"] = d.poses
            arrays[f"{d.folder}/K"] = d.K
        np.savez_compressed(out / "truth.npz", **arrays)
    if masks:
        seg = {f"{d.folder}/image_0{c}": m for d in drives for c, m in (d.masks or {}).items()}
        np.savez_compressed(out / "masks.npz", **seg)
    return drives
