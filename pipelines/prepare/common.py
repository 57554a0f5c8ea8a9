"""What ``prepare-kitti`` and ``prepare-nyu`` share: resized intrinsics, provenance, masks.

Both commands resize images pixel centre onto pixel centre (:func:`resized_intrinsics`), record
the package version in each store's ``source`` (:func:`package_version`), and optionally run the
DeepLabv3 pass (:mod:`pipelines.passes.masks`) over their training stores after converting:
:func:`mask_weights` fails before any conversion when the weights are missing, :func:`run_masks`
fills ``seg`` afterwards, :func:`mask_args` spells the options in the canonical command line.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

MASKS = ("none", "deeplabv3")


def resized_intrinsics(K: np.ndarray, native: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """Pixel intrinsics after resizing an image from ``native`` to ``size`` (both (H, W)).

    Pixel centres sit at integer coordinates (the convention of KITTI and of the NYU toolbox)
    and the resize maps pixel centres onto pixel centres, so ``fx' = fx * sx`` and
    ``cx' = (cx + 0.5) * sx - 0.5`` with ``sx = W / W_native`` (rows likewise with ``sy``).

    Args:
        K: (3, 3) pixel intrinsics at the native size.

    Returns:
        float64 (3, 3) intrinsics at ``size``.
    """
    sy, sx = size[0] / native[0], size[1] / native[1]
    out = np.array(K, dtype=np.float64, copy=True)
    out[0, :2] *= sx
    out[1, 1] *= sy
    out[0, 2] = (out[0, 2] + 0.5) * sx - 0.5
    out[1, 2] = (out[1, 2] + 0.5) * sy - 0.5
    return out


def package_version() -> str:
    """Installed depthkit version (recorded in each store's ``source``), or ``unknown``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("depthkit")
    except PackageNotFoundError:
        return "unknown"


def check_masks_option(masks: str) -> None:
    """ValueError unless ``masks`` (``--masks``) is one of :data:`MASKS`."""
    if masks not in MASKS:
        raise ValueError(f"--masks {masks!r} must be one of {', '.join(MASKS)}")


def mask_weights(masks: str, seg_arch: str, seg_weights: str | Path | None) -> str | Path | None:
    """The ``weights`` :func:`run_masks` takes, or None when ``masks`` is ``"none"``.

    Call it before converting: it raises (MissingWeightsError, a ValueError) when DeepLabv3
    weights are asked for and are not on disk, so a long conversion never ends in that error.
    """
    check_masks_option(masks)
    if masks == "none":
        return None
    from pipelines.passes.masks import check_weights  # imports torch: only when needed

    return check_weights(seg_arch, seg_weights)


def run_masks(
    urls: Iterable[str], seg_arch: str, weights: str | Path | None, progress: bool
) -> tuple[Any, ...]:
    """Fill ``seg`` of the stores at ``urls`` (nothing when ``weights`` is None); one
    :class:`pipelines.passes.masks.MaskReport` per store."""
    if weights is None:
        return ()
    from pipelines.passes.masks import compute_masks

    return tuple(compute_masks(url, seg_arch, weights, progress=progress) for url in urls)


def mask_args(masks: str, seg_arch: str, seg_weights: str | Path | None) -> list[str]:
    """The masks options of a canonical command line: ``--masks`` and, with masks, the model."""
    parts = ["--masks", masks]
    if masks != "none":
        parts += ["--seg-arch", seg_arch]
        if seg_weights:
            parts += ["--seg-weights", str(seg_weights)]
    return parts
