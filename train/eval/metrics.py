"""Depth evaluation protocols as plain numpy functions (no torch at import).

KITTI: monodepth2 ``evaluate_depth.py`` (spec kitti.md section 10): Eigen split with the Garg crop,
or the improved ground truth of ``eigen_benchmark``. NYU Depth V2: the self-supervised protocol of
P2Net / StructDepth (spec nyuv2.md sections 7.2 and 7.5). Depths are metres; disparities are the
network's "scaled" sigmoid disparities.

NYU supervised metrics (nyuv2.md section 7.3, training.md section 8): :func:`pooled_errors`
(DenseDepth's ``compute_errors`` over all pixels at once), :func:`edge_f1` (Hu et al.'s Sobel
edge F1) and :func:`mssim` (Gaussian SSIM of the depth maps; needs scikit-image).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np

from pipelines.store.constants import NYU_EVAL_CROP
from train.constants import (  # noqa: F401 - re-exported: the evaluation constants
    KITTI_MAX_DEPTH,
    KITTI_MIN_DEPTH,
    KITTI_STEREO_BASELINE,
    NYU_MAX_DEPTH,
    NYU_MIN_DEPTH,
    STEREO_SCALE_FACTOR,
)
from train.eval.errors import (  # noqa: F401 - compute_errors, mean_metrics: part of this API
    METRIC_NAMES,
    ImageErrors,
    compute_errors,
    mean_metrics,
    summarise,
)

# Printing order: all metrics we compute, and the order KITTI tables use.
EIGEN_METRIC_NAMES = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")

KITTI_PROTOCOLS = ("eigen", "eigen_benchmark")

NYU_CROP = NYU_EVAL_CROP  # rows [44, 471), cols [40, 601) on 480x640


def garg_crop_mask(h: int, w: int) -> np.ndarray:
    """Bool (h, w) mask of the Garg crop: rows ``[int(0.40810811 h), int(0.99189189 h))``,
    cols ``[int(0.03594771 w), int(0.96405229 w))`` (rows 153..370, cols 44..1196 at 375x1242)."""
    top, bottom, left, right = np.array(
        [0.40810811 * h, 0.99189189 * h, 0.03594771 * w, 0.96405229 * w]
    ).astype(np.int32)
    mask = np.zeros((h, w), dtype=bool)
    mask[top:bottom, left:right] = True
    return mask


def post_process_disparity(disp: np.ndarray, disp_flipped_back: np.ndarray) -> np.ndarray:
    """monodepth2 flip post-processing of (..., h, w) disparities.

    ``disp_flipped_back`` is the prediction on the mirrored image, mirrored back. With
    ``l = linspace(0, 1, w)``, ``m_l = 1 - clip(20 (l - 0.05), 0, 1)`` and ``m_r`` = ``m_l``
    mirrored, returns ``m_r * disp + m_l * flipped + (1 - m_l - m_r) * (disp + flipped) / 2``
    (float64 masks, as the reference; the borders come from the view that saw them).
    """
    if disp.shape != disp_flipped_back.shape:
        raise ValueError(f"shapes differ: {disp.shape} vs {disp_flipped_back.shape}")
    ramp = np.linspace(0, 1, disp.shape[-1])
    left_mask = 1.0 - np.clip(20 * (ramp - 0.05), 0, 1)
    right_mask = left_mask[::-1]
    mean = 0.5 * (disp + disp_flipped_back)
    return right_mask * disp + left_mask * disp_flipped_back + (1.0 - left_mask - right_mask) * mean


def eigen_metrics(
    gt_depths: Sequence[np.ndarray],
    pred_disps: np.ndarray | Sequence[np.ndarray],
    stereo: bool,
    protocol: str = "eigen",
    stereo_scale: float = STEREO_SCALE_FACTOR,
) -> dict[str, float]:
    """KITTI depth metrics of network disparities (monodepth2 ``evaluate_depth.py``).

    Per image: ``cv2.resize`` (bilinear) the disparity to the GT's (W, H), depth = 1 / disp; mask
    ``1e-3 < gt < 80`` inside the Garg crop (``protocol="eigen"``) or ``gt > 0`` only
    (``"eigen_benchmark"``); stereo: depth x ``stereo_scale``, mono: per-image median scaling
    ``median(gt) / median(pred)``; clamp to [1e-3, 80]; metrics; unweighted mean over images.

    Args:
        gt_depths: N float32 (H_i, W_i) ground-truth maps, metres, 0 = no measurement.
        pred_disps: (N, h, w) disparities at network resolution (float32 mirrors the reference).
        stereo: scale by ``stereo_scale`` instead of median scaling.
        protocol: ``"eigen"`` or ``"eigen_benchmark"``.
        stereo_scale: 5.4 for monodepth2, 36 for FeatDepth.

    Returns:
        the mean of each of :data:`METRIC_NAMES`, plus ``ratio_median`` and ``ratio_std`` (std of
        ratio / median) when median scaling was used.
    """
    if protocol not in KITTI_PROTOCOLS:
        raise ValueError(f"protocol must be one of {KITTI_PROTOCOLS}, got {protocol!r}")
    if len(gt_depths) != len(pred_disps):
        raise ValueError(f"{len(gt_depths)} ground-truth maps but {len(pred_disps)} predictions")
    errors = (
        eigen_image_errors(gt, disp, stereo, protocol, stereo_scale, index)
        for index, (gt, disp) in enumerate(zip(gt_depths, pred_disps, strict=True))
    )
    return summarise(errors)


def eigen_image_errors(
    gt_depth: np.ndarray,
    pred_disp: np.ndarray,
    stereo: bool,
    protocol: str = "eigen",
    stereo_scale: float = STEREO_SCALE_FACTOR,
    index: int = 0,
) -> ImageErrors:
    """One image of :func:`eigen_metrics` (``index`` only names it in errors)."""
    gt_height, gt_width = gt_depth.shape[:2]
    pred_depth = 1 / cv2.resize(np.asarray(pred_disp), (gt_width, gt_height))
    if protocol == "eigen":
        mask = (gt_depth > KITTI_MIN_DEPTH) & (gt_depth < KITTI_MAX_DEPTH)
        mask &= garg_crop_mask(gt_height, gt_width)
    else:
        mask = gt_depth > 0
    gt = gt_depth[mask]
    pred = pred_depth[mask]
    if gt.size == 0:
        raise ValueError(f"image {index}: no valid ground-truth pixels under {protocol!r}")
    ratio = None
    if stereo:
        pred *= stereo_scale
    else:
        ratio = np.median(gt) / np.median(pred)
        pred *= ratio
        ratio = float(ratio)
    np.clip(pred, KITTI_MIN_DEPTH, KITTI_MAX_DEPTH, out=pred)
    return ImageErrors(mask, gt, pred, compute_errors(gt, pred), ratio)


def _stack(images: np.ndarray | Sequence[np.ndarray], what: str) -> np.ndarray:
    array = np.asarray(images)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(f"{what} must be (N, H, W) or (H, W), got shape {array.shape}")
    return array


def nyu_metrics(
    gt_depths: np.ndarray | Sequence[np.ndarray],
    pred_depths: np.ndarray | Sequence[np.ndarray],
    median_scaling: bool,
    crop: tuple[int, int, int, int] | None = NYU_CROP,
    min_depth: float = NYU_MIN_DEPTH,
    max_depth: float = NYU_MAX_DEPTH,
) -> dict[str, float]:
    """NYU Depth V2 metrics, P2Net / StructDepth protocol (spec nyuv2.md 7.5), in float64.

    Per image: crop ``[top:bottom, left:right]`` (default 44:471, 40:601), valid = ``gt > 0``,
    optional median scaling ``median(gt) / median(pred)`` over valid pixels, clip the prediction
    to ``[min_depth, max_depth]``, metrics; unweighted mean over images.

    Args:
        gt_depths: (N, 480, 640) ground-truth depth, metres, 0 = invalid.
        pred_depths: (N, 480, 640) predicted depth in metres (cropped here like the GT), or
            already crop-sized (N, bottom - top, right - left).
        median_scaling: apply per-image median scaling.
        crop: ``(top, bottom, left, right)`` half-open, or None for the whole image.

    Returns:
        the mean of each of :data:`METRIC_NAMES`, plus ``ratio_median`` / ``ratio_std`` when
        median scaling was used.
    """
    gt_all = _stack(gt_depths, "gt_depths").astype(np.float64, copy=False)
    pred_all = _stack(pred_depths, "pred_depths").astype(np.float64, copy=False)
    if len(gt_all) != len(pred_all):
        raise ValueError(f"{len(gt_all)} ground-truth maps but {len(pred_all)} predictions")
    if crop is not None:
        top, bottom, left, right = crop
        if pred_all.shape[1:] == gt_all.shape[1:]:
            pred_all = pred_all[:, top:bottom, left:right]
        gt_all = gt_all[:, top:bottom, left:right]
    if pred_all.shape[1:] != gt_all.shape[1:]:
        raise ValueError(
            f"prediction size {pred_all.shape[1:]} matches neither the ground truth nor its crop "
            f"{gt_all.shape[1:]}"
        )
    errors = (
        nyu_image_errors(gt_map, pred_map, median_scaling, min_depth, max_depth, index)
        for index, (gt_map, pred_map) in enumerate(zip(gt_all, pred_all, strict=True))
    )
    return summarise(errors)


def nyu_image_errors(
    gt_map: np.ndarray,
    pred_map: np.ndarray,
    median_scaling: bool,
    min_depth: float = NYU_MIN_DEPTH,
    max_depth: float = NYU_MAX_DEPTH,
    index: int = 0,
) -> ImageErrors:
    """One already-cropped image of :func:`nyu_metrics` (float64; ``index`` names it)."""
    mask = gt_map > 0
    gt = gt_map[mask]
    pred = pred_map[mask]
    if gt.size == 0:
        raise ValueError(f"image {index}: no valid ground-truth pixels")
    ratio = None
    if median_scaling:
        ratio = float(np.median(gt) / np.median(pred))
        pred = pred * ratio
    pred = np.clip(pred, min_depth, max_depth)
    return ImageErrors(mask, gt, pred, compute_errors(gt, pred), ratio)


def format_metrics(metrics: Mapping[str, float], names: Sequence[str] = EIGEN_METRIC_NAMES) -> str:
    """Two-line table (names, then values with 3 decimals) in the given metric order."""
    header = " | ".join(f"{name:>8}" for name in names)
    values = " | ".join(f"{metrics[name]:8.3f}" for name in names)
    return f"{header}\n{values}"


# NYU supervised metrics: DenseDepth pooled errors, edge F1, mSSIM.

#: Sobel kernels of Hu et al.'s ``sobel.py`` (applied as a cross-correlation).
_SOBEL_X = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=np.float32)
_SOBEL_Y = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], dtype=np.float32)


def pooled_errors(gt: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """DenseDepth's ``compute_errors(gt, pred)`` over every pixel of the stack, pooled.

    The arrays are flattened and upcast to float64; select the valid pixels (e.g.
    ``gt[gt > 0]``) before calling. Unlike DenseDepth's own ``evaluate()`` (which passes the
    prediction first, so its abs_rel divides by the prediction), the ground truth comes first.

    Args:
        gt: ground-truth depth in metres, any shape, all > 0.
        pred: predicted depth in metres, the shape of ``gt``, all > 0.

    Returns:
        ``a1, a2, a3`` (fraction of pixels with ``max(gt/pred, pred/gt) < 1.25**k``),
        ``abs_rel`` (``mean|gt - pred| / gt``), ``rmse`` (metres) and ``log10``
        (``mean|log10 gt - log10 pred|``).
    """
    gt = np.asarray(gt, dtype=np.float64).ravel()
    pred = np.asarray(pred, dtype=np.float64).ravel()
    if gt.shape != pred.shape:
        raise ValueError(f"gt and pred differ in size: {gt.size} and {pred.size} pixels")
    if gt.size == 0:
        raise ValueError("no pixels to evaluate")
    thresh = np.maximum(gt / pred, pred / gt)
    return {
        "a1": float((thresh < 1.25).mean()),
        "a2": float((thresh < 1.25**2).mean()),
        "a3": float((thresh < 1.25**3).mean()),
        "abs_rel": float(np.mean(np.abs(gt - pred) / gt)),
        "rmse": float(np.sqrt(np.mean((gt - pred) ** 2))),
        "log10": float(np.mean(np.abs(np.log10(gt) - np.log10(pred)))),
    }


def _check_maps(pred: np.ndarray, gt: np.ndarray) -> None:
    if pred.shape != gt.shape or pred.ndim not in (2, 3):
        raise ValueError(
            f"need (H, W) or (N, H, W) maps of one shape, got {pred.shape}, {gt.shape}"
        )


def _correlate3x3(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """3x3 cross-correlation with zero padding, in float32 (the reference's conv2d)."""
    h, w = image.shape
    padded = np.pad(image, 1)
    out = np.zeros((h, w), dtype=np.float32)
    for i in range(3):
        for j in range(3):
            if kernel[i, j] != 0:
                out += kernel[i, j] * padded[i : i + h, j : j + w]
    return out


def _sobel_magnitude(depth: np.ndarray) -> np.ndarray:
    """``sqrt(gx² + gy²)`` of Hu et al.'s Sobel filter, float32 ``(H, W)``."""
    depth = np.asarray(depth, dtype=np.float32)
    gx = _correlate3x3(depth, _SOBEL_X)
    gy = _correlate3x3(depth, _SOBEL_Y)
    return np.sqrt(gx * gx + gy * gy)


def _edge_scores(pred: np.ndarray, gt: np.ndarray, threshold: float) -> tuple[float, float, float]:
    """``(F1, P, R)`` of one ``(H, W)`` pair as Hu et al.'s ``test()`` prints them.

    nan where undefined (no edge in a map, or none in common for F1).
    """
    pred_edges = _sobel_magnitude(pred) > threshold
    gt_edges = _sobel_magnitude(gt) > threshold
    both = int(np.count_nonzero(pred_edges & gt_edges))
    n_pred = int(np.count_nonzero(pred_edges))
    n_gt = int(np.count_nonzero(gt_edges))
    precision = both / n_pred if n_pred else float("nan")
    recall = both / n_gt if n_gt else float("nan")
    total = precision + recall
    f1 = 2 * precision * recall / total if total > 0 else float("nan")
    return f1, precision, recall


def _edge_f1_image(pred: np.ndarray, gt: np.ndarray, threshold: float) -> float:
    f1 = _edge_scores(pred, gt, threshold)[0]
    return 0.0 if np.isnan(f1) else f1


def edge_f1(pred: np.ndarray, gt: np.ndarray, threshold: float = 0.25) -> float:
    """Edge F1 of Hu et al. (Revisiting Single Depth Estimation, ``test.py``), per image.

    Edges are where the Sobel gradient magnitude (3x3 kernels, cross-correlation, zero
    padding, computed in float32 as the reference) of the metric depth exceeds ``threshold``;
    the zero padding makes the image border an edge wherever the depth is large enough.
    ``P = |pred & gt| / |pred|``, ``R = |pred & gt| / |gt|``, ``F1 = 2PR / (P + R)``, and 0
    where that is undefined (no common edge, or no edge in one of the maps).

    Args:
        pred: predicted depth in metres, ``(H, W)`` or ``(N, H, W)`` (resized to the GT size).
        gt: ground-truth depth in metres, the shape of ``pred``.
        threshold: edge threshold on the gradient magnitude (metres per pixel, x4 of the
            central difference: Hu et al. use 0.25, 0.5 and 1).

    Returns:
        F1 in [0, 1]; for a stack, the mean over images of the per-image F1 (Hu et al.
        evaluate one image per batch and average over images).
    """
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    _check_maps(pred, gt)
    if pred.ndim == 2:
        return _edge_f1_image(pred, gt, threshold)
    return float(np.mean([_edge_f1_image(p, g, threshold) for p, g in zip(pred, gt, strict=True)]))


def mssim(pred: np.ndarray, gt: np.ndarray, data_range: float = 10.0) -> float:
    """Mean over images of the SSIM of predicted against true depth.

    scikit-image's ``structural_similarity(gt, pred)`` on float64 images with an 11x11
    Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, population covariance and a fixed
    ``data_range``; per image the mean of the SSIM map.

    Args:
        pred: predicted depth in metres, ``(H, W)`` or ``(N, H, W)``, each side >= 11 pixels.
        gt: ground-truth depth in metres, the shape of ``pred``.
        data_range: the dynamic range of depth in metres (10 for NYU).

    Returns:
        mSSIM in [-1, 1] (1 for identical maps).
    """
    from skimage.metrics import structural_similarity  # optional dependency, loaded on use

    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    _check_maps(pred, gt)
    if pred.ndim == 2:
        pred, gt = pred[None], gt[None]
    values = [
        structural_similarity(
            g,
            p,
            data_range=data_range,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
        for p, g in zip(pred, gt, strict=True)
    ]
    return float(np.mean(values))
