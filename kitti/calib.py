"""KITTI raw calibration files (spec kitti.md section 2).

A date folder (``<root>/2011_09_26``) holds ``calib_cam_to_cam.txt``, ``calib_velo_to_cam.txt`` and
``calib_imu_to_velo.txt``. :func:`read_calib` parses one file with the monodepth2 rule;
:class:`Calibration` holds the matrices a date needs, parsed once per folder.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CAM_TO_CAM = "calib_cam_to_cam.txt"
VELO_TO_CAM = "calib_velo_to_cam.txt"
IMU_TO_VELO = "calib_imu_to_velo.txt"

# A value made only of these characters is parsed as floats (monodepth2 ``read_calib_file``).
_FLOAT_CHARS = frozenset("0123456789.e+- ")

CalibValue = np.ndarray | str


def read_calib(path: str | Path) -> dict[str, CalibValue]:
    """Parse a KITTI ``key: values`` calibration file.

    Each line is split at its first ``:``. A value whose characters all belong to
    ``0123456789.e+-`` and space is split on single spaces into a 1-D float64 array; if that
    conversion fails, or the value holds any other character, the stripped string is kept
    (``calib_time`` stays text, ``corner_dist`` becomes a 1-element array). Blank lines are skipped.

    Raises:
        ValueError: the file cannot be read, or a non-blank line has no ``:`` or an empty key
            (the message names the file and the 1-based line number).
    """
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: cannot read calibration file ({err})") from err
    data: dict[str, CalibValue] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"{path}, line {number}: expected 'key: values', got {line!r}")
        value = value.strip()
        data[key] = value
        if _FLOAT_CHARS.issuperset(value):
            try:
                data[key] = np.array([float(piece) for piece in value.split(" ")])
            except ValueError:
                pass
    return data


def _floats(calib: dict[str, CalibValue], key: str, count: int, path: Path) -> np.ndarray:
    """``calib[key]`` as a float64 array of ``count`` values, or a ValueError naming the file."""
    value = calib.get(key)
    if not isinstance(value, np.ndarray) or value.size != count:
        got = "missing" if value is None else f"{value!r}"
        raise ValueError(f"{path}: key {key!r} must hold {count} numbers, got {got}")
    return value


def _readonly(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)  # compared and hashed by identity (holds arrays)
class Calibration:
    """The calibration of one KITTI recording date (all arrays float64 and read-only).

    Attributes:
        date_dir: the folder the files were read from.
        velo2cam: (4, 4) LiDAR -> unrectified camera 00 coordinates, metres.
        R_cam2rect: (4, 4) identity with camera 00's rectifying rotation ``R_rect_00`` top-left.
        P_rect: camera index (those in the file; 2 always) -> (3, 4) rectified projection
            ``P_rect_0c`` (pixels).
        S_rect: camera index -> (2,) rectified image size as written in the file: width, height.
        cam_to_cam: the raw parsed ``calib_cam_to_cam.txt``.
    """

    date_dir: Path
    velo2cam: np.ndarray
    R_cam2rect: np.ndarray
    P_rect: dict[int, np.ndarray]
    S_rect: dict[int, np.ndarray]
    cam_to_cam: dict[str, CalibValue]

    @staticmethod
    def from_dir(date_dir: str | Path) -> Calibration:
        """Read the calibration of a date folder; parsed once per folder and cached (a file
        rewritten since, i.e. a new modification time or size, is read again)."""
        folder = Path(date_dir).resolve()
        return _load_calibration(folder, _file_stamps(folder / CAM_TO_CAM, folder / VELO_TO_CAM))

    def size(self, cam: int = 2) -> tuple[int, int]:
        """Rectified image size ``(H, W)`` of camera ``cam`` (from ``S_rect_0c``, cast to int32)."""
        self._check_cam(cam)
        width, height = self.S_rect[cam].astype(np.int32)
        return int(height), int(width)

    def P_velo2im(self, cam: int = 2) -> np.ndarray:
        """(3, 4) float64 LiDAR (homogeneous, metres) -> camera ``cam`` rectified pixels.

        ``P_rect_0c @ R_cam2rect @ velo2cam``, multiplied in that order (for bit-identical
        projections with monodepth2).
        """
        self._check_cam(cam)
        return np.dot(np.dot(self.P_rect[cam], self.R_cam2rect), self.velo2cam)

    def K(self, cam: int = 2) -> np.ndarray:
        """(3, 3) float64 pixel intrinsics of rectified camera ``cam`` at native resolution."""
        self._check_cam(cam)
        return self.P_rect[cam][:, :3].copy()

    def _check_cam(self, cam: int) -> None:
        if cam not in self.P_rect:
            raise ValueError(
                f"{self.date_dir / CAM_TO_CAM}: no P_rect_0{cam} for camera {cam!r} "
                f"(have cameras {sorted(self.P_rect)})"
            )

    @property
    def baseline(self) -> float:
        """Metric baseline between colour cameras 02 and 03: ``(P02[0,3] - P03[0,3]) / fx``."""
        self._check_cam(3)
        p2, p3 = self.P_rect[2], self.P_rect[3]
        return float((p2[0, 3] - p3[0, 3]) / p2[0, 0])


def _file_stamps(*paths: Path) -> tuple[tuple[int, int] | None, ...]:
    """(modification time ns, size) per file, None when missing: part of the cache key."""
    stamps = []
    for path in paths:
        try:
            stat = path.stat()
            stamps.append((stat.st_mtime_ns, stat.st_size))
        except OSError:
            stamps.append(None)
    return tuple(stamps)


@functools.lru_cache(maxsize=64)
def _load_calibration(date_dir: Path, stamps: tuple[tuple[int, int] | None, ...]) -> Calibration:
    del stamps  # only distinguishes cache entries
    cam_path = date_dir / CAM_TO_CAM
    velo_path = date_dir / VELO_TO_CAM
    cam_to_cam = read_calib(cam_path)
    velo = read_calib(velo_path)

    velo2cam = np.eye(4)
    velo2cam[:3, :3] = _floats(velo, "R", 9, velo_path).reshape(3, 3)
    velo2cam[:3, 3] = _floats(velo, "T", 3, velo_path)
    r_cam2rect = np.eye(4)
    r_cam2rect[:3, :3] = _floats(cam_to_cam, "R_rect_00", 9, cam_path).reshape(3, 3)
    # Cameras whose rectified projection is in the file; 02 defines the ground-truth image size.
    cams = [c for c in range(4) if f"P_rect_0{c}" in cam_to_cam or c == 2]
    p_rect = {
        c: _readonly(_floats(cam_to_cam, f"P_rect_0{c}", 12, cam_path).reshape(3, 4).copy())
        for c in cams
    }
    s_rect = {c: _readonly(_floats(cam_to_cam, f"S_rect_0{c}", 2, cam_path).copy()) for c in cams}
    return Calibration(
        date_dir=date_dir,
        velo2cam=_readonly(velo2cam),
        R_cam2rect=_readonly(r_cam2rect),
        P_rect=p_rect,
        S_rect=s_rect,
        cam_to_cam=cam_to_cam,
    )
