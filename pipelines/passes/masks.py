"""DeepLabv3 segmentation masks: fill a store's ``seg`` array with VOC class indices.

SegDepth (``kitti.md`` section 11) fed BGR images to a COCO-with-VOC-labels DeepLabv3; here the
images are RGB, as the weights expect. Weights come from the local torch hub cache or a file,
never from the network. ``seg`` is filled chunk by chunk; a chunk still all 255
(``SEG_NOT_COMPUTED``) is pending, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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
from pipelines.store.arrays import consolidate, create_schema_array
from pipelines.store.reader import open_store
from pipelines.store.schema import SEG_CLASSES, SEG_NOT_COMPUTED

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
        path = weights_file(arch) if str(weights) == "default" else Path(weights)
        if not path.is_file():
            url = enum.COCO_WITH_VOC_LABELS_V1.url
            raise MissingWeightsError(
                f"DeepLabv3 {arch} weights not found: need {path.name} at {path} "
                f"(download {url} into {path.parent}), or pass --seg-weights FILE"
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


@dataclass(frozen=True)
class MaskReport:
    """What :func:`compute_masks` did."""

    chunks: int  # frame chunks in the store
    skipped: int  # chunks already done before this run
    computed: int  # chunks computed now
    images: int  # images (frames x views) segmented now
    seconds: float

    def __str__(self) -> str:
        rate = self.images / self.seconds if self.seconds > 0 else 0.0
        return (
            f"masks: {self.computed} chunks ({self.images} images) computed, "
            f"{self.skipped} already done, {self.chunks} in all, {rate:.1f} images/s"
        )


def compute_masks(
    store_path: str | Path,
    arch: str = "mobilenet_v3_large",
    weights: str | Path | None = "default",
    batch_size: int = 16,
    device: str | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> MaskReport:
    """Fill ``seg`` of a complete store with DeepLabv3 class indices, resumably.

    An incomplete store is refused (:class:`pipelines.store.IncompleteStoreError`).

    Creates ``seg`` (all 255) when absent; processes one frame chunk (all its views) at a time
    and skips chunks already computed. Records ``{"arch", "weights"}`` in the ``masks``
    attribute and re-consolidates the store's metadata before filling. A store whose masks came
    from another model is refused unless ``overwrite``, which recomputes every chunk.
    """
    store = open_store(store_path, mode="r+", require_complete=True)
    tag = {"arch": arch, "weights": _weights_tag(weights)}
    previous = store.attrs.get("masks")
    if store.has("seg") and previous not in (None, tag) and not overwrite:
        raise ValueError(
            f"{store.path}: seg was computed with {previous}, not {tag}; pass --overwrite"
        )
    model = build_segmenter(arch, weights, device)
    if not store.has("seg"):
        create_schema_array(store.group, "seg", store.layout)
    store.group.attrs.update({"masks": tag})
    consolidate(store.group)  # the metadata changed (seg, masks); filling chunks leaves it alone
    seg, image = store.group["seg"], store["image"]
    chunk, n = store.chunk, store.n_frames
    starts = list(range(0, n, chunk))

    def load(start: int) -> np.ndarray | None:
        rows = slice(start, min(start + chunk, n))
        if not overwrite and (seg[rows] != SEG_NOT_COMPUTED).any():
            return None  # done before
        return np.asarray(image[rows])

    t0, computed, images = time.perf_counter(), 0, 0
    with ThreadPoolExecutor(1) as pool, _progress(progress, len(starts)) as advance:
        ahead = pool.submit(load, starts[0]) if starts else None
        for k, start in enumerate(starts):
            frames = ahead.result()  # type: ignore[union-attr]
            ahead = pool.submit(load, starts[k + 1]) if k + 1 < len(starts) else None
            if frames is not None:
                flat = frames.reshape(-1, *frames.shape[2:])  # (C * V, H, W, 3)
                labels = segment(model, flat, batch_size).reshape(frames.shape[:4])
                seg[start : start + frames.shape[0]] = labels
                computed, images = computed + 1, images + flat.shape[0]
            advance()
    return MaskReport(len(starts), len(starts) - computed, computed, images,
                      time.perf_counter() - t0)  # fmt: skip


class _progress:
    """Rich progress bar over chunks (or nothing); the context value advances it by one."""

    def __init__(self, enabled: bool, total: int) -> None:
        from rich.progress import Progress

        self._bar = Progress(disable=not enabled, transient=False)
        self._task = self._bar.add_task("masks", total=total)

    def __enter__(self) -> Callable[[], None]:
        self._bar.__enter__()
        return lambda: self._bar.advance(self._task)

    def __exit__(self, *exc: object) -> None:
        self._bar.__exit__(*exc)  # type: ignore[arg-type]


def _arch(arch: str) -> tuple[Callable[..., torch.nn.Module], Any]:
    if arch not in ARCHS:
        raise ValueError(f"unknown DeepLabv3 arch {arch!r}; choose from {sorted(ARCHS)}")
    return ARCHS[arch]


def _load_weights(model: torch.nn.Module, path: Path, arch: str) -> None:
    state = load_state_dict_file(path)
    state = {k: v for k, v in state.items() if not k.startswith("aux_classifier.")}
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"{path}: weights do not fit DeepLabv3 {arch}: {str(e)[:300]}") from e


def _weights_tag(weights: str | Path | None) -> str:
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
