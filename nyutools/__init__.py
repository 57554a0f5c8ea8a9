"""NYU Depth V2 readers and the official toolbox's algorithms, in numpy (no torch).

* raw dumps: :func:`read_depth_pgm`, :func:`read_rgb_ppm`, :func:`read_accel_dump`
* scenes (folders or zips): :func:`open_scene`, :func:`list_scenes`, :class:`Scene`
* synchronisation: :func:`sync_frames` -> list of :class:`SyncedFrame`
* projection onto the RGB camera: :func:`project_depth`, :func:`undistort`,
  :func:`projection_mask`, :func:`crop_image`
* in-painting: :func:`fill_depth`
* labeled subset: :class:`LabeledSet`, :func:`read_splits`
"""

from nyutools import camera
from nyutools.fill import fill_depth, rgb_to_gray
from nyutools.labeled import LabeledSet, read_splits
from nyutools.projection import (
    CROP_COLS,
    CROP_ROWS,
    CROP_SHAPE,
    DENSEDEPTH_CROP_COLS,
    DENSEDEPTH_CROP_ROWS,
    EIGEN_CROP_COLS,
    EIGEN_CROP_ROWS,
    crop_image,
    project_depth,
    projection_mask,
)
from nyutools.readers import (
    NyuFormatError,
    frame_time,
    parse_frame_name,
    read_accel_dump,
    read_depth_pgm,
    read_rgb_ppm,
)
from nyutools.scenes import Scene, list_scenes, open_scene, scene_type, zip_scene_names
from nyutools.sync import SyncedFrame, greedy_match, sync_frames
from nyutools.undistort import DEPTH_CAMERA, RGB_CAMERA, CameraModel, undistort, undistort_rgb

__all__ = [
    "CROP_COLS",
    "CROP_ROWS",
    "CROP_SHAPE",
    "DENSEDEPTH_CROP_COLS",
    "DENSEDEPTH_CROP_ROWS",
    "DEPTH_CAMERA",
    "EIGEN_CROP_COLS",
    "EIGEN_CROP_ROWS",
    "RGB_CAMERA",
    "CameraModel",
    "LabeledSet",
    "NyuFormatError",
    "Scene",
    "SyncedFrame",
    "camera",
    "crop_image",
    "fill_depth",
    "frame_time",
    "greedy_match",
    "list_scenes",
    "open_scene",
    "parse_frame_name",
    "project_depth",
    "projection_mask",
    "read_accel_dump",
    "read_depth_pgm",
    "read_rgb_ppm",
    "read_splits",
    "rgb_to_gray",
    "scene_type",
    "sync_frames",
    "undistort",
    "undistort_rgb",
    "zip_scene_names",
]
