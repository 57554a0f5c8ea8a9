"""Depth evaluation of a trained (or untrained) model on a test store.

Steps: pick the protocol from the store's attributes (:func:`select_protocol`); run the depth
network over the store in order at its training resolution (:func:`predict_disparities`,
optional flip post-processing); hand the network-resolution disparities to the numpy protocols
of :mod:`train.evaluate` (:func:`protocol_metrics`).

Protocols:

* ``eigen`` (KITTI test store with velodyne ground truth, ``ground_truth.protocol`` attribute,
  or any KITTI store with ``gt_depth`` and no such attribute): Garg crop, 1e-3 < gt < 80 m;
* ``eigen_benchmark`` (improved ground truth): gt > 0, no crop;
* ``nyu`` (NYU labeled store): crop 44:471 x 40:601, gt > 0, predictions clipped to 0.1..10 m
  (nyuv2.md 7.5: the RGB is cropped the same way before resizing to the network).

Scaling: models trained with the stereo source (``monodepth2-s``, ``monodepth2-ms``) are scored
metrically, depth x 5.4 (0.54 m real baseline / 0.1 training baseline) without median scaling,
as monodepth2's ``--eval_stereo`` does for both its stereo and mono+stereo models; mono models
use per-image median scaling. ``scaling="median"`` / ``"stereo"`` forces either.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from pipelines.loader import make_loader, resize_bilinear
from pipelines.store import Store, open_store
from train.build import Models, build_models, resolve_device
from train.checkpoint import checkpoint_config, load_models, read_checkpoint
from train.config import TrainConfig
from train.evaluate import (
    EIGEN_METRIC_NAMES,
    METRIC_NAMES,
    NYU_CROP,
    eigen_metrics,
    format_metrics,
    nyu_metrics,
    post_process_disparity,
)
from train.geometry import disp_to_depth

SCALINGS = ("auto", "median", "stereo")
NYU_SIZE = (480, 640)


@dataclass(frozen=True)
class Protocol:
    """``name``: eigen, eigen_benchmark or nyu; ``stereo``: metric x5.4 instead of median."""

    name: str
    stereo: bool

    @property
    def metric_names(self) -> tuple[str, ...]:
        return METRIC_NAMES if self.name == "nyu" else EIGEN_METRIC_NAMES


@dataclass
class Predictions:
    """Network outputs over a store, in store sample order.

    Attributes:
        disps: float32 ``(N, h, w)`` "scaled" disparities (``1 / depth`` in training units,
            from :func:`train.geometry.disp_to_depth`) at network resolution.
        gt_depths: N float32 ground-truth maps, un-padded with ``gt_size`` (metres).
        images: uint8 ``(N, h, w, 3)`` network inputs (kept only when asked for).
    """

    disps: np.ndarray
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
            "scaling": "stereo" if self.protocol.stereo else "median",
            "metrics": self.metrics,
            "n_images": self.n_images,
            "store": self.store,
            "checkpoint": self.checkpoint,
            "post_process": self.post_process,
            "seconds": self.seconds,
        }

    def __str__(self) -> str:
        scaling = "x5.4 (stereo)" if self.protocol.stereo else "per-image median"
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


def select_protocol(store: Store, config: TrainConfig, scaling: str = "auto") -> Protocol:
    """The protocol that fits ``store`` and the model's training ``config``.

    Raises:
        ValueError: the store has no ground truth, or an unknown ``scaling``.
    """
    if scaling not in SCALINGS:
        raise ValueError(f"scaling must be one of {SCALINGS}, not {scaling!r}")
    stereo = config.use_stereo if scaling == "auto" else scaling == "stereo"
    if store.dataset == "nyu-labeled" or (
        store.dataset.startswith("nyu") and store.has("gt_depth")
    ):
        return Protocol("nyu", stereo=False if scaling == "auto" else stereo)
    if not store.has("gt_depth"):
        raise ValueError(f"{store.path}: store has no gt_depth array, nothing to evaluate against")
    name = str(store.attrs.get("ground_truth", {}).get("protocol", "eigen"))
    if name not in ("eigen", "eigen_benchmark"):
        raise ValueError(f"{store.path}: unknown ground-truth protocol {name!r}")
    return Protocol(name, stereo)


def nyu_image_crop(image_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The NYU evaluation crop (top, bottom, left, right) scaled to a store of ``image_size``."""
    sy, sx = image_size[0] / NYU_SIZE[0], image_size[1] / NYU_SIZE[1]
    top, bottom, left, right = NYU_CROP
    return round(top * sy), round(bottom * sy), round(left * sx), round(right * sx)


