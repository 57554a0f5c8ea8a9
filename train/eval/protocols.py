"""Evaluation protocols: which one a test store gets (:func:`select_protocol`), the NYU image
crop, and per-image errors of network-resolution depths (:func:`protocol_errors`), which
:func:`protocol_metrics` averages. See :mod:`train.eval.evaluate` for the protocols themselves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from pipelines.store import Store
from pipelines.store.constants import NYU_SIZE
from train.eval.metrics import (
    EIGEN_METRIC_NAMES,
    METRIC_NAMES,
    NYU_CROP,
    STEREO_SCALE_FACTOR,
    ImageErrors,
    eigen_image_errors,
    nyu_image_errors,
    summarise,
)
from train.methods import Scaling

SCALINGS = ("auto", "median", "stereo")


@dataclass(frozen=True)
class Protocol:
    """``name``: eigen, eigen_benchmark or nyu; ``scaling``: median or a fixed factor."""

    name: str
    scaling: Scaling

    @property
    def metric_names(self) -> tuple[str, ...]:
        return METRIC_NAMES if self.name == "nyu" else EIGEN_METRIC_NAMES


def select_protocol(store: Store, scaling: Scaling, override: str = "auto") -> Protocol:
    """The protocol that fits ``store``, with the model's ``scaling`` (or ``override``:
    ``"median"``, or ``"stereo"`` = fixed x5.4).

    Raises:
        ValueError: the store has no ground truth, or an unknown ``override``.
    """
    if override not in SCALINGS:
        raise ValueError(f"scaling must be one of {SCALINGS}, not {override!r}")
    if override == "median":
        scaling = Scaling()
    elif override == "stereo":
        scaling = Scaling(median=False, factor=STEREO_SCALE_FACTOR)
    if store.dataset == "nyu-labeled" or (
        store.dataset.startswith("nyu") and store.has("gt_depth")
    ):
        return Protocol("nyu", scaling)
    if not store.has("gt_depth"):
        raise ValueError(f"{store.path}: store has no gt_depth array, nothing to evaluate against")
    name = str(store.attrs.get("ground_truth", {}).get("protocol", "eigen"))
    if name not in ("eigen", "eigen_benchmark"):
        raise ValueError(f"{store.path}: unknown ground-truth protocol {name!r}")
    return Protocol(name, scaling)


def nyu_image_crop(image_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The NYU evaluation crop (top, bottom, left, right) scaled to a store of ``image_size``."""
    sy, sx = image_size[0] / NYU_SIZE[0], image_size[1] / NYU_SIZE[1]
    top, bottom, left, right = NYU_CROP
    return round(top * sy), round(bottom * sy), round(left * sx), round(right * sx)


def protocol_errors(
    protocol: Protocol, gt_depths: list[np.ndarray], pred_depths: np.ndarray
) -> Iterator[ImageErrors]:
    """Per-image errors of network-resolution depths under ``protocol``, one image at a time
    (see the module docstring): what :func:`protocol_metrics` averages."""
    s = protocol.scaling
    if len(gt_depths) != len(pred_depths):
        raise ValueError(f"{len(gt_depths)} ground-truth maps but {len(pred_depths)} predictions")
    if protocol.name == "nyu":
        top, bottom, left, right = NYU_CROP
        size = (right - left, bottom - top)
        scale = 1.0 if s.median else s.factor
        for index, (gt, depth) in enumerate(zip(gt_depths, pred_depths, strict=True)):
            pred = cv2.resize(depth, size, interpolation=cv2.INTER_NEAREST) * scale
            gt_crop = np.asarray(gt, dtype=np.float64)[top:bottom, left:right]
            yield nyu_image_errors(gt_crop, pred.astype(np.float64), s.median, index=index)
        return
    for index, (gt, depth) in enumerate(zip(gt_depths, pred_depths, strict=True)):
        disp = 1.0 / np.asarray(depth, dtype=np.float32)
        yield eigen_image_errors(gt, disp, not s.median, protocol.name, s.factor, index)


def protocol_metrics(
    protocol: Protocol, gt_depths: list[np.ndarray], pred_depths: np.ndarray
) -> dict[str, float]:
    """Metrics of network-resolution depths under ``protocol`` (see the module docstring)."""
    return summarise(protocol_errors(protocol, gt_depths, pred_depths))


_NO_PIXELS = np.zeros(0)


def metrics_per_image(
    protocol: Protocol, gt_depths: list[np.ndarray], pred_depths: np.ndarray
) -> list[ImageErrors]:
    """:func:`protocol_errors` with each image's metrics and ratio kept, its pixels dropped."""
    return [
        dataclasses.replace(e, mask=_NO_PIXELS, gt=_NO_PIXELS, pred=_NO_PIXELS)
        for e in protocol_errors(protocol, gt_depths, pred_depths)
    ]
