"""DeepLabv3 segmentation masks: fill a store's ``seg`` array with VOC class indices.

SegDepth (``kitti.md`` section 11) fed BGR images to a COCO-with-VOC-labels DeepLabv3; here the
default recipe feeds the store's RGB images, as the weights expect
(:mod:`pipelines.passes.segdepth_masks` is SegDepth's own recipe, ``masks --recipe
segdepth``). Weights come from the local torch hub cache or a file, never from the network.
``seg`` is filled chunk by chunk (:mod:`pipelines.passes.store_pass`), so an interrupted run
resumes where it stopped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision.models.segmentation import (
    DeepLabV3_MobileNet_V3_Large_Weights,
    DeepLabV3_ResNet50_Weights,
    DeepLabV3_ResNet101_Weights,
    deeplabv3_mobilenet_v3_large,
    deeplabv3_resnet50,
    deeplabv3_resnet101,
)

from pipelines.loader.device import resolve_device
from pipelines.loader.weights import (
    MissingWeightsError,
    cached_weights_path,
    load_state_dict_file,
)
from pipelines.passes.store_pass import PassReport, StorePass
from pipelines.store.schema import SEG_CLASSES

ARCHS: dict[str, tuple[Callable[..., torch.nn.Module], Any]] = {
    "mobilenet_v3_large": (deeplabv3_mobilenet_v3_large, DeepLabV3_MobileNet_V3_Large_Weights),
    "resnet50": (deeplabv3_resnet50, DeepLabV3_ResNet50_Weights),
    "resnet101": (deeplabv3_resnet101, DeepLabV3_ResNet101_Weights),
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def weights_file(arch: str) -> Path:
    """Where torchvision's COCO_WITH_VOC_LABELS_V1 weights of ``arch`` live in the hub cache."""
    return cached_weights_path(_arch(arch)[1].COCO_WITH_VOC_LABELS_V1)


def build_segmenter(
    arch: str = "mobilenet_v3_large",
    weights: str | Path | None = "default",
    device: str | torch.device | None = None,
) -> torch.nn.Module:
    """DeepLabv3 in eval mode on ``device`` (default: CUDA when available), 21 VOC classes.

    ``weights``: ``"default"`` = COCO_WITH_VOC_LABELS_V1 from the torch hub cache
    (:func:`weights_file`), a path = a state dict file, None = random init (tests). The auxiliary
    head is not built (unused at inference). Raises MissingWeightsError when the file is absent.
    """
    builder, enum = _arch(arch)
    model = builder(weights=None, weights_backbone=None, num_classes=SEG_CLASSES, aux_loss=False)
    if weights is not None:
        default = str(weights) == "default"
        path = weights_file(arch) if default else Path(weights)
        if not path.is_file() and not default:
            raise MissingWeightsError(f"--seg-weights {path}: file not found")
        if not path.is_file():
            url = enum.COCO_WITH_VOC_LABELS_V1.url
            raise MissingWeightsError(
                f"DeepLabv3 {arch} weights not found: {path} is missing from the torch hub "
                f"cache (download {url} into {path.parent}), or pass --seg-weights FILE"
            )
        _load_weights(model, path, arch)
    return model.eval().to(resolve_device(device))


def segment(
    model: torch.nn.Module, images: np.ndarray | torch.Tensor, batch_size: int = 16
) -> np.ndarray:
    """Class index per pixel: uint8 RGB (B, H, W, 3) -> uint8 (B, H, W) in 0..20.

    Images are scaled to [0, 1] and ImageNet-normalised in RGB order, run in batches of
    ``batch_size`` on the model's device; the output is at the input size.
    """
    x = torch.as_tensor(images)
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"segment expects uint8 (B, H, W, 3) RGB, got {x.dtype} {tuple(x.shape)}")
    device = next(model.parameters()).device
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    out = np.empty(x.shape[:3], dtype=np.uint8)
    with torch.inference_mode():
        for i in range(0, x.shape[0], batch_size):
            batch = x[i : i + batch_size].to(device, non_blocking=True).permute(0, 3, 1, 2)
            batch = (batch.float() / 255.0 - mean) / std
            logits = model(batch)["out"]
            if logits.shape[-2:] != batch.shape[-2:]:
                logits = torch.nn.functional.interpolate(
                    logits, size=batch.shape[-2:], mode="bilinear", align_corners=False
                )
            out[i : i + batch_size] = logits.argmax(1).to(torch.uint8).cpu().numpy()
    return out


