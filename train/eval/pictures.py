"""PNG pictures of predictions: input image, predicted disparity, ground truth (magma)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from train.colormap import colorize, sparse_depth_picture


def prediction_panel(
    image: np.ndarray, disp: np.ndarray, gt_depth: np.ndarray | None = None
) -> np.ndarray:
    """Image over predicted disparity (over ground-truth inverse depth when given).

    Args:
        image: uint8 ``(h, w, 3)`` RGB network input.
        disp: float ``(h, w)`` disparity (any positive scale).
        gt_depth: float ``(Hg, Wg)`` metric depth, 0 = none (e.g. velodyne points).

    Returns:
        uint8 ``(2h or 3h, w, 3)`` RGB.
    """
    h, w = image.shape[:2]
    rows = [image, colorize(disp)]
    if gt_depth is not None:
        rows.append(sparse_depth_picture(gt_depth, (h, w), radius=max(1, gt_depth.shape[1] // w)))
    return np.concatenate(rows, axis=0)


def write_prediction_pictures(
    folder: str | Path,
    images: np.ndarray,
    disps: np.ndarray,
    gt_depths: list[np.ndarray] | None = None,
    max_images: int = 8,
    prefix: str = "",
) -> list[str]:
    """Write ``prediction_panel`` PNGs ``<prefix>NNNN.png`` for the first ``max_images`` samples.

    Returns the written paths.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for i in range(min(max_images, len(disps))):
        gt = gt_depths[i] if gt_depths else None
        panel = prediction_panel(images[i], disps[i], gt)
        path = folder / f"{prefix}{i:04d}.png"
        cv2.imwrite(str(path), panel[:, :, ::-1])
        written.append(str(path))
    return written
