"""Depth evaluation of a trained (or untrained) model on a test store, through the method's
:class:`~train.methods.Predictor` (RGB in [0, 1] -> depth at network resolution).

Steps: pick the protocol from the store's attributes and the predictor's scaling rule
(:func:`select_protocol`); run the predictor over the store in order at the training resolution
(:func:`predict_depths`, optional flip post-processing); hand the network-resolution
predictions to the numpy protocols of :mod:`train.eval.metrics` (:func:`protocol_metrics`), which
resize each prediction once, from the network output to its ground truth.

Protocols:

* ``eigen`` (KITTI test store with velodyne ground truth, ``ground_truth.protocol`` attribute,
  or any KITTI store with ``gt_depth`` and no such attribute): Garg crop, 1e-3 < gt < 80 m;
* ``eigen_benchmark`` (improved ground truth): gt > 0, no crop;
* ``nyu`` (NYU labeled store): crop 44:471 x 40:601, gt > 0, predictions clipped to 0.1..10 m
  (nyuv2.md 7.5: the RGB is cropped the same way before resizing to the network).

Scaling comes from the checkpoint's method and config (:attr:`Predictor.scaling`): Monodepth2
models trained with the stereo source are scored metrically, depth x 5.4 (0.54 m real baseline /
0.1 training baseline) without median scaling, as monodepth2's ``--eval_stereo`` does; mono
models use per-image median scaling. ``scaling="median"`` / ``"stereo"`` forces either.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from pipelines.loader import Batch, make_loader, resize_bilinear, resolve_device
from pipelines.store import Store, open_store, require_complete
from pipelines.store.constants import NYU_SIZE
from train.engine.checkpoint import checkpoint_config, load_networks, read_checkpoint
from train.engine.config import TrainConfig, apply_overrides
from train.eval.metrics import (
    EIGEN_METRIC_NAMES,
    METRIC_NAMES,
    NYU_CROP,
    STEREO_SCALE_FACTOR,
    eigen_metrics,
    format_metrics,
    nyu_metrics,
    post_process_disparity,
)
from train.methods import Method, Networks, Predictor, Scaling, method_class

SCALINGS = ("auto", "median", "stereo")


@dataclass(frozen=True)
class Protocol:
    """``name``: eigen, eigen_benchmark or nyu; ``scaling``: median or a fixed factor."""

    name: str
    scaling: Scaling

    @property
    def metric_names(self) -> tuple[str, ...]:
        return METRIC_NAMES if self.name == "nyu" else EIGEN_METRIC_NAMES


@dataclass
class Predictions:
    """Predictor outputs over a store, in store sample order.

    Attributes:
        depths: float32 ``(N, h, w)`` depth in the method's units at network resolution.
        gt_depths: N float32 ground-truth maps, un-padded with ``gt_size`` (metres).
        images: uint8 ``(N, h, w, 3)`` network inputs (kept only when asked for).
    """

    depths: np.ndarray
    gt_depths: list[np.ndarray]
    images: np.ndarray | None = None


@dataclass
class EvalReport:
    """Metrics of one evaluation and how they were obtained."""

    protocol: Protocol
    metrics: dict[str, float]
    n_images: int
    store: str
    checkpoint: str | None = None
    post_process: bool = False
    seconds: float = 0.0
    images_written: list[str] = field(default_factory=list)

    def table(self) -> str:
        """The printed metrics table."""
        return format_metrics(self.metrics, self.protocol.metric_names)

    def to_dict(self) -> dict:
        return {
            "protocol": self.protocol.name,
            "scaling": self.protocol.scaling.name,
            "metrics": self.metrics,
            "n_images": self.n_images,
            "store": self.store,
            "checkpoint": self.checkpoint,
            "post_process": self.post_process,
            "seconds": self.seconds,
        }

    def __str__(self) -> str:
        s = self.protocol.scaling
        scaling = "per-image median" if s.median else f"x{s.factor:g} (fixed)"
        ratio = ""
        if "ratio_median" in self.metrics:
            ratio = (
                f", ratio median {self.metrics['ratio_median']:.3f}"
                f" std {self.metrics['ratio_std']:.3f}"
            )
        head = (
            f"{self.store}: {self.n_images} images, protocol {self.protocol.name}, "
            f"scaling {scaling}{ratio}{', post-processed' if self.post_process else ''}"
        )
        return f"{head}\n{self.table()}"


def select_protocol(store: Store, scaling: Scaling, override: str = "auto") -> Protocol:
    """The protocol that fits ``store``, with the model's ``scaling`` (or ``override``:
    ``"median"``, or ``"stereo"`` = the model's fixed factor, x5.4 for a median-scaled one).

    Raises:
        ValueError: the store has no ground truth, or an unknown ``override``.
    """
    if override not in SCALINGS:
        raise ValueError(f"scaling must be one of {SCALINGS}, not {override!r}")
    if override == "median":
        scaling = Scaling()
    elif override == "stereo" and scaling.median:  # a fixed-scale model keeps its own factor
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


def network_input(
    target: torch.Tensor, store: Store, protocol: Protocol | None, config: TrainConfig
) -> torch.Tensor:
    """uint8 ``(B, 3, H, W)`` store images -> float ``(B, 3, h, w)`` in [0, 1] at the network
    size (bilinear, antialiased), after the NYU crop under the ``nyu`` protocol."""
    x = target.float().div(255.0)
    if protocol is not None and protocol.name == "nyu":
        top, bottom, left, right = nyu_image_crop(store.image_size)
        x = x[..., top:bottom, left:right]
    return resize_bilinear(x.contiguous(), (config.height, config.width))


def gt_maps(batch: Batch) -> list[np.ndarray]:
    """The batch's ground-truth maps, un-padded with ``gt_size`` (empty without ``gt_depth``)."""
    if batch.gt_depth is None or batch.gt_size is None:
        return []
    pairs = zip(batch.gt_depth.cpu().numpy(), batch.gt_size.cpu().numpy(), strict=True)
    return [np.ascontiguousarray(gt[:h, :w]) for gt, (h, w) in pairs]


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
    blend). ``limit`` stops after that many samples.
    """
    device = torch.device(device)
    predictor.eval()
    store = open_store(store_path)
    loader = make_loader(
        store_path, batch_size, workers=0, shuffle=False, frames=(), extras=("gt",)
    )
    depths, gts, images = [], [], []
    seen = 0
    for batch in loader:
        x = network_input(batch.target.to(device), store, protocol, config)
        depth = predictor(x)[:, 0].float().cpu().numpy()
        if post_process:
            flipped = predictor(x.flip(-1))[:, 0].float().cpu().numpy()[..., ::-1]
            depth = 1.0 / post_process_disparity(1.0 / depth, 1.0 / flipped)
        depths.append(depth.astype(np.float32))
        if keep_images:
            images.append((x * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy())
        gts += gt_maps(batch)
        seen += len(batch)
        if limit is not None and seen >= limit:
            break
    n = seen if limit is None else min(seen, limit)
    return Predictions(
        depths=np.concatenate(depths)[:n],
        gt_depths=gts[:n],
        images=np.concatenate(images)[:n] if keep_images else None,
    )


def protocol_metrics(
    protocol: Protocol, gt_depths: list[np.ndarray], pred_depths: np.ndarray
) -> dict[str, float]:
    """Metrics of network-resolution depths under ``protocol`` (see the module docstring)."""
    s = protocol.scaling
    if protocol.name == "nyu":
        top, bottom, left, right = NYU_CROP
        size = (right - left, bottom - top)
        depths = [cv2.resize(d, size, interpolation=cv2.INTER_NEAREST) for d in pred_depths]
        scale = 1.0 if s.median else s.factor
        return nyu_metrics(np.stack(gt_depths), np.stack(depths) * scale, median_scaling=s.median)
    disps = 1.0 / np.asarray(pred_depths, dtype=np.float32)
    return eigen_metrics(
        gt_depths, disps, not s.median, protocol=protocol.name, stereo_scale=s.factor
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
    save_images: str | Path | None = None,
    max_images: int = 8,
    checkpoint: str | None = None,
) -> EvalReport:
    """Evaluate a method's networks (trained or not) on the test store at ``store_path``."""
    from train.eval.pictures import write_prediction_pictures

    start = time.perf_counter()
    store = require_complete(open_store(store_path))
    predictor = method.predictor(nets)
    protocol = select_protocol(store, predictor.scaling, scaling)
    preds = predict_depths(
        predictor,
        method.config,
        store_path,
        protocol=protocol,
        batch_size=batch_size,
        device=device,
        post_process=post_process,
        keep_images=save_images is not None,
    )
    if len(preds.gt_depths) != len(preds.depths):
        raise ValueError(f"{store_path}: ground truth missing for some samples")
    metrics = protocol_metrics(protocol, preds.gt_depths, preds.depths)
    written: list[str] = []
    if save_images is not None and preds.images is not None:
        written = write_prediction_pictures(
            save_images, preds.images, 1.0 / preds.depths, preds.gt_depths, max_images
        )
    return EvalReport(
        protocol=protocol,
        metrics=metrics,
        n_images=len(preds.depths),
        store=str(store_path),
        checkpoint=checkpoint,
        post_process=post_process,
        seconds=time.perf_counter() - start,
        images_written=written,
    )


