"""Per-block pixel work of ``prepare-nyu``: raw dumps -> projected, resized frames; labeled frames.

:class:`NyuRawBlocks` and :class:`NyuLabeledBlocks` are the block functions handed to
:func:`pipelines.store.runner.run_conversion`: ``blocks(block, rows)`` returns the per-frame
arrays of frame rows ``rows``. Everything that needs no pixels (file names, times, accelerometer
values, intrinsics) comes from the plan, so a block is a pure function of the input files.

Resizing (:func:`resize_frame`): the image with ``cv2.INTER_AREA`` when shrinking (pixel-area
averaging) and ``cv2.INTER_CUBIC`` when enlarging; the depth with ``cv2.INTER_NEAREST_EXACT``,
which picks the source pixel whose centre is nearest to each output pixel centre (the same
centre-to-centre mapping as the image, so :func:`resized_intrinsics` holds for both). Depth is
never averaged: blending a foreground and a background depth at an edge would invent a surface
in between, and blending with holes (0) would bias depths towards 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

import nyutools
from nyutools import camera
from pipelines.prepare.common import resized_intrinsics
from pipelines.prepare.nyu.plan import SceneSource

NATIVE = (camera.HEIGHT, camera.WIDTH)

__all__ = [
    "NyuLabeledBlocks",
    "NyuRawBlocks",
    "convert_frame",
    "nyu_intrinsics",
    "resize_frame",
]


def nyu_intrinsics(size: tuple[int, int]) -> np.ndarray:
    """float64 (3, 3) pixel intrinsics of the undistorted RGB (``K_RGB``) resized to ``size``.

    The toolbox's undistortion keeps ``K_RGB`` and uses 0-based pixel centres, so the pixel
    centre-preserving rescale of :func:`pipelines.prepare.common.resized_intrinsics` applies.
    """
    return resized_intrinsics(camera.K_RGB, NATIVE, size)


def resize_frame(
    image: np.ndarray, depth: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Resize an RGB image and its aligned depth map to ``size`` (H, W).

    Args:
        image: uint8 (h, w, 3).
        depth: float32 or float64 (h, w) metres, 0 = no measurement.

    Returns:
        uint8 (H, W, 3) image (INTER_AREA shrinking, INTER_CUBIC enlarging) and (H, W) depth
        (nearest pixel centre, never blurred) in the input's float dtype.
    """
    if image.shape[:2] == tuple(size):
        return image, depth
    shrink = size[0] <= image.shape[0] and size[1] <= image.shape[1]
    interp = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    dsize = (size[1], size[0])
    return (
        cv2.resize(image, dsize, interpolation=interp),
        cv2.resize(depth, dsize, interpolation=cv2.INTER_NEAREST_EXACT),
    )


