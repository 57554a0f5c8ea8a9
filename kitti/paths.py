"""Where things live in a KITTI raw tree (spec kitti.md sections 1, 7 and 9).

``root`` is the data root holding the date folders; ``folder`` is a split-file folder
(``<date>/<date>_drive_<NNNN>_sync``); ``side`` is ``l`` / ``r`` (or ``2`` / ``3``).
"""

from __future__ import annotations

from pathlib import Path

from kitti.splits import CAMERA_OF_SIDE, SIDES


def _camera(side: str) -> int:
    if side not in SIDES:
        raise ValueError(f"side {side!r} must be one of l, r, 2, 3")
    return CAMERA_OF_SIDE[SIDES[side]]


def frame_file(frame: int, ext: str = ".png") -> str:
    """File name of ``frame`` in a KITTI raw data folder: ``{frame:010d}<ext>``."""
    return f"{frame:010d}{ext}"


def calib_dir(root: str | Path, folder: str) -> Path:
    """The date folder holding the calibration files of ``folder``: ``<root>/<date>``."""
    return Path(root) / folder.split("/")[0]


def image_path(root: str | Path, folder: str, frame: int, side: str, ext: str = ".png") -> Path:
    """``<root>/<folder>/image_0{2|3}/data/{frame:010d}<ext>`` (colour camera of ``side``)."""
    return Path(root) / folder / f"image_0{_camera(side)}" / "data" / frame_file(frame, ext)


def velodyne_path(root: str | Path, folder: str, frame: int) -> Path:
    """``<root>/<folder>/velodyne_points/data/{frame:010d}.bin``."""
    return Path(root) / folder / "velodyne_points" / "data" / frame_file(frame, ".bin")


def timestamps_path(root: str | Path, folder: str, stream: str = "image_02") -> Path:
    """``<root>/<folder>/<stream>/timestamps.txt`` (stream: image_00..03, oxts, velodyne_points)."""
    return Path(root) / folder / stream / "timestamps.txt"


def improved_gt_path(root: str | Path, folder: str, frame: int, side: str = "l") -> Path:
    """KITTI "annotated depth" merged into the raw tree:
    ``<root>/<folder>/proj_depth/groundtruth/image_0{2|3}/{frame:010d}.png``."""
    camera = f"image_0{_camera(side)}"
    return Path(root) / folder / "proj_depth" / "groundtruth" / camera / frame_file(frame)


def odom_image_path(
    root: str | Path, sequence: int, frame: int, side: str, ext: str = ".png"
) -> Path:
    """KITTI odometry image (monodepth2 layout):
    ``<root>/sequences/{seq:02d}/image_{2|3}/{frame:06d}<ext>``."""
    return (
        Path(root)
        / "sequences"
        / f"{sequence:02d}"
        / f"image_{_camera(side)}"
        / f"{frame:06d}{ext}"
    )


def list_drives(root: str | Path) -> list[str]:
    """Sorted drive folders ``<date>/<date>_drive_<NNNN>_sync`` found under ``root``."""
    root = Path(root)
    return sorted(
        f"{drive.parent.name}/{drive.name}"
        for drive in root.glob("*/*_drive_*_sync")
        if drive.is_dir() and drive.name.startswith(drive.parent.name)
    )
