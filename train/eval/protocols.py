"""Evaluation protocols: which one a test store gets (:func:`select_protocol`), the NYU image
crop, and per-image errors of network-resolution depths (:func:`protocol_errors`), which
:func:`protocol_metrics` averages (or pools). See :mod:`train.eval.evaluate` for the KITTI and
self-supervised NYU protocols.

``densedepth`` (NYU store with ground truth, metric models with a fixed scale: the supervised
protocol of DenseDepth's ``evaluate.py``, nyuv2.md 7.3): the whole image goes to the network, the
prediction is averaged with the mirrored prediction of the mirrored image (in
:func:`train.eval.evaluate.predict_depths`), upsampled to the ground truth's 480x640 (bilinear,
scikit-image's ``resize`` with reflect borders, as the reference), cropped to DenseDepth's Eigen
crop (rows 20..459, cols 24..615 inclusive), no median scaling, clipped to 0.1..10 m, and the
metrics pooled over all pixels of all images (gt > 0: every pixel of the in-painted labeled
depth). Ground truth comes first (DenseDepth's own evaluation swaps the two, which divides
abs_rel by the prediction).

Both NYU protocols (``nyu`` and ``densedepth``) add ``mssim`` (mean per-image SSIM of the depth
maps, data range 10 m) and the edge F1 of Hu et al. at each of ``edge_thresholds`` (``f1@0.25``,
``f1@0.5``, ``f1@1``), on the cropped maps after scaling and clipping.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from pipelines.store import Store
from pipelines.store.constants import NYU_SIZE
from train.eval.errors import ratio_stats
from train.eval.metrics import (
    EIGEN_METRIC_NAMES,
    METRIC_NAMES,
    NYU_CROP,
    NYU_MAX_DEPTH,
    NYU_MIN_DEPTH,
    STEREO_SCALE_FACTOR,
    ImageErrors,
    compute_errors,
    edge_f1,
    eigen_image_errors,
    mssim,
    nyu_image_errors,
    summarise,
)
from train.methods import Scaling

SCALINGS = ("auto", "median", "stereo")
KITTI_PROTOCOLS = ("eigen", "eigen_benchmark")
NYU_PROTOCOLS = ("nyu", "densedepth")
PROTOCOLS = ("auto", *KITTI_PROTOCOLS, *NYU_PROTOCOLS)
EDGE_THRESHOLDS = (0.25, 0.5, 1.0)
DENSEDEPTH_CROP = (20, 460, 24, 616)
"""DenseDepth's ``eigen_test_crop.npy`` = [20, 459, 24, 615] (inclusive) as half-open
(top, bottom, left, right) on 480x640."""
MSSIM_DATA_RANGE = 10.0


def parse_thresholds(text: str) -> tuple[float, ...]:
    """``"0.25,0.5,1"`` -> ``(0.25, 0.5, 1.0)``; ValueError naming the text otherwise."""
    try:
        values = tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise ValueError(
            f"edge thresholds: expected numbers like 0.25,0.5,1, got {text!r}"
        ) from None
    if not values or min(values) <= 0:
        raise ValueError(f"edge thresholds must be positive numbers, got {text!r}")
    return values


def edge_key(threshold: float) -> str:
    """Metric name of the edge F1 at ``threshold``: ``f1@0.25``."""
    return f"f1@{threshold:g}"


@dataclass(frozen=True)
class Protocol:
    """``name``: one of :data:`PROTOCOLS` (not auto); ``scaling``: median or a fixed factor;
    ``edge_thresholds``: the edge F1 thresholds (NYU protocols)."""

    name: str
    scaling: Scaling
    edge_thresholds: tuple[float, ...] = EDGE_THRESHOLDS

    @property
    def is_nyu(self) -> bool:
        return self.name in NYU_PROTOCOLS

    @property
    def flip_average(self) -> bool:
        """Average with the mirrored prediction of the mirrored image (DenseDepth)."""
        return self.name == "densedepth"

    @property
    def metric_names(self) -> tuple[str, ...]:
        if not self.is_nyu:  # monodepth2's seven columns, then log10 (computed as well)
            return (*EIGEN_METRIC_NAMES, "log10")
        return (*METRIC_NAMES, "mssim", *(edge_key(t) for t in self.edge_thresholds))

    def gt_crop(self, gt_size: tuple[int, int]) -> tuple[int, int, int, int] | None:
        """(top, bottom, left, right) of the ground truth this protocol scores, or None (KITTI:
        whole maps, the Garg crop being part of the mask)."""
        if self.name == "nyu":
            return NYU_CROP
        if self.name == "densedepth":
            return scaled_crop(DENSEDEPTH_CROP, gt_size)
        return None


def select_protocol(
    store: Store,
    scaling: Scaling,
    override: str = "auto",
    protocol: str = "auto",
    edge_thresholds: Sequence[float] = EDGE_THRESHOLDS,
) -> Protocol:
    """The protocol that fits ``store``, with the model's ``scaling`` (or ``override``:
    ``"median"``, or ``"stereo"`` = fixed x5.4).

    NYU stores with ground truth: ``protocol="auto"`` gives ``nyu`` to median-scaled
    (self-supervised) models and ``densedepth`` to models with a fixed scale (metric,
    supervised). KITTI stores: the store's ``ground_truth.protocol`` attribute (default
    ``eigen``). ``protocol`` names one explicitly (it must fit the store's dataset).

    Raises:
        ValueError: the store has no ground truth; unknown ``override`` or ``protocol``; a
            protocol of another dataset; edge thresholds that are not positive.
    """
    if override not in SCALINGS:
        raise ValueError(f"scaling must be one of {SCALINGS}, not {override!r}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, not {protocol!r}")
    if override == "median":
        scaling = Scaling()
    elif override == "stereo" and scaling.median:  # a fixed-scale model keeps its own factor
        scaling = Scaling(median=False, factor=STEREO_SCALE_FACTOR)
    thresholds = tuple(float(t) for t in edge_thresholds)
    if not thresholds or min(thresholds) <= 0:
        raise ValueError(f"edge thresholds must be positive, got {list(edge_thresholds)}")
    if store.dataset == "nyu-labeled" or (
        store.dataset.startswith("nyu") and store.has("gt_depth")
    ):
        if protocol == "auto":
            protocol = "nyu" if scaling.median else "densedepth"
        if protocol not in NYU_PROTOCOLS:
            raise ValueError(f"{store.path}: protocol {protocol!r} is for KITTI stores")
        return Protocol(protocol, scaling, thresholds)
    if not store.has("gt_depth"):
        raise ValueError(f"{store.path}: store has no gt_depth array, nothing to evaluate against")
    if protocol in NYU_PROTOCOLS:
        raise ValueError(f"{store.path}: protocol {protocol!r} is for NYU stores")
    name = str(store.attrs.get("ground_truth", {}).get("protocol", "eigen"))
    if protocol != "auto":
        name = protocol
    if name not in KITTI_PROTOCOLS:
        raise ValueError(f"{store.path}: unknown ground-truth protocol {name!r}")
    return Protocol(name, scaling, thresholds)


def scaled_crop(
    crop: tuple[int, int, int, int], size: tuple[int, int]
) -> tuple[int, int, int, int]:
    """A crop given on 480x640, scaled to an image of ``size`` (identity at 480x640)."""
    sy, sx = size[0] / NYU_SIZE[0], size[1] / NYU_SIZE[1]
    top, bottom, left, right = crop
    return round(top * sy), round(bottom * sy), round(left * sx), round(right * sx)


def nyu_image_crop(image_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The NYU evaluation crop (top, bottom, left, right) scaled to a store of ``image_size``."""
    return scaled_crop(NYU_CROP, image_size)


def upsample_depth(pred: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``pred`` (h, w) -> ``size`` as DenseDepth's ``evaluate``: scikit-image ``resize``, order 1,
    reflect borders, preserving the range (anti-aliased when shrinking), in float64."""
    from skimage.transform import resize  # optional dependency, loaded on use

    pred = np.asarray(pred, dtype=np.float64)
    if pred.shape == tuple(size):
        return pred
    shrink = pred.shape[0] > size[0] or pred.shape[1] > size[1]
    return resize(pred, size, order=1, mode="reflect", anti_aliasing=shrink, preserve_range=True)


def densedepth_image_errors(
    gt_map: np.ndarray, pred_map: np.ndarray, scaling: Scaling, index: int = 0
) -> tuple[ImageErrors, np.ndarray]:
    """One image of the ``densedepth`` protocol (float64): the prediction upsampled to the ground
    truth's size, both cropped to DenseDepth's crop (scaled to that size), scaled (fixed factor or
    per-image median), clipped to 0.1..10 m; valid = gt > 0. Returns the errors and the cropped
    prediction map (scaled and clipped) for mSSIM and edge F1."""
    gt_map = np.asarray(gt_map, dtype=np.float64)
    top, bottom, left, right = scaled_crop(DENSEDEPTH_CROP, gt_map.shape)
    gt_crop = gt_map[top:bottom, left:right]
    pred = upsample_depth(pred_map, gt_map.shape)[top:bottom, left:right]
    mask = gt_crop > 0
    if not mask.any():
        raise ValueError(f"image {index}: no valid ground-truth pixels")
    ratio = None
    if scaling.median:
        ratio = float(np.median(gt_crop[mask]) / np.median(pred[mask]))
        pred = pred * ratio
    else:
        pred = pred * scaling.factor
    pred = np.clip(pred, NYU_MIN_DEPTH, NYU_MAX_DEPTH)
    gt, scored = gt_crop[mask], pred[mask]
    return ImageErrors(mask, gt, scored, compute_errors(gt, scored), ratio), pred


class PooledErrors:
    """The metrics of :data:`METRIC_NAMES` over every pixel given to :meth:`add`, pooled (as
    DenseDepth pools its 654 test images), from float64 running sums: equal to
    :func:`train.eval.metrics.compute_errors` on the concatenated pixels, ground truth first."""

    def __init__(self) -> None:
        self.n = 0
        keys = ("abs_rel", "sq_rel", "sq", "log_sq", "log10", "a1", "a2", "a3")
        self.sums = dict.fromkeys(keys, 0.0)

    def add(self, gt: np.ndarray, pred: np.ndarray) -> None:
        """Add pixels: 1-D (or equal-shape) arrays of positive depths."""
        gt = np.asarray(gt, dtype=np.float64).ravel()
        pred = np.asarray(pred, dtype=np.float64).ravel()
        if gt.shape != pred.shape:
            raise ValueError(f"gt and pred differ in size: {gt.size} and {pred.size} pixels")
        diff = gt - pred
        thresh = np.maximum(gt / pred, pred / gt)
        s = self.sums
        s["abs_rel"] += float(np.sum(np.abs(diff) / gt))
        s["sq_rel"] += float(np.sum(diff**2 / gt))
        s["sq"] += float(np.sum(diff**2))
        s["log_sq"] += float(np.sum((np.log(gt) - np.log(pred)) ** 2))
        s["log10"] += float(np.sum(np.abs(np.log10(gt) - np.log10(pred))))
        for k in (1, 2, 3):
            s[f"a{k}"] += float(np.count_nonzero(thresh < 1.25**k))
        self.n += gt.size

    def result(self) -> dict[str, float]:
        if self.n == 0:
            raise ValueError("no valid pixels to evaluate")
        s, n = self.sums, self.n
        out = {
            "abs_rel": s["abs_rel"] / n,
            "sq_rel": s["sq_rel"] / n,
            "rmse": float(np.sqrt(s["sq"] / n)),
            "rmse_log": float(np.sqrt(s["log_sq"] / n)),
            "log10": s["log10"] / n,
        }
        return out | {f"a{k}": s[f"a{k}"] / n for k in (1, 2, 3)}


class MapMetrics:
    """Mean over images of mSSIM and of the edge F1 at each threshold, per-image maps in metres."""

    def __init__(self, thresholds: Sequence[float]) -> None:
        self.thresholds = tuple(thresholds)
        self.values: dict[str, list[float]] = {"mssim": []}
        self.values |= {edge_key(t): [] for t in self.thresholds}

    def add(self, gt: np.ndarray, pred: np.ndarray) -> None:
        self.values["mssim"].append(mssim(pred, gt, data_range=MSSIM_DATA_RANGE))
        for t in self.thresholds:
            self.values[edge_key(t)].append(edge_f1(pred, gt, threshold=t))

    def result(self) -> dict[str, float]:
        return {k: float(np.mean(v)) for k, v in self.values.items()}


def scored_images(
    protocol: Protocol, gt_depths: list[np.ndarray], pred_depths: np.ndarray
) -> Iterator[tuple[ImageErrors, np.ndarray | None, np.ndarray | None]]:
    """Per image: its errors under ``protocol`` and, for the NYU protocols, the cropped ground
    truth and the prediction as scored (scaled, clipped; at the crop's size), else None."""
    s = protocol.scaling
    if len(gt_depths) != len(pred_depths):
        raise ValueError(f"{len(gt_depths)} ground-truth maps but {len(pred_depths)} predictions")
    pairs = enumerate(zip(gt_depths, pred_depths, strict=True))
    if protocol.name == "densedepth":
        for index, (gt, depth) in pairs:
            e, pred_map = densedepth_image_errors(gt, depth, s, index)
            top, bottom, left, right = scaled_crop(DENSEDEPTH_CROP, np.shape(gt))
            yield e, np.asarray(gt, dtype=np.float64)[top:bottom, left:right], pred_map
        return
    if protocol.name == "nyu":
        top, bottom, left, right = NYU_CROP
        size = (right - left, bottom - top)
        scale = 1.0 if s.median else s.factor
        for index, (gt, depth) in pairs:
            pred = cv2.resize(depth, size, interpolation=cv2.INTER_NEAREST) * scale
            gt_crop = np.asarray(gt, dtype=np.float64)[top:bottom, left:right]
            e = nyu_image_errors(gt_crop, pred.astype(np.float64), s.median, index=index)
            pred_map = np.clip(
                pred.astype(np.float64) * (e.ratio or 1.0), NYU_MIN_DEPTH, NYU_MAX_DEPTH
            )
            yield e, gt_crop, pred_map
        return
    for index, (gt, depth) in pairs:
        disp = 1.0 / np.asarray(depth, dtype=np.float32)
        yield eigen_image_errors(gt, disp, not s.median, protocol.name, s.factor, index), None, None


def protocol_errors(
    protocol: Protocol, gt_depths: list[np.ndarray], pred_depths: np.ndarray
) -> Iterator[ImageErrors]:
    """Per-image errors of network-resolution depths under ``protocol``, one image at a time
    (see the module docstring): what :func:`protocol_metrics` averages (``densedepth``: pools)."""
    for e, _, _ in scored_images(protocol, gt_depths, pred_depths):
        yield e


def evaluate_depths(
    protocol: Protocol, gt_depths: list[np.ndarray], pred_depths: np.ndarray
) -> tuple[dict[str, float], list[ImageErrors]]:
    """The protocol's metrics and the per-image errors (pixels dropped), in one pass.

    Metrics: the mean over images of the per-image metrics (``eigen``, ``eigen_benchmark``,
    ``nyu``) or the metrics of all scored pixels pooled (``densedepth``), plus the ratio
    statistics under median scaling, plus mSSIM and the edge F1s for the NYU protocols.
    """
    per_image: list[ImageErrors] = []
    pooled, maps = PooledErrors(), MapMetrics(protocol.edge_thresholds)
    for e, gt_map, pred_map in scored_images(protocol, gt_depths, pred_depths):
        if protocol.name == "densedepth":
            pooled.add(e.gt, e.pred)
        if gt_map is not None and pred_map is not None:
            maps.add(gt_map, pred_map)
        per_image.append(dataclasses.replace(e, mask=_NO_PIXELS, gt=_NO_PIXELS, pred=_NO_PIXELS))
    if protocol.name == "densedepth":
        ratios = [e.ratio for e in per_image if e.ratio is not None]
        metrics = pooled.result() | ratio_stats(ratios)
    else:
        metrics = summarise(per_image)
    if protocol.is_nyu:
        metrics |= maps.result()
    return metrics, per_image


def protocol_metrics(
    protocol: Protocol, gt_depths: list[np.ndarray], pred_depths: np.ndarray
) -> dict[str, float]:
    """Metrics of network-resolution depths under ``protocol`` (see :func:`evaluate_depths`)."""
    return evaluate_depths(protocol, gt_depths, pred_depths)[0]


def densedepth_metrics(
    gt_depths: Sequence[np.ndarray],
    pred_depths: np.ndarray | Sequence[np.ndarray],
    scaling: Scaling | None = None,
    edge_thresholds: Sequence[float] = EDGE_THRESHOLDS,
) -> dict[str, float]:
    """DenseDepth's protocol (module docstring) on already flip-averaged depths, as a plain
    function: N (480, 640) ground-truth maps and N (h, w) predictions in metres; ``scaling``
    defaults to DenseDepth's fixed x1 (``Scaling()`` = per-image median)."""
    scaling = Scaling(median=False, factor=1.0) if scaling is None else scaling
    protocol = Protocol("densedepth", scaling, tuple(edge_thresholds))
    return protocol_metrics(protocol, list(gt_depths), np.asarray(pred_depths))


_NO_PIXELS = np.zeros(0)


def metrics_per_image(
    protocol: Protocol, gt_depths: list[np.ndarray], pred_depths: np.ndarray
) -> list[ImageErrors]:
    """:func:`protocol_errors` with each image's metrics and ratio kept, its pixels dropped."""
    return [
        dataclasses.replace(e, mask=_NO_PIXELS, gt=_NO_PIXELS, pred=_NO_PIXELS)
        for e in protocol_errors(protocol, gt_depths, pred_depths)
    ]
