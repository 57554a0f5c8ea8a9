"""Synthetic NYU Depth V2 raw world: rooms recorded by a simulated Kinect, in the real dump formats.

Each scene is a textured room with furniture boxes and a smooth hand-held trajectory. Depth is
rendered from the depth camera and RGB from the RGB camera, each through its own lens
distortion (spec nyuv2.md section 3) and related by the toolbox's R and T, so the toolbox's
projection maps the raw depth onto the RGB frame. Both cameras follow OpenCV's 0-based pixel
convention; the toolbox's two 1-based slips (back-projection and projection) nearly cancel.
"""

from __future__ import annotations

import struct
import zipfile
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

import numpy as np

from nyutools import camera as cam
from pipelines.synth.render import (
    Box,
    Plane,
    Scene,
    cast,
    look_rotation,
    make_textures,
    rays_from_pixels,
    undistort_points,
)

H, W = cam.HEIGHT, cam.WIDTH
FPS = 30.0
HOST_T0 = 1294886362.0
# Scene name -> archive it is packed in (None = plain folder). Official archives are zips of
# scene folders; one is zipped here so readers are exercised on both.
SCENES: dict[str, str | None] = {
    "bedroom_0001": None,
    "kitchen_0003a": None,
    "living_room_0012": "living_rooms_part1.zip",
}
# A few NYU class ids (labels are 1-based indices into `names`).
CLASS_IDS = {
    "wall": 21,
    "floor": 11,
    "ceiling": 4,
    "table": 19,
    "cabinet": 3,
    "bed": 157,
    "box": 26,
}

# Motion: the Kinect's camera-frame transform M = -R (a proper rotation, spec section 3).
_M = -cam.R


@dataclass
class Recording:
    """Times and names of one scene's dump files, and the room it films."""

    name: str
    seed: int
    room: Scene
    traj: np.ndarray  # (6,) trajectory phases
    depth: list[tuple[float, str]] = field(default_factory=list)  # (host time, file name)
    rgb: list[tuple[float, str]] = field(default_factory=list)
    accel: list[tuple[float, str]] = field(default_factory=list)


def make_room(rng: np.random.Generator, texture: float = 1.0) -> Scene:
    """A textured room (x right, y down, z forward) with a few furniture boxes.

    ``texture`` scales the contrast of the walls', floor's and ceiling's textures around mid grey
    (1 = fully textured, 0 = each of them one flat colour); the furniture boxes stay fully
    textured. At 1 the room is exactly the default one (same random draws, same atlas).
    """
    if not 0.0 <= texture <= 1.0:
        raise ValueError(f"texture must be in [0, 1], got {texture}")
    x0, x1 = -rng.uniform(2.2, 2.8), rng.uniform(2.2, 2.8)
    y_ceil, y_floor = -rng.uniform(1.3, 1.6), rng.uniform(1.1, 1.4)
    z0, z1 = -1.0, rng.uniform(4.8, 6.0)
    col = lambda: tuple(rng.uniform(0.35, 1.0, 3))  # noqa: E731
    tex = lambda: int(rng.integers(0, 8))  # noqa: E731
    wall = CLASS_IDS["wall"]
    planes = [
        Plane((0, y_floor, 0), (1, 0, 0), (0, 0, 1), tex(), col(), CLASS_IDS["floor"]),
        Plane((0, y_ceil, 0), (1, 0, 0), (0, 0, 1), tex(), col(), CLASS_IDS["ceiling"]),
        Plane((x0, 0, 0), (0, 0, 1), (0, 1, 0), tex(), col(), wall),
        Plane((x1, 0, 0), (0, 0, 1), (0, 1, 0), tex(), col(), wall),
        Plane((0, 0, z1), (1, 0, 0), (0, 1, 0), tex(), col(), wall),
        Plane((0, 0, z0), (1, 0, 0), (0, 1, 0), tex(), col(), wall),
    ]
    boxes = []
    for kind, (sx, sy, sz) in (
        ("table", (1.2, 0.75, 0.8)),
        ("cabinet", (0.8, 1.6, 0.5)),
        ("bed", (1.6, 0.6, 2.0)),
        ("box", (0.4, 0.35, 0.4)),
    ):
        bx = rng.uniform(x0 + 0.1, x1 - sx - 0.1)
        bz = rng.uniform(1.8, z1 - sz - 0.1)
        boxes.append(
            Box((bx, y_floor - sy, bz), (bx + sx, y_floor, bz + sz), tex(), col(), CLASS_IDS[kind])
        )
    textures = make_textures(rng)
    if texture < 1.0:  # the planes use contrast-scaled copies appended to the atlas
        flat = 0.5 + np.float32(texture) * (textures - 0.5)
        planes = [replace(p, texture=p.texture + len(textures)) for p in planes]
        textures = np.concatenate([textures, flat.astype(np.float32)])
    return Scene(planes, boxes, textures, texel=0.012)