def convert_frame(
    raw_depth: np.ndarray, rgb: np.ndarray, size: tuple[int, int], fill: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """One raw frame -> stored image and depth.

    ``project_depth`` (depth aligned to the undistorted RGB), optionally ``fill_depth``
    (colorization in-painting with the RGB scaled to [0, 1], as the toolbox documents; a frame
    without any valid depth is left empty), then :func:`resize_frame`.

    Args:
        raw_depth: uint16 (480, 640) raw Kinect values; rgb: uint8 (480, 640, 3) distorted RGB.

    Returns:
        uint8 (H, W, 3) undistorted RGB and float64 (H, W) depth in metres (0 = none).
    """
    depth, rgb_undistorted = nyutools.project_depth(raw_depth, rgb)
    if fill and ((depth > 0) & (depth < camera.MAX_DEPTH)).any():
        depth = np.clip(nyutools.fill_depth(rgb_undistorted / 255.0, depth), 0, camera.MAX_DEPTH)
    return resize_frame(rgb_undistorted, depth, size)


@dataclass(frozen=True, eq=False)
class NyuRawBlocks:
    """Block function of a raw store (picklable, for dask.distributed workers).

    Attributes:
        scenes: the scene of each sequence index.
        sequence: int32 (N,); ``depth`` / ``rgb``: file names per row (inside its scene).
        frame: int32 (N,) synced index; ``timestamp`` float64 (N,); ``accel`` float32 (N, 4).
        size: stored (H, W); ``fill``: in-paint the depth before resizing.
    """

    scenes: tuple[SceneSource, ...]
    sequence: np.ndarray
    frame: np.ndarray
    depth: tuple[str, ...]
    rgb: tuple[str, ...]
    timestamp: np.ndarray
    accel: np.ndarray
    size: tuple[int, int]
    fill: bool = False

    def read(self, scene: nyutools.Scene, row: int) -> tuple[np.ndarray, np.ndarray]:
        """Raw depth uint16 (480, 640) and distorted RGB uint8 (480, 640, 3) of frame ``row``."""
        return scene.read_depth(self.depth[row]), scene.read_rgb(self.rgb[row])

    def __call__(self, block: int, rows: slice) -> dict[str, np.ndarray]:
        """Arrays of frame rows ``rows``: image, depth, intrinsics, baseline, sequence, frame,
        timestamp, accel (V = 1)."""
        n = rows.stop - rows.start
        h, w = self.size
        image = np.empty((n, 1, h, w, 3), dtype=np.uint8)
        depth = np.empty((n, 1, h, w), dtype=np.float16)
        opened: dict[int, nyutools.Scene] = {}  # one zip handle per scene and block
        try:
            for i, row in enumerate(range(rows.start, rows.stop)):
                seq = int(self.sequence[row])
                if seq not in opened:
                    opened[seq] = self.scenes[seq].open()
                raw, rgb = self.read(opened[seq], row)
                image[i, 0], depth[i, 0] = convert_frame(raw, rgb, self.size, self.fill)
        finally:
            for scene in opened.values():
                scene.close()
        k = nyu_intrinsics(self.size).astype(np.float32)
        return {
            "image": image,
            "depth": depth,
            "intrinsics": np.broadcast_to(k, (n, 1, 3, 3)),
            "baseline": np.zeros(n, dtype=np.float32),
            "sequence": self.sequence[rows],
            "frame_in_sequence": self.frame[rows],
            "timestamp": self.timestamp[rows],
            "accel": self.accel[rows],
        }


@dataclass(frozen=True, eq=False)
class NyuLabeledBlocks:
    """Block function of a labeled store: frames ``indices`` of ``nyu_depth_v2_labeled.mat``.

    Attributes:
        labeled: the opened set (h5py; reopened after pickling).
        indices: int (N,) 0-based rows of the ``.mat``, in store order.
        sequence: int32 (N,); ``timestamp`` float64 (N,); ``accel`` float32 (N, 4).
    """

    labeled: nyutools.LabeledSet
    indices: np.ndarray
    sequence: np.ndarray
    timestamp: np.ndarray
    accel: np.ndarray

    def __call__(self, block: int, rows: slice) -> dict[str, np.ndarray]:
        """image (480x640), depth (= ``rawDepths``, float16), gt_depth (= in-painted
        ``depths``), gt_size, intrinsics (``K_RGB``), baseline, sequence, frame, timestamp,
        accel."""
        n = rows.stop - rows.start
        image = np.empty((n, 1, *NATIVE, 3), dtype=np.uint8)
        depth = np.empty((n, 1, *NATIVE), dtype=np.float16)
        gt = np.empty((n, *NATIVE), dtype=np.float32)
        for i, row in enumerate(range(rows.start, rows.stop)):
            k = int(self.indices[row])
            image[i, 0] = self.labeled.image(k)
            depth[i, 0] = self.labeled.raw_depth(k)
            gt[i] = self.labeled.depth(k)
        k_rgb = camera.K_RGB.astype(np.float32)
        return {
            "image": image,
            "depth": depth,
            "gt_depth": gt,
            "gt_size": np.tile(np.array(NATIVE, dtype=np.int32), (n, 1)),
            "intrinsics": np.broadcast_to(k_rgb, (n, 1, 3, 3)),
            "baseline": np.zeros(n, dtype=np.float32),
            "sequence": self.sequence[rows],
            "frame_in_sequence": self.indices[rows].astype(np.int32),
            "timestamp": self.timestamp[rows],
            "accel": self.accel[rows],
        }
