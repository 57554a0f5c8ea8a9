"""A model before and after training, side by side: depths as a protocol scores them, the
dense true depth of a synthetic world, one picture per test frame (``cli.py demo``)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pipelines.store import open_store
from train.eval.evaluate import evaluate_networks, predict_depths
from train.eval.pictures import side_by_side
from train.eval.protocols import metrics_per_image
from train.eval.results import EvalReport
from train.methods import Method, Networks


def median_scaled_abs_rel(method: Method, nets: Networks, test: Path) -> float:
    """abs_rel under per-image median scaling: how well the shape of depth is learnt,
    whatever its scale (a figure beside the protocol's, not instead of it)."""
    return evaluate_networks(method, nets, test, scaling="median").metrics["abs_rel"]


def scaled_depths(
    method: Method, nets: Networks, test: Path, report: EvalReport
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Network inputs uint8 (N, h, w, 3), depths (N, h, w) in metres as ``report``'s protocol
    scores them (each image's median ratio, or the fixed factor), and the ground-truth maps."""
    protocol = report.protocol
    preds = predict_depths(
        method.predictor(nets), method.config, test, protocol=protocol, keep_images=True
    )
    errors = metrics_per_image(protocol, preds.gt_depths, preds.depths)
    scales = [protocol.scaling.factor if e.ratio is None else e.ratio for e in errors]
    if preds.images is None:
        raise ValueError(f"{test}: no network inputs kept")
    depths = preds.depths * np.asarray(scales, np.float32)[:, None, None]
    return preds.images, depths, preds.gt_depths


def true_depths(test: Path, truth: str | Path | None) -> list[np.ndarray] | None:
    """The world's dense camera-02 depth of each test sample (``truth.npz`` of
    :func:`pipelines.synth.write_kitti`), or None when any is not there."""
    if truth is None or not Path(truth).is_file():
        return None
    store = open_store(test)
    sequence, frame = np.asarray(store["sequence"][...]), np.asarray(store["frame"][...])
    maps = []
    with np.load(truth) as world:
        for row, _, _, view in store.samples:
            key = f"{store.sequences[sequence[row]]}/depth"
            if view != 0 or key not in world.files:
                return None
            maps.append(world[key][frame[row]])
    return maps


def write_side_by_side(
    folder: Path,
    test: Path,
    before: tuple[np.ndarray, np.ndarray, list[np.ndarray]],
    after: tuple[np.ndarray, np.ndarray, list[np.ndarray]],
    reports: tuple[EvalReport, EvalReport],
    truth: str | Path | None,
) -> list[Path]:
    """``folder/NNNN.png`` per test sample: input | before | after | truth (see
    :func:`train.eval.pictures.side_by_side`), captioned with each image's abs_rel."""
    folder.mkdir(parents=True, exist_ok=True)
    images, before_depths, gts = before
    dense = true_depths(test, truth)
    written = []
    for i, image in enumerate(images):
        errors = [f"{r.per_image[i]['abs_rel']:.3f}" for r in reports]
        labels = ["input", f"before: abs_rel {errors[0]}", f"after: abs_rel {errors[1]}"]
        if dense is None:
            gt, radius = gts[i], max(1, gts[i].shape[1] // image.shape[1])
            labels.append("ground truth (velodyne)")
        else:
            gt, radius = dense[i], 0
            labels.append("true depth")
        panel = side_by_side(image, [before_depths[i], after[1][i]], gt, labels, radius)
        path = folder / f"{i:04d}.png"
        cv2.imwrite(str(path), panel[:, :, ::-1])
        written.append(path)
    return written
