"""PNG pictures of predictions: input image, predicted disparity, ground truth (magma), and
side-by-side rows of several predictions against the truth."""

from __future__ import annotations

from collections.abc import Sequence
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


def side_by_side(
    image: np.ndarray,
    depths: Sequence[np.ndarray],
    truth: np.ndarray,
    labels: Sequence[str],
    radius: int = 0,
    zoom: int = 2,
) -> np.ndarray:
    """One row: the input, each predicted depth map, the true depth, captioned.

    Depth maps are drawn as inverse depth in the truth's colour range (magma; darkest = the
    truth's smallest inverse depth, brightest = its 95th percentile), so a prediction's colours
    read against the truth's: pass predictions scaled as the protocol scores them (median
    ratio or fixed factor), and a wrong scale shows as a wrong brightness.

    Args:
        image: uint8 ``(h, w, 3)`` RGB network input.
        depths: float ``(h, w)`` predicted depth maps, metres.
        truth: float ``(Ht, Wt)`` true depth, metres, 0 = none; dense or sparse (``radius``:
            grow each point to a ``2 * radius + 1`` square first, as for velodyne points).
        labels: one caption per panel: input, each depth, truth.
        zoom: every panel is enlarged ``zoom`` times (nearest neighbour).

    Returns:
        uint8 ``(zoom * (h + 10), (2 + len(depths)) * zoom * w, 3)`` RGB (a 10-pixel caption bar).
    """
    h, w = image.shape[:2]
    if len(labels) != len(depths) + 2:
        raise ValueError(f"{len(depths) + 2} panels but {len(labels)} labels")
    inv_truth = np.where(truth > 0, 1.0 / np.maximum(truth, 1e-6), 0.0).astype(np.float32)
    if radius > 0:
        inv_truth = cv2.dilate(inv_truth, np.ones((2 * radius + 1, 2 * radius + 1), np.uint8))
    inv_truth = cv2.resize(inv_truth, (w, h), interpolation=cv2.INTER_NEAREST)
    valid = inv_truth > 0
    vmin = float(inv_truth[valid].min()) if valid.any() else 0.0
    vmax = float(np.percentile(inv_truth[valid], 95)) if valid.any() else 1.0
    inverse = [1.0 / np.maximum(np.asarray(d, np.float32), 1e-6) for d in depths]
    panels = [image, *(colorize(v, vmin=vmin, vmax=vmax) for v in inverse)]
    panels.append(colorize(inv_truth, valid=valid, vmin=vmin, vmax=vmax))
    rows = [_captioned(p, text, zoom) for p, text in zip(panels, labels, strict=True)]
    return np.concatenate(rows, 1)


def _captioned(panel: np.ndarray, text: str, zoom: int) -> np.ndarray:
    """``panel`` enlarged ``zoom`` times under a black bar with ``text`` in white."""
    big = cv2.resize(panel, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
    bar = np.zeros((10 * zoom, big.shape[1], 3), np.uint8)
    cv2.putText(bar, text, (3, 8 * zoom), cv2.FONT_HERSHEY_SIMPLEX, 0.3 * zoom, (255,) * 3, 1,
                cv2.LINE_AA)  # fmt: skip
    return np.concatenate([bar, big], 0)
