"""Depth evaluation of a trained (or untrained) model on a test store, through the method's
:class:`~train.methods.Predictor` (RGB in [0, 1] -> depth at network resolution).

Steps: pick the protocol from the store's attributes and the predictor's scaling rule
(:func:`select_protocol`); run the predictor over the store in order at the training resolution
(:func:`predict_depths`, flip averaging or optional flip post-processing); hand the
network-resolution predictions to the numpy protocols of :mod:`train.eval.protocols`
(:func:`protocol_metrics`), which resize each prediction once, from the network output to its
ground truth.

Protocols:

* ``eigen`` (KITTI test store with velodyne ground truth, ``ground_truth.protocol`` attribute,
  or any KITTI store with ``gt_depth`` and no such attribute): Garg crop, 1e-3 < gt < 80 m;
* ``eigen_benchmark`` (improved ground truth): gt > 0, no crop;
* ``nyu`` (NYU labeled store, median-scaled models): crop 44:471 x 40:601, gt > 0, predictions
  clipped to 0.1..10 m (nyuv2.md 7.5: the RGB is cropped the same way before resizing to the
  network);
* ``densedepth`` (NYU labeled store, metric models; see :mod:`train.eval.protocols`): flip
  averaging, DenseDepth's Eigen crop, upsampled to 480x640, no median scaling, metrics pooled
  over all pixels. Both NYU protocols add mSSIM and the edge F1 at 0.25, 0.5 and 1.

Scaling comes from the checkpoint's method and config (:attr:`Predictor.scaling`): Monodepth2
models trained with the stereo source are scored metrically, depth x 5.4 (0.54 m real baseline /
0.1 training baseline) without median scaling, as monodepth2's ``--eval_stereo`` does; mono
models use per-image median scaling; supervised metric models (DenseDepth) a fixed x1.
``scaling="median"`` / ``"stereo"`` forces either. On NYU stores the scaling also picks the
protocol (median -> ``nyu``, fixed -> ``densedepth``) unless ``protocol`` names one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from pipelines.loader import Batch, make_loader, resolve_device
from pipelines.store import Store, open_store, require_complete
from train.engine.checkpoint import checkpoint_config, load_networks, read_checkpoint
from train.engine.config import TrainConfig, apply_overrides
from train.eval.files import check_output_path
from train.eval.inputs import (
    batch_arguments,
    check_previous_frames,
    flip_arguments,
    loader_frames,
    missing_previous,
)
from train.eval.metrics import post_process_disparity
from train.eval.protocols import (  # noqa: F401 - re-exported: the evaluation API
    EDGE_THRESHOLDS,
    PROTOCOLS,
    SCALINGS,
    Protocol,
    evaluate_depths,
    metrics_per_image,
    nyu_image_crop,
    protocol_errors,
    protocol_metrics,
    select_protocol,
)
from train.eval.report import check_report_dir, write_report
from train.eval.results import EvalReport, Predictions, write_json  # noqa: F401 - the API
from train.methods import Method, Networks, Predictor, method_class


def gt_maps(batch: Batch) -> list[np.ndarray]:
    """The batch's ground-truth maps, un-padded with ``gt_size`` (empty without ``gt_depth``)."""
    if batch.gt_depth is None or batch.gt_size is None:
        return []
    pairs = zip(batch.gt_depth.cpu().numpy(), batch.gt_size.cpu().numpy(), strict=True)
    return [np.ascontiguousarray(gt[:h, :w]) for gt, (h, w) in pairs]


def sample_names(store: Store, rows: np.ndarray, views: np.ndarray) -> list[dict[str, object]]:
    """What each evaluated sample is: ``{"sequence": drive or scene, "frame": frame number in
    it, "view": camera view}`` (frame rows ``rows`` of the store; ``row`` alone when the store
    lacks the ``sequence`` / ``frame`` arrays)."""
    if not (store.has("sequence") and store.has("frame")) or not len(rows):
        return [{"row": int(r), "view": int(v)} for r, v in zip(rows, views, strict=True)]
    sequences = store.sequences
    seq = np.asarray(store["sequence"][...])[rows]
    frame = np.asarray(store["frame"][...])[rows]
    names = [sequences[q] if 0 <= q < len(sequences) else str(q) for q in seq.tolist()]
    return [
        {"sequence": q, "frame": f, "view": v}
        for q, f, v in zip(names, frame.tolist(), views.tolist(), strict=True)
    ]


