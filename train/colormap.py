"""Perceptual colour maps for depth pictures (OpenCV's magma, no matplotlib needed): used by the
run log, the evaluation pictures and reports, and `predict`."""

from __future__ import annotations

import cv2
import numpy as np


def colorize(
    values: np.ndarray,
    valid: np.ndarray | None = None,
    vmax: float | None = None,
    vmin: float | None = None,
) -> np.ndarray:
    """Magma picture of a map (bright = large), e.g. a disparity or inverse depth.

    Args:
        values: float ``(H, W)``.
        valid: bool ``(H, W)``; invalid pixels are black. Default: finite and > 0.
        vmax: value shown brightest; default the 95th percentile of the valid values (the
            monodepth2 convention for disparity pictures).
        vmin: value shown darkest; default the smallest valid value. Fixed ``vmin`` and ``vmax``
            make pictures of several maps (video frames) comparable.

    Returns:
        uint8 ``(H, W, 3)`` RGB.
    """
    values = np.asarray(values, dtype=np.float32)
    if valid is None:
        valid = np.isfinite(values) & (values > 0)
    if vmax is None:
        vmax = float(np.percentile(values[valid], 95)) if valid.any() else 1.0
    if vmin is None:
        vmin = float(values[valid].min()) if valid.any() else 0.0
    scaled = np.clip((values - vmin) / max(vmax - vmin, 1e-12), 0, 1)
    grey = np.where(valid, scaled * 255, 0).astype(np.uint8)
    rgb = cv2.applyColorMap(grey, cv2.COLORMAP_MAGMA)[:, :, ::-1]
    return np.where(valid[..., None], rgb, 0).astype(np.uint8)


def sparse_depth_picture(
    depth: np.ndarray,
    size: tuple[int, int],
    radius: int = 1,
    depth_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Magma picture of a (sparse) metric depth map as inverse depth, resized to ``size`` (H, W).

    Each measured point is grown to a ``2 * radius + 1`` square first (grey dilation of the
    inverse depth) so that velodyne points stay visible after shrinking. ``depth_range``
    ``(near, far)`` fixes the colours (near brightest), e.g. to match a prediction's picture.
    """
    inv = np.where(depth > 0, 1.0 / np.maximum(depth, 1e-6), 0.0).astype(np.float32)
    if radius > 0:
        inv = cv2.dilate(inv, np.ones((2 * radius + 1, 2 * radius + 1), np.uint8))
    inv = cv2.resize(inv, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
    if depth_range is None:
        return colorize(inv, valid=inv > 0)
    near, far = depth_range
    return colorize(inv, valid=inv > 0, vmin=1.0 / far, vmax=1.0 / near)