def load_checkpoint_method(
    path: str | Path, device: torch.device | str = "cpu"
) -> tuple[Method, Networks]:
    """The method (with the checkpoint's config) and its networks with the stored weights."""
    payload = read_checkpoint(path)
    config = checkpoint_config(payload)
    no_download = apply_overrides(config, {"pretrained": False, "weights": None})
    method = method_class(config.method)(no_download)
    nets = method.build_networks(device)
    load_networks(payload, nets)
    return method_class(config.method)(config), nets


def evaluate_checkpoint(
    checkpoint: str | Path,
    store_path: str | Path,
    *,
    batch_size: int = 16,
    device: str | None = None,
    post_process: bool = False,
    scaling: str = "auto",
    save_images: str | Path | None = None,
    json_path: str | Path | None = None,
) -> EvalReport:
    """``cli.py eval``: load a checkpoint, evaluate it on a store, optionally write JSON/PNGs."""
    store_path = str(store_path)
    require_complete(open_store(store_path))  # fail early, naming the store
    dev = resolve_device(device)
    method, nets = load_checkpoint_method(checkpoint, dev)
    report = evaluate_networks(
        method,
        nets,
        store_path,
        batch_size=batch_size,
        device=dev,
        post_process=post_process,
        scaling=scaling,
        save_images=save_images,
        checkpoint=str(checkpoint),
    )
    if json_path is not None:
        write_json(report, json_path)
    return report


def write_json(report: EvalReport, path: str | Path) -> Path:
    """Write ``report.to_dict()`` as indented JSON; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    return path