def rgb_pose(traj: np.ndarray, tau: float) -> tuple[np.ndarray, np.ndarray]:
    """RGB camera-to-world rotation (3, 3) and centre (3,) at ``tau`` seconds into the scene.

    About 0.3 m/s forward with sideways sway, and a few degrees of yaw and pitch.
    """
    p = traj
    centre = np.array(
        [0.35 * np.sin(0.6 * tau + p[0]), 0.1 * np.sin(0.9 * tau + p[1]) - 0.1, 0.3 * tau]
    )
    rot = look_rotation(
        0.12 * np.sin(0.5 * tau + p[2]) + p[4],
        0.06 * np.sin(0.8 * tau + p[3]),
        0.02 * np.sin(tau + p[5]),
    )
    return rot, centre


@cache
def _raw_rays(kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Undistorted normalised coordinates (H, W) of every raw pixel of camera ``kind``."""
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    if kind == "depth":
        k, dist = cam.K_D, cam.DIST_D
    else:
        k, dist = cam.K_RGB, cam.DIST_RGB
    xd, yd = (u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1]
    if kind == "pinhole":
        return xd, yd
    return undistort_points(xd, yd, dist)


def render_depth_raw(room: Scene, traj: np.ndarray, tau: float, rng: np.random.Generator):
    """Raw Kinect frame: uint16 (H, W) disparity units, 2047 = no reading."""
    rot, centre = rgb_pose(traj, tau)
    x, y = _raw_rays("depth")
    origin = centre - rot @ cam.T
    hit = cast(room, origin, rays_from_pixels(x, y, rot @ _M.T), cam.FX_D)
    z = hit.t.reshape(H, W).astype(np.float64)
    raw = np.rint(cam.metres_to_raw(np.where(np.isfinite(z), z, 0.0)))
    raw[(raw < 600) | (raw > 1084)] = cam.RAW_NO_READING
    # A few blobs without reading (IR absorbing or specular spots).
    vv, uu = np.mgrid[0:H, 0:W]
    for _ in range(int(rng.integers(1, 4))):
        cy, cx, ry, rx = (
            rng.uniform(0, H),
            rng.uniform(0, W),
            rng.uniform(3, 15),
            rng.uniform(3, 25),
        )
        raw[((vv - cy) / ry) ** 2 + ((uu - cx) / rx) ** 2 < 1] = cam.RAW_NO_READING
    return raw.astype(np.uint16)


def render_rgb_raw(room: Scene, traj: np.ndarray, tau: float) -> np.ndarray:
    """Distorted RGB frame as the Kinect records it: uint8 (H, W, 3)."""
    rot, centre = rgb_pose(traj, tau)
    x, y = _raw_rays("rgb")
    hit = cast(room, centre, rays_from_pixels(x, y, rot), cam.FX_RGB)
    return np.rint(hit.color.reshape(H, W, 3) * 255).astype(np.uint8)


def render_rgb_truth(room: Scene, traj: np.ndarray, tau: float):
    """Ideal undistorted view on the toolbox's RGB grid: (rgb uint8 (H,W,3), depth float32 (H,W) m,
    label int32 (H,W), surface index int32 (H,W)). Depth is z in the RGB camera."""
    rot, centre = rgb_pose(traj, tau)
    x, y = _raw_rays("pinhole")
    hit = cast(room, centre, rays_from_pixels(x, y, rot), cam.FX_RGB)
    rgb = np.rint(hit.color.reshape(H, W, 3) * 255).astype(np.uint8)
    depth = np.where(np.isfinite(hit.t), hit.t, 0).reshape(H, W).astype(np.float32)
    return rgb, depth, hit.label.reshape(H, W), hit.instance.reshape(H, W)


def _times(rng: np.random.Generator, n: int, offset: float, drop: float) -> np.ndarray:
    """~30 Hz host times with jitter and dropped frames (first two always kept)."""
    k = np.arange(int(n * (1 + drop)) + 2)
    t = offset + k / FPS + rng.normal(0, 0.002, k.size)
    keep = rng.random(k.size) >= drop
    keep[:2] = True
    t = np.sort(t[keep])[:n]
    return np.round(t, 6)


def plan_recording(name: str, frames: int, seed: int, texture: float = 1.0) -> Recording:
    """Deterministic room, trajectory and file names of one scene (nothing written);
    ``texture`` as in :func:`make_room`."""
    rng = np.random.default_rng([seed, sum(map(ord, name))])
    room = make_room(rng, texture)
    rec = Recording(name, seed, room, rng.uniform(0, 2 * np.pi, 6) * [1, 1, 1, 1, 0, 1])
    rec.traj[4] = rng.uniform(-0.2, 0.2)
    start = 1000.0 * (1 + list(SCENES).index(name)) + seed * 10_000.0
    dev0 = int(rng.integers(0, 2**32))
    dev = lambda t: (dev0 + int(round((t - start) * 60e6))) % 2**32  # noqa: E731
    d_t = _times(rng, frames, start, 0.06)
    r_t = _times(rng, frames, start + rng.uniform(0.004, 0.03), 0.06)
    rec.depth = [(t, f"d-{HOST_T0 + t:.6f}-{dev(t)}.pgm") for t in d_t]
    rec.rgb = [(t, f"r-{HOST_T0 + t:.6f}-{dev(t)}.ppm") for t in r_t]
    # Accelerometer: ~25 Hz, each reusing the device stamp of the last depth/RGB frame.
    a_t = np.round(start + 0.01 + np.sort(rng.uniform(0, frames / FPS, int(frames * 0.8))), 6)
    frame_t = np.sort(np.concatenate([d_t, r_t]))
    for t in a_t:
        last = frame_t[max(np.searchsorted(frame_t, t) - 1, 0)]
        rec.accel.append((float(t), f"a-{HOST_T0 + t:.6f}-{dev(last)}.dump"))
    return rec


def accel_record(rot: np.ndarray, tilt: int = -6) -> bytes:
    """12-byte ``freenect_raw_tilt_state`` for gravity (world +y) seen by the camera."""
    g = rot.T @ np.array([0.0, 1.0, 0.0])
    ax, ay, az = (int(round(819 * c)) for c in g)
    return struct.pack("<hhhbxi", ax, ay, az, tilt, 0)


def pgm_bytes(raw: np.ndarray) -> bytes:
    """NYU depth dump: header ``P5 640 480 65535\\n`` then little-endian uint16 samples."""
    return b"P5 640 480 65535\n" + raw.astype("<u2").tobytes()


def ppm_bytes(rgb: np.ndarray) -> bytes:
    """NYU RGB dump: header ``P6 640 480 255\\n`` then RGB bytes."""
    return b"P6 640 480 255\n" + np.ascontiguousarray(rgb, np.uint8).tobytes()


@dataclass
class SceneTruth:
    """Ground truth of one written scene: per RGB file, its ideal depth and pose."""

    name: str
    rgb_names: list[str]
    depth: np.ndarray  # (n_rgb, H, W) float32 metres, z in the RGB camera, on the undistorted grid
    poses: np.ndarray  # (n_rgb, 4, 4) RGB camera-to-world
    corrupt: list[str] = field(default_factory=list)


def write_recording(
    rec: Recording, out: Path, *, corrupt: bool, truth: bool, progress=None
) -> SceneTruth:
    """Write one scene's dumps (folder, or member of its zip) and return its truth."""
    rng = np.random.default_rng([rec.seed, 7, sum(map(ord, rec.name))])
    t0 = rec.depth[0][0]
    files: dict[str, bytes] = {}
    for t, name in rec.depth:
        files[name] = pgm_bytes(render_depth_raw(rec.room, rec.traj, t - t0, rng))
        if progress:
            progress()
    depths, poses = [], []
    for t, name in rec.rgb:
        files[name] = ppm_bytes(render_rgb_raw(rec.room, rec.traj, t - t0))
        if truth:
            depths.append(render_rgb_truth(rec.room, rec.traj, t - t0)[1])
            rot, centre = rgb_pose(rec.traj, t - t0)
            pose = np.eye(4)
            pose[:3, :3], pose[:3, 3] = rot, centre
            poses.append(pose)
    for t, name in rec.accel:
        files[name] = accel_record(rgb_pose(rec.traj, t - t0)[0])
    bad: list[str] = []
    if corrupt:
        # One truncated depth, one truncated RGB, one wrong-size accel record.
        d_name, r_name, a_name = rec.depth[len(rec.depth) // 2][1], rec.rgb[3][1], rec.accel[2][1]
        files[d_name] = files[d_name][: len(files[d_name]) // 2]
        files[r_name] = files[r_name][:1000]
        files[a_name] = files[a_name] + b"\0"
        bad = [d_name, r_name, a_name]
    index = "".join(n + "\n" for _, n in sorted(rec.depth + rec.rgb + rec.accel))
    files["INDEX.txt"] = index.encode()
    archive = SCENES.get(rec.name)
    if archive is None:
        folder = out / rec.name
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)
    else:
        with zipfile.ZipFile(out / archive, "a", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            for name, data in files.items():
                zf.writestr(f"{rec.name}/{name}", data)
    empty = np.zeros((0, H, W), np.float32)
    return SceneTruth(
        rec.name,
        [n for _, n in rec.rgb],
        np.stack(depths) if depths else empty,
        np.stack(poses) if poses else np.zeros((0, 4, 4)),
        bad,
    )


def write_nyu_raw(
    out: Path,
    *,
    frames: int = 24,
    seed: int = 0,
    corrupt: bool = False,
    truth: bool = True,
    progress=None,
    texture: float = 1.0,
) -> list[SceneTruth]:
    """Write every scene of :data:`SCENES` under ``out``; save ``truth.npz`` when ``truth``.

    ``texture`` < 1 gives rooms with weakly textured (0: flat, one colour each) walls, floor and
    ceiling and fully textured furniture (:func:`make_room`); the default is the usual world.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for archive in {a for a in SCENES.values() if a}:
        (out / archive).unlink(missing_ok=True)
    truths = []
    for i, name in enumerate(SCENES):
        rec = plan_recording(name, frames, seed, texture)
        truths.append(
            write_recording(rec, out, corrupt=corrupt and i == 0, truth=truth, progress=progress)
        )
    if truth:
        save_truth(out / "truth.npz", truths)
    return truths


def save_truth(path: Path, truths: list[SceneTruth]) -> None:
    """Save ``truth.npz``: ``<scene>/depth`` (n, H, W) float32, ``/poses``, ``/rgb_names``."""
    arrays: dict[str, np.ndarray] = {}
    for t in truths:
        arrays[f"{t.name}/depth"] = t.depth
        arrays[f"{t.name}/poses"] = t.poses
        arrays[f"{t.name}/rgb_names"] = np.array(t.rgb_names)
    np.savez_compressed(path, **arrays)
