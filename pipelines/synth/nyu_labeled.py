"""Synthetic NYU labeled set: ``nyu_depth_v2_labeled.mat`` (MATLAB v7.3) and ``splits.mat`` (v5).

The labeled frames are RGB frames of a synthetic raw world written beside them (``raw/``), so
every scene and file name in the ``.mat`` exists in that raw world. Frames of the first scene
are the test split, the others train, so a raw store can exclude the test scene.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import scipy.io

from nyutools import camera as cam
from pipelines.synth.nyu import (
    CLASS_IDS,
    SCENES,
    plan_recording,
    render_rgb_truth,
    rgb_pose,
    write_nyu_raw,
)

N_CLASSES = 894
LABELED_STRIDE = 3  # every 3rd RGB frame of a scene is labeled


@dataclass
class LabeledTruth:
    """What was written: per labeled frame its scene, RGB name and whether it is a test frame."""

    scenes: list[str]
    rgb_names: list[str]
    test: np.ndarray  # (N,) bool
    depths: np.ndarray  # (N, 480, 640) float32 true depth (metres, 0 = none)


def class_names() -> list[str]:
    """894 class names; the ids used by the synthetic rooms carry their NYU names."""
    names = [f"object_{k}" for k in range(1, N_CLASSES + 1)]
    for name, k in CLASS_IDS.items():
        names[k - 1] = name
    return names


def _matlab_header() -> bytes:
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Tue Nov 24 07:00:00 2026 "
    text += b"HDF5 schema 1.00 ."
    return text.ljust(116, b" ") + b"\0" * 8 + b"\x00\x02" + b"IM"


def write_mat_v73(
    path: Path, arrays: dict[str, tuple[np.ndarray, str]], cells: dict[str, list[str]]
) -> None:
    """Write a MATLAB v7.3 file: HDF5 with the 512-byte MATLAB user block.

    ``arrays`` maps a name to (array already in h5py axis order, MATLAB class); ``cells`` maps a
    name to a list of strings, stored as a 1 x n cell of char arrays in ``#refs#``.
    """
    with h5py.File(path, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")
        for name, (data, mclass) in arrays.items():
            ds = f.create_dataset(name, data=data)
            ds.attrs["MATLAB_class"] = np.bytes_(mclass)
        for name, strings in cells.items():
            ref_list = []
            for k, s in enumerate(strings):
                chars = np.array([ord(c) for c in s], np.uint16)[:, None]
                ds = refs.create_dataset(f"{name}_{k}", data=chars)
                ds.attrs["MATLAB_class"] = np.bytes_("char")
                ds.attrs["MATLAB_int_decode"] = np.int32(2)
                ref_list.append(ds.ref)
            cell = f.create_dataset(name, data=np.array([ref_list], dtype=h5py.ref_dtype))
            cell.attrs["MATLAB_class"] = np.bytes_("cell")
    with open(path, "r+b") as fh:
        fh.write(_matlab_header())


def write_nyu_labeled(
    out: Path,
    *,
    frames: int = 24,
    seed: int = 0,
    truth: bool = True,
    progress=None,
    texture: float = 1.0,
) -> LabeledTruth:
    """Write ``out/raw/`` (raw world), ``out/nyu_depth_v2_labeled.mat`` and ``out/splits.mat``
    (``texture``: the rooms' texture amount, as in :func:`pipelines.synth.nyu.make_room`)."""
    out = Path(out)
    write_nyu_raw(
        out / "raw", frames=frames, seed=seed, truth=truth, progress=progress, texture=texture
    )
    rng = np.random.default_rng([seed, 1449])
    images, depths, raws, labels, instances, accel = [], [], [], [], [], []
    scenes, rgb_names, depth_names, test = [], [], [], []
    for s_idx, name in enumerate(SCENES):
        rec = plan_recording(name, frames, seed, texture)
        t0 = rec.depth[0][0]
        d_times = np.array([t for t, _ in rec.depth])
        inst_of = _instance_numbers(rec.room)
        for t, rgb_name in rec.rgb[1::LABELED_STRIDE]:
            rgb, depth, label, surface = render_rgb_truth(rec.room, rec.traj, t - t0)
            raw = np.where(depth <= cam.MAX_DEPTH, depth, 0).astype(np.float32)
            vv, uu = np.mgrid[0:480, 0:640]
            cy, cx = rng.uniform(0, 480), rng.uniform(0, 640)
            raw[((vv - cy) / 20) ** 2 + ((uu - cx) / 30) ** 2 < 1] = 0
            images.append(rgb)
            depths.append(np.minimum(depth, cam.MAX_DEPTH).astype(np.float32))
            raws.append(raw)
            labels.append(np.maximum(label, 0).astype(np.uint16))
            instances.append(inst_of[surface].astype(np.uint8))
            rot = rgb_pose(rec.traj, t - t0)[0]
            accel.append(
                [
                    np.arctan2(rot[1, 0], rot[1, 1]),
                    np.arctan2(rot[0, 2], rot[2, 2]),
                    np.arcsin(-rot[1, 2]),
                    -6.0,
                ]
            )
            scenes.append(name)
            rgb_names.append(f"{name}/{rgb_name}")
            depth_names.append(f"{name}/{rec.depth[int(np.abs(d_times - t).argmin())][1]}")
            test.append(s_idx == 0)
    n = len(images)
    img = np.stack(images)  # (N, 480, 640, 3)
    arrays = {
        "images": (np.ascontiguousarray(img.transpose(0, 3, 2, 1)), "uint8"),
        "depths": (np.ascontiguousarray(np.stack(depths).transpose(0, 2, 1)), "single"),
        "rawDepths": (np.ascontiguousarray(np.stack(raws).transpose(0, 2, 1)), "single"),
        "labels": (np.ascontiguousarray(np.stack(labels).transpose(0, 2, 1)), "uint16"),
        "instances": (np.ascontiguousarray(np.stack(instances).transpose(0, 2, 1)), "uint8"),
        "accelData": (np.asarray(accel, np.float32).T.copy(), "single"),
    }
    cells = {
        "names": class_names(),
        "scenes": scenes,
        "sceneTypes": [_scene_type(s) for s in scenes],
        "rawRgbFilenames": rgb_names,
        "rawDepthFilenames": depth_names,
    }
    write_mat_v73(out / "nyu_depth_v2_labeled.mat", arrays, cells)
    test_arr = np.array(test)
    idx = np.arange(1, n + 1, dtype=np.float64)[:, None]
    scipy.io.savemat(out / "splits.mat", {"trainNdxs": idx[~test_arr], "testNdxs": idx[test_arr]})
    return LabeledTruth(scenes, rgb_names, test_arr, np.stack(depths))


def _scene_type(scene: str) -> str:
    """``living_room_0012`` -> ``living_room`` (up to the underscore before the first digits)."""
    head, _, _ = scene.rpartition("_")
    return head


def _instance_numbers(room) -> np.ndarray:
    """Instance number within its class per surface index (last entry: no hit = 0)."""
    labels = [p.label for p in [*room.planes, *room.boxes]]
    seen: dict[int, int] = {}
    numbers = []
    for lab in labels:
        seen[lab] = seen.get(lab, 0) + 1
        numbers.append(seen[lab])
    return np.array(numbers + [0])
