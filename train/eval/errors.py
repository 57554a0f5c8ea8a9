"""Per-image depth errors and their averages: the pieces every protocol of
:mod:`train.eval.metrics` shares (numpy only)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

METRIC_NAMES = ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10", "a1", "a2", "a3")


def compute_errors(gt: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Depth errors over matching 1-D (or any equal-shape) arrays of positive depths.

    ``abs_rel = mean(|gt-pred|/gt)``, ``sq_rel = mean((gt-pred)^2/gt)``,
    ``rmse = sqrt(mean((gt-pred)^2))``, ``rmse_log = sqrt(mean((ln gt - ln pred)^2))``,
    ``log10 = mean(|log10 gt - log10 pred|)``, ``a_k = mean(max(gt/pred, pred/gt) < 1.25^k)``.
    Computed in the inputs' dtype (float32 for KITTI, as the reference does).

    Returns:
        the metrics keyed by :data:`METRIC_NAMES`, as Python floats.
    """
    if gt.shape != pred.shape:
        raise ValueError(f"gt and pred shapes differ: {gt.shape} vs {pred.shape}")
    if gt.size == 0:
        raise ValueError("no valid pixels to evaluate")
    thresh = np.maximum(gt / pred, pred / gt)
    diff = gt - pred
    return {
        "abs_rel": float(np.mean(np.abs(diff) / gt)),
        "sq_rel": float(np.mean(diff**2 / gt)),
        "rmse": float(np.sqrt(np.mean(diff**2))),
        "rmse_log": float(np.sqrt(np.mean((np.log(gt) - np.log(pred)) ** 2))),
        "log10": float(np.mean(np.abs(np.log10(gt) - np.log10(pred)))),
        "a1": float(np.mean(thresh < 1.25)),
        "a2": float(np.mean(thresh < 1.25**2)),
        "a3": float(np.mean(thresh < 1.25**3)),
    }


def mean_metrics(per_image: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Unweighted mean over images of each metric (keys of the first image)."""
    if not per_image:
        raise ValueError("no images to average")
    return {name: float(np.mean([m[name] for m in per_image])) for name in per_image[0]}


@dataclass
class ImageErrors:
    """One image under a protocol: where it was scored and how well.

    Attributes:
        mask: bool map of the scored pixels, at ground-truth resolution (after the protocol's
            crop for NYU).
        gt: ground-truth depth at ``mask`` (metres).
        pred: predicted depth at ``mask``, scaled and clipped as the protocol scores it.
        metrics: :func:`compute_errors` of ``gt`` and ``pred``.
        ratio: the median-scaling ratio, None under a fixed scale.
    """

    mask: np.ndarray
    gt: np.ndarray
    pred: np.ndarray
    metrics: dict[str, float]
    ratio: float | None = None


def summarise(errors: Iterable[ImageErrors]) -> dict[str, float]:
    """Unweighted mean over images of each metric, plus the ratio statistics when median
    scaling was used (what :func:`eigen_metrics` and :func:`nyu_metrics` return). Reads each
    image once (a generator keeps one image's pixels in memory at a time)."""
    per_image: list[dict[str, float]] = []
    ratios: list[float] = []
    for e in errors:
        per_image.append(e.metrics)
        if e.ratio is not None:
            ratios.append(e.ratio)
    return mean_metrics(per_image) | ratio_stats(ratios)


def ratio_stats(ratios: list[float]) -> dict[str, float]:
    """monodepth2's printout: median of the scaling ratios and std of ratio / median."""
    if not ratios:
        return {}
    values = np.asarray(ratios, dtype=np.float64)
    median = float(np.median(values))
    return {"ratio_median": median, "ratio_std": float(np.std(values / median))}
