"""KITTI "annotated depth" (improved ground truth) PNG maps (spec kitti.md section 9)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def read_improved_gt(path: str | Path) -> np.ndarray:
    """Read an annotated-depth PNG: float32 (H, W) metres = uint16 value / 256, 0 = invalid.

    Raises:
        ValueError: the file is missing or unreadable, or is not a single-channel 16-bit PNG.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError:
        data = b""
    # A cut file is refused before OpenCV's libpng prints "libpng error: Read Error" on stderr.
    image = None
    if b"IEND" in data[-64:]:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"{path}: cannot read depth PNG (missing, truncated or not an image)")
    if image.dtype != np.uint16 or image.ndim != 2:
        raise ValueError(
            f"{path}: expected a single-channel 16-bit depth PNG, got {image.dtype} "
            f"with shape {image.shape}"
        )
    return image.astype(np.float32) / 256