@torch.no_grad()
def predict_disparities(
    models: Models,
    config: TrainConfig,
    store_path: str | Path,
    *,
    batch_size: int = 16,
    device: torch.device | str = "cpu",
    post_process: bool = False,
    crop: tuple[int, int, int, int] | None = None,
    keep_images: bool = False,
    limit: int | None = None,
) -> Predictions:
    """Run the depth network over every sample of a store, in order, without augmentation.

    Images are resized (bilinear, antialiased) to ``config.height x config.width`` after an
    optional ``crop`` (top, bottom, left, right in store pixels). ``post_process`` averages with
    the flipped prediction (monodepth2's edge-aware blend). ``limit`` stops after that many.
    """
    device = torch.device(device)
    models.depth.eval()
    loader = make_loader(
        store_path, batch_size, workers=0, shuffle=False, frames=(), extras=("gt",)
    )
    disps, gts, images = [], [], []
    seen = 0
    for batch in loader:
        x = batch.target.to(device).float().div_(255.0)
        if crop is not None:
            top, bottom, left, right = crop
            x = x[..., top:bottom, left:right]
        x = resize_bilinear(x.contiguous(), (config.height, config.width))
        disp = scaled_disparity(models, x, config)
        if post_process:
            flipped = scaled_disparity(models, x.flip(-1), config)[..., ::-1]
            disp = post_process_disparity(disp, flipped)
        disps.append(disp)
        if keep_images:
            images.append((x * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy())
        if batch.gt_depth is not None:
            for gt, (h, w) in zip(batch.gt_depth.numpy(), batch.gt_size.numpy(), strict=True):
                gts.append(np.ascontiguousarray(gt[:h, :w]))
        seen += len(batch)
        if limit is not None and seen >= limit:
            break
    n = seen if limit is None else min(seen, limit)
    return Predictions(
        disps=np.concatenate(disps)[:n],
        gt_depths=gts[:n],
        images=np.concatenate(images)[:n] if keep_images else None,
    )


def scaled_disparity(models: Models, x: torch.Tensor, config: TrainConfig) -> np.ndarray:
    """float32 ``(B, h, w)`` "scaled" disparity (``1 / depth``) of ``(B, 3, h, w)`` images."""
    sigmoid = models.depth(x).disps[0].float()
    scaled, _ = disp_to_depth(sigmoid, config.min_depth, config.max_depth)
    return scaled[:, 0].cpu().numpy().astype(np.float32)


def protocol_metrics(
    protocol: Protocol, gt_depths: list[np.ndarray], pred_disps: np.ndarray, config: TrainConfig
) -> dict[str, float]:
    """Metrics of network-resolution disparities under ``protocol`` (see the module docstring)."""
    if protocol.name == "nyu":
        import cv2

        top, bottom, left, right = NYU_CROP
        size = (right - left, bottom - top)
        depths = [
            1.0 / np.maximum(cv2.resize(d, size, interpolation=cv2.INTER_NEAREST), 1e-6)
            for d in pred_disps
        ]
        scale = 5.4 if protocol.stereo else 1.0
        return nyu_metrics(
            np.stack(gt_depths), np.stack(depths) * scale, median_scaling=not protocol.stereo
        )
    return eigen_metrics(gt_depths, pred_disps, protocol.stereo, protocol=protocol.name)


def evaluate_models(
    models: Models,
    config: TrainConfig,
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
    """Evaluate ``models`` (trained or not) on the test store at ``store_path``."""
    import time

    from train.pictures import write_prediction_pictures

    start = time.perf_counter()
    store = open_store(store_path)
    protocol = select_protocol(store, config, scaling)
    crop = nyu_image_crop(store.image_size) if protocol.name == "nyu" else None
    preds = predict_disparities(
        models,
        config,
        store_path,
        batch_size=batch_size,
        device=device,
        post_process=post_process,
        crop=crop,
        keep_images=save_images is not None,
    )
    if len(preds.gt_depths) != len(preds.disps):
        raise ValueError(f"{store_path}: ground truth missing for some samples")
    metrics = protocol_metrics(protocol, preds.gt_depths, preds.disps, config)
    written: list[str] = []
    if save_images is not None and preds.images is not None:
        written = write_prediction_pictures(
            save_images, preds.images, preds.disps, preds.gt_depths, max_images
        )
    return EvalReport(
        protocol=protocol,
        metrics=metrics,
        n_images=len(preds.disps),
        store=str(store_path),
        checkpoint=checkpoint,
        post_process=post_process,
        seconds=time.perf_counter() - start,
        images_written=written,
    )


def load_checkpoint_models(
    path: str | Path, device: torch.device | str = "cpu"
) -> tuple[Models, TrainConfig]:
    """Depth (and pose) networks and the training config of a checkpoint, on ``device``."""
    payload = read_checkpoint(path)
    config = checkpoint_config(payload)
    no_weights = TrainConfig.from_dict(config.to_dict() | {"pretrained": False, "weights": None})
    models = build_models(no_weights, device)
    load_models(payload, models)
    return models, config


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
    open_store(store_path)  # fail early, naming the store, before loading the networks
    dev = resolve_device(device)
    models, config = load_checkpoint_models(checkpoint, dev)
    report = evaluate_models(
        models,
        config,
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
