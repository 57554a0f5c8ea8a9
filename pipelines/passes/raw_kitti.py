"""The raw KITTI images a pass reads, and the check that a root holds a store's frames.

A pass that works from the raw files (:mod:`~pipelines.passes.hints_pass`,
:mod:`~pipelines.passes.segdepth_masks`) reads the same files the store was made from:
``prepare-kitti`` records ``png``, ``jpg`` or ``mixed`` in ``source.images``
(:func:`raw_image_ext`). Before writing anything it checks the root
(:func:`check_kitti_root`): every frame's images exist, and the first frame of each drive looks
like the stored one.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

import kitti
from pipelines.store.reader import Store

IMAGE_EXTS = ("auto", "png", "jpg")
# Mean absolute difference (grey levels) above which a raw image is not the stored frame.
MATCH_TOLERANCE = 4.0
SIDES = ("l", "r")  # views 0 and 1: cameras 02 and 03


def raw_image_ext(store: Store, option: str = "auto") -> str:
    """The raw files a pass reads: ``png`` or ``jpg``, or ``auto`` (per frame, the PNG when
    there is one). ``option`` ``auto`` follows the store's ``source.images`` record (the files
    the store was made from); a store made from both kinds, or without the record, reads per
    frame."""
    if option not in IMAGE_EXTS:
        raise ValueError(f"--image-ext {option!r} must be one of {', '.join(IMAGE_EXTS)}")
    if option != "auto":
        return option
    recorded = (store.source.get("images") or {}).get("ext")
    return recorded if recorded in ("png", "jpg") else "auto"


def raw_image_path(root: Path, folder: str, frame: int, side: str, ext: str) -> Path:
    """The colour image of ``side`` for ``frame``: ``.png`` / ``.jpg`` per ``ext``; ``auto``:
    the PNG when it exists, else the JPEG."""
    if ext != "auto":
        return kitti.image_path(root, folder, frame, side, f".{ext}")
    png = kitti.image_path(root, folder, frame, side, ".png")
    return png if png.is_file() else kitti.image_path(root, folder, frame, side, ".jpg")


def read_raw(path: Path) -> Image.Image:
    """A raw KITTI colour image as an RGB PIL image, decoded as depth-hints' ``pil_loader``
    does (ValueError naming the file otherwise)."""
    try:
        with open(path, "rb") as f, Image.open(f) as image:
            return image.convert("RGB")
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read image ({e})") from e


def check_kitti_root(
    store: Store, root: Path, image_ext: str = "auto", *, what: str = "hints", views: int = 2
) -> None:
    """Refuse (one line) a store the pass cannot fill or a root that does not hold its frames.

    The store must be a KITTI store with ``views`` views (``what`` names the pass); every frame
    needs its raw images under ``root`` (the files :func:`raw_image_ext` chooses for
    ``image_ext``); the first frame of every drive, resized to the store size, must match the
    stored images within :data:`MATCH_TOLERANCE` grey levels. Reads one frame per drive.
    """
    if store.dataset != "kitti-raw" or (views and store.views != views):
        kind = "a two-view KITTI training store" if views == 2 else "a KITTI store"
        raise ValueError(
            f"{store.path}: {what} need {kind} "
            f"(this one is {store.dataset} with {store.views} view(s))"
        )
    if not root.is_dir():
        raise ValueError(f"{root}: --kitti-root is not a folder")
    ext = raw_image_ext(store, image_ext)
    folders = store.sequences
    sequence, frame = np.asarray(store["sequence"][...]), np.asarray(store["frame"][...])
    paths = [
        raw_image_path(root, folders[q], int(f), s, ext)
        for q, f in zip(sequence, frame, strict=True)
        for s in SIDES[: store.views]
    ]
    missing = [path for path in paths if not path.is_file()]
    if missing:
        made = (store.source.get("images") or {}).get("ext")
        from_files = f" (the store was made from {made} files)" if made else ""
        raise ValueError(
            f"{root}: {len(missing)} raw image(s) of the store's frames are missing, e.g. "
            f"{missing[0]}; pass the KITTI root {store.path} was prepared from{from_files}"
        )
    h, w = store.image_size
    for q in np.unique(sequence):
        row = int(np.flatnonzero(sequence == q)[0])
        stored = np.asarray(store["image"][row])
        for v, side in enumerate(SIDES[: store.views]):
            path = raw_image_path(root, folders[q], int(frame[row]), side, ext)
            raw = np.asarray(read_raw(path))
            shrink = h <= raw.shape[0] and w <= raw.shape[1]
            interp = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
            resized = cv2.resize(raw, (w, h), interpolation=interp)
            diff = float(np.abs(resized.astype(np.float32) - stored[v]).mean())
            if diff > MATCH_TOLERANCE:
                raise ValueError(
                    f"{root}: the raw images do not match the store's frames ({path} differs "
                    f"from row {row} view {v} by {diff:.1f} grey levels on average); pass the "
                    f"KITTI root {store.path} was prepared from"
                )
