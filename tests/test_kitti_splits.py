"""kitti.splits, kitti.paths, kitti.groundtruth and kitti.timestamps."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from kitti import (
    SplitEntry,
    calib_dir,
    image_path,
    improved_gt_path,
    list_drives,
    odom_image_path,
    read_improved_gt,
    read_split,
    read_timestamps,
    velodyne_path,
)

DRIVE = "2011_09_26/2011_09_26_drive_0002_sync"


def test_read_split(tmp_path: Path) -> None:
    path = tmp_path / "test_files.txt"
    path.write_text(f"{DRIVE} 0000000069 l\n\n{DRIVE} 70 r\n{DRIVE} 5 2\n{DRIVE} 6 3\n9 12 l\n")
    entries = read_split(path)
    assert entries == [
        SplitEntry(DRIVE, 69, "l"),
        SplitEntry(DRIVE, 70, "r"),
        SplitEntry(DRIVE, 5, "l"),
        SplitEntry(DRIVE, 6, "r"),
        SplitEntry("9", 12, "l"),
    ]
    assert entries[1].cam == 3 and entries[0].date == "2011_09_26"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("image 12", "expected '<folder> <frame> <side>'"),
        (f"{DRIVE} 12 l extra", "expected"),
        (f"{DRIVE} twelve l", "not an integer"),
        (f"{DRIVE} -3 l", "negative"),
        (f"{DRIVE} 12 x", "side 'x'"),
    ],
)
def test_read_split_malformed(tmp_path: Path, bad: str, message: str) -> None:
    path = tmp_path / "train_files.txt"
    path.write_text(f"{DRIVE} 1 l\n\n{bad}\n")
    with pytest.raises(ValueError, match=rf"train_files\.txt, line 3: .*{message}"):
        read_split(path)


def test_read_split_missing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nope.txt"):
        read_split(tmp_path / "nope.txt")


def test_paths() -> None:
    root = Path("/data/kitti")
    assert calib_dir(root, DRIVE) == root / "2011_09_26"
    assert image_path(root, DRIVE, 69, "l") == root / DRIVE / "image_02/data/0000000069.png"
    assert image_path(root, DRIVE, 69, "3", ".jpg") == root / DRIVE / "image_03/data/0000000069.jpg"
    assert velodyne_path(root, DRIVE, 7) == root / DRIVE / "velodyne_points/data/0000000007.bin"
    assert improved_gt_path(root, DRIVE, 7) == (
        root / DRIVE / "proj_depth/groundtruth/image_02/0000000007.png"
    )
    assert odom_image_path(root, 9, 12, "r") == root / "sequences/09/image_3/000012.png"
    with pytest.raises(ValueError, match="side"):
        image_path(root, DRIVE, 1, "left")


def test_list_drives(tmp_path: Path) -> None:
    for name in [
        DRIVE,
        "2011_09_26/2011_09_26_drive_0001_sync",
        "2011_09_28/2011_09_28_drive_0002_sync",
    ]:
        (tmp_path / name).mkdir(parents=True)
    (tmp_path / "2011_09_26" / "calib_cam_to_cam.txt").write_text("")
    assert list_drives(tmp_path) == [
        "2011_09_26/2011_09_26_drive_0001_sync",
        DRIVE,
        "2011_09_28/2011_09_28_drive_0002_sync",
    ]


def test_improved_gt_round_trip(tmp_path: Path) -> None:
    raw = np.zeros((4, 6), dtype=np.uint16)
    raw[1, 2], raw[3, 5] = 256 * 12 + 128, 65535
    path = tmp_path / "0000000005.png"
    assert cv2.imwrite(str(path), raw)
    depth = read_improved_gt(path)
    assert depth.dtype == np.float32 and depth.shape == (4, 6)
    assert depth[1, 2] == 12.5 and depth[3, 5] == 65535 / 256 and np.count_nonzero(depth) == 2


def test_improved_gt_errors(tmp_path: Path) -> None:
    eight_bit = tmp_path / "8bit.png"
    cv2.imwrite(str(eight_bit), np.zeros((4, 6), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"8bit\.png.*16-bit"):
        read_improved_gt(eight_bit)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"broken\.png"):
        read_improved_gt(broken)


def test_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "timestamps.txt"
    path.write_text("2011-09-26 13:02:25.964389445\n2011-09-26 13:02:26.068000000\n")
    seconds = read_timestamps(path)
    assert seconds.dtype == np.float64 and seconds.shape == (2,)
    assert seconds[0] == pytest.approx(1317042145.964389445, abs=1e-6)
    assert seconds[1] - seconds[0] == pytest.approx(0.103610555, abs=1e-6)


def test_timestamps_malformed(tmp_path: Path) -> None:
    path = tmp_path / "timestamps.txt"
    path.write_text("2011-09-26 13:02:25.964389445\n\n2011-09-26 13:02:26.068000000\n")
    with pytest.raises(ValueError, match=r"timestamps\.txt, line 2"):
        read_timestamps(path)
    path.write_text("2011-09-26 13:02:25.964389445\n2011-09-26 25:02:26.068\n")
    with pytest.raises(ValueError, match=r"timestamps\.txt, line 2"):
        read_timestamps(path)