MaskReport = PassReport
"""What :func:`compute_masks` did (chunks, skipped, computed, frames, images, seconds)."""


def compute_masks(
    store_path: str | Path,
    arch: str = "mobilenet_v3_large",
    weights: str | Path | None = "default",
    batch_size: int = 16,
    device: str | None = None,
    progress: bool = True,
    overwrite: bool = False,
    workers: int = 2,
) -> MaskReport:
    """Fill ``seg`` of a complete store with DeepLabv3 class indices, resumably.

    An incomplete store is refused (:class:`pipelines.store.IncompleteStoreError`).

    Creates ``seg`` (all 255) when absent; processes one frame chunk (all its views) per dask
    task (:class:`pipelines.passes.store_pass.StorePass`) and skips chunks already computed.
    Records ``{"arch", "weights"}`` in the ``masks`` attribute and re-consolidates the store's
    metadata before filling. A store whose masks came from another model is refused unless
    ``overwrite``, which recomputes every chunk. ``workers`` threads read and write chunks
    while one of them runs the model (its calls are serialised).
    """
    tag = {"arch": arch, "weights": weights_tag(weights)}
    job = StorePass(store_path, "seg", "masks", tag, overwrite=overwrite, label="masks")
    model = build_segmenter(arch, weights, device)  # missing weights: nothing written yet
    job.start()
    image = job.store["image"]
    lock = threading.Lock()

    def compute(rows: slice) -> np.ndarray:
        frames = np.asarray(image[rows])
        flat = frames.reshape(-1, *frames.shape[2:])  # (C * V, H, W, 3)
        with lock:
            labels = segment(model, flat, batch_size)
        return labels.reshape(frames.shape[:4])

    return job.run(compute, workers=workers, progress=progress)


def _arch(arch: str) -> tuple[Callable[..., torch.nn.Module], Any]:
    if arch not in ARCHS:
        raise ValueError(f"unknown DeepLabv3 arch {arch!r}; choose from {sorted(ARCHS)}")
    return ARCHS[arch]


def mask_device(device: str | None) -> tuple[torch.device, str]:
    """The device the masks pass runs on, and a note when it falls back to the CPU because
    no device was named and CUDA is not available (empty otherwise)."""
    resolved = resolve_device(device)
    if device is None and resolved.type == "cpu":
        return resolved, "masks: CUDA is not available, DeepLabv3 runs on the CPU (slower)"
    return resolved, ""


def _load_weights(model: torch.nn.Module, path: Path, arch: str) -> None:
    try:
        state = load_state_dict_file(path)
    except ValueError as e:
        reason = str(e).replace(f"cannot read weights file {path}: ", "")
        raise ValueError(
            f"--seg-weights {path}: {reason.replace(f'weights file {path} ', '')}"
        ) from e
    state = {k: v for k, v in state.items() if not k.startswith("aux_classifier.")}
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"{path}: weights do not fit DeepLabv3 {arch}: {str(e)[:300]}") from e


def weights_tag(weights: str | Path | None) -> str:
    """How ``attrs["masks"]`` names the weights: ``random``, the default enum, or the file."""
    if weights is None:
        return "random"
    return "COCO_WITH_VOC_LABELS_V1" if str(weights) == "default" else Path(weights).name


def check_weights(arch: str, seg_weights: str | Path | None) -> str | Path:
    """Fail before a long conversion when the DeepLabv3 weights are not on disk.

    Returns what :func:`compute_masks` takes as ``weights``: the file, or ``"default"``.
    """
    if seg_weights:
        path = Path(seg_weights)
        if not path.is_file():
            raise MissingWeightsError(f"{path}: --seg-weights file not found")
        return path
    if not weights_file(arch).is_file():
        build_segmenter(arch, "default", "cpu")  # raises the detailed message
    return "default"