def input_warnings(store: Store, protocol: Protocol, config: TrainConfig) -> list[str]:
    """``warning:`` lines about the test images the network sees: smaller than its input
    (upsampled: less detail than the network was trained on, as the training header says)."""
    h, w = store.image_size
    if protocol.name == "nyu":
        top, bottom, left, right = nyu_image_crop(store.image_size)
        h, w = bottom - top, right - left
    if h >= config.height and w >= config.width:
        return []
    return [
        f"warning: the test images ({store.path}: {h}x{w}"
        f"{' after the NYU crop' if protocol.name == 'nyu' else ''}) are smaller than the "
        f"network input {config.height}x{config.width}: they are upsampled (bilinear), so the "
        "network sees less detail than it was trained on; prepare the test store at the "
        f"network size (--size {config.height}x{config.width})"
    ]


@torch.no_grad()
def predict_depths(
    predictor: Predictor,
    config: TrainConfig,
    store_path: str | Path,
    *,
    protocol: Protocol | None = None,
    batch_size: int = 16,
    device: torch.device | str = "cpu",
    post_process: bool = False,
    keep_images: bool = False,
    limit: int | None = None,
) -> Predictions:
    """Run the predictor over every sample of a store, in order, without augmentation.

    ``post_process`` blends with the flipped prediction in disparity (monodepth2's edge-aware
    blend); a protocol with ``flip_average`` (``densedepth``) averages the depth with the mirrored
    prediction of the mirrored image (0.5 / 0.5, at network resolution: the same as after
    DenseDepth's bilinear upsampling, which commutes with mirroring). ``limit`` stops after that
    many samples.
    """
    flip_average = protocol.flip_average if protocol is not None else False
    if flip_average and post_process:
        raise ValueError(
            "the densedepth protocol averages flipped predictions itself; "
            "--post-process does not apply"
        )
    device = torch.device(device)
    predictor.eval()
    store = open_store(store_path)
    check_previous_frames(predictor, store)
    frames = loader_frames(predictor)
    loader = make_loader(
        store_path, batch_size, workers=0, shuffle=False, frames=frames, extras=("gt",)
    )
    depths, gts, images, rows, views = [], [], [], [], []
    seen = missing = 0
    for batch in loader:
        arguments = batch_arguments(predictor, batch, store, protocol, config, device)
        x = arguments[predictor.inputs.index("image")]
        missing += missing_previous(predictor, batch)
        depth = predictor(*arguments)[:, 0].float().cpu().numpy()
        if post_process or flip_average:
            mirrored = flip_arguments(predictor, arguments)
            flipped = predictor(*mirrored)[:, 0].float().cpu().numpy()[..., ::-1]
            if flip_average:
                depth = 0.5 * (depth + flipped)
            else:
                depth = 1.0 / post_process_disparity(1.0 / depth, 1.0 / flipped)
        depths.append(depth.astype(np.float32))
        if keep_images:
            images.append((x * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy())
        gts += gt_maps(batch)
        rows.append(batch.row.numpy())
        views.append(batch.side.numpy())
        seen += len(batch)
        if limit is not None and seen >= limit:
            break
    n = seen if limit is None else min(seen, limit)
    return Predictions(
        depths=np.concatenate(depths)[:n],
        gt_depths=gts[:n],
        images=np.concatenate(images)[:n] if keep_images else None,
        names=sample_names(store, np.concatenate(rows)[:n], np.concatenate(views)[:n]),
        missing_previous=missing,
    )


def evaluate_networks(
    method: Method,
    nets: Networks,
    store_path: str | Path,
    *,
    batch_size: int = 16,
    device: torch.device | str = "cpu",
    post_process: bool = False,
    scaling: str = "auto",
    protocol: str = "auto",
    edge_thresholds: Sequence[float] = EDGE_THRESHOLDS,
    save_images: str | Path | None = None,
    max_images: int = 8,
    checkpoint: str | None = None,
    report_dir: str | Path | None = None,
    overwrite: bool = False,
    echo: Callable[[str], object] | None = None,
) -> EvalReport:
    """Evaluate a method's networks (trained or not) on the test store at ``store_path``
    (``scaling``, ``protocol``, ``edge_thresholds``: see :func:`select_protocol`);
    ``report_dir``: also write the HTML report there (:mod:`train.eval.report`); ``echo``
    receives the warnings (:func:`input_warnings`) before the predictions start."""
    from train.eval.pictures import write_prediction_pictures

    start = time.perf_counter()
    if report_dir is not None:
        check_report_dir(report_dir, overwrite)
    store = require_complete(open_store(store_path))
    predictor = method.predictor(nets)
    chosen = select_protocol(store, predictor.scaling, scaling, protocol, edge_thresholds)
    warnings = input_warnings(store, chosen, method.config)
    for line in warnings if echo is not None else ():
        echo(line)
    preds = predict_depths(
        predictor,
        method.config,
        store_path,
        protocol=chosen,
        batch_size=batch_size,
        device=device,
        post_process=post_process,
        keep_images=save_images is not None or report_dir is not None,
    )
    if len(preds.gt_depths) != len(preds.depths):
        raise ValueError(f"{store_path}: ground truth missing for some samples")
    metrics, errors = evaluate_depths(chosen, preds.gt_depths, preds.depths)
    written: list[str] = []
    if save_images is not None and preds.images is not None:
        written = write_prediction_pictures(
            save_images, preds.images, 1.0 / preds.depths, preds.gt_depths, max_images
        )
    report = EvalReport(
        protocol=chosen,
        metrics=metrics,
        n_images=len(preds.depths),
        store=str(store_path),
        checkpoint=checkpoint,
        post_process=post_process,
        seconds=time.perf_counter() - start,
        images_written=written,
        per_image=[e.metrics for e in errors],
        names=preds.names,
        method=method.config.method,
        preset=method.config.preset,
        network_size=(method.config.height, method.config.width),
        warnings=warnings,
        missing_previous=preds.missing_previous if "previous" in predictor.inputs else None,
    )
    if report_dir is not None:
        report.report_dir = str(write_report(report_dir, report, preds, overwrite=overwrite))
    return report


def load_checkpoint_method(
    path: str | Path, device: torch.device | str = "cpu", overrides: Sequence[str] = ()
) -> tuple[Method, Networks]:
    """The method (with the checkpoint's config) and its networks with the stored weights.

    A checkpoint may lack networks its predictor does not use (an imported depth-only release:
    no pose network); those keep their initialisation. ``overrides`` (``key=value``, e.g.
    ``teacher=true``) change the config the predictor is built from (not the networks).

    Raises:
        ValueError: unreadable checkpoint, unknown method, or no weights for a network the
            predictor needs.
    """
    payload = read_checkpoint(path)
    config = checkpoint_config(payload)
    no_download = apply_overrides(config, {"pretrained": False, "weights": None})
    method = method_class(config.method)(no_download)
    nets = method.build_networks(device)
    missing = load_networks(payload, nets, missing_ok=True)
    config = apply_overrides(config, list(overrides))
    method = method_class(config.method)(config)
    if missing:
        needed = {id(p) for p in method.predictor(nets).parameters()}
        for name in missing:
            if any(id(p) in needed for p in nets[name].parameters()):
                raise ValueError(f"{path}: checkpoint has no weights for the {name} network")
    return method, nets


def pick_device(name: str | None, echo: Callable[[str], object] | None = None) -> torch.device:
    """:func:`~pipelines.loader.resolve_device`, saying (through ``echo``) when no device was
    named and there is no CUDA device, so the CPU is used."""
    device = resolve_device(name)
    if name is None and device.type == "cpu" and echo is not None:
        echo("note: no CUDA device available: running on the CPU")
    return device


def evaluate_checkpoint(
    checkpoint: str | Path,
    store_path: str | Path,
    *,
    batch_size: int = 16,
    device: str | None = None,
    post_process: bool = False,
    scaling: str = "auto",
    protocol: str = "auto",
    edge_thresholds: Sequence[float] = EDGE_THRESHOLDS,
    save_images: str | Path | None = None,
    json_path: str | Path | None = None,
    report_dir: str | Path | None = None,
    overwrite: bool = False,
    echo: Callable[[str], object] | None = None,
    overrides: Sequence[str] = (),
) -> EvalReport:
    """``cli.py eval``: load a checkpoint, evaluate it on a store, optionally write JSON, PNGs
    and an HTML report (``report_dir``: refused when it exists, unless ``overwrite``); ``echo``
    receives notes and warnings as they arise; ``overrides``: ``--set key=value`` for the
    predictor (e.g. ManyDepth's ``teacher=true``)."""

    store_path = str(store_path)
    if report_dir is not None:  # before any work
        check_output_path(report_dir, "folder")
        check_report_dir(report_dir, overwrite)
    if json_path is not None:
        check_output_path(json_path, "file")
    if save_images is not None:
        check_output_path(save_images, "folder")
    require_complete(open_store(store_path))  # fail early, naming the store
    dev = pick_device(device, echo)
    method, nets = load_checkpoint_method(checkpoint, dev, overrides)
    report = evaluate_networks(
        method,
        nets,
        store_path,
        batch_size=batch_size,
        device=dev,
        post_process=post_process,
        scaling=scaling,
        protocol=protocol,
        edge_thresholds=edge_thresholds,
        save_images=save_images,
        checkpoint=str(checkpoint),
        report_dir=report_dir,
        overwrite=overwrite,
        echo=echo,
    )
    if json_path is not None:
        write_json(report, json_path)
    return report
