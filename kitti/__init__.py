"""KITTI raw: calibration, velodyne ground truth and split files, in numpy (no torch)."""

from kitti.calib import Calibration, read_calib
from kitti.groundtruth import read_improved_gt
from kitti.paths import (
    calib_dir,
    frame_file,
    image_path,
    improved_gt_path,
    list_drives,
    odom_image_path,
    timestamps_path,
    velodyne_path,
)
from kitti.splits import SplitEntry, parse_split_line, read_split
from kitti.timestamps import read_timestamps
from kitti.velodyne import read_velodyne, velodyne_depth

__all__ = [
    "Calibration",
    "SplitEntry",
    "calib_dir",
    "frame_file",
    "image_path",
    "improved_gt_path",
    "list_drives",
    "odom_image_path",
    "parse_split_line",
    "read_calib",
    "read_improved_gt",
    "read_split",
    "read_timestamps",
    "read_velodyne",
    "timestamps_path",
    "velodyne_depth",
    "velodyne_path",
]
