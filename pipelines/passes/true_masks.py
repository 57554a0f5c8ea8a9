"""``seg`` from a synthetic KITTI world's true object masks (tests and benchmarks).

A world written with ``write_kitti(..., masks=True)`` holds ``masks.npz``: per drive and colour
camera the VOC class of every native pixel (7 = car, 0 = background). This pass fills a store's
``seg`` from it, each mask resized to the store size by nearest pixel centre, through the same
:class:`~pipelines.passes.store_pass.StorePass` as DeepLabv3 (``attrs["masks"]`` records
``{"arch": "synthetic-truth", ...}``), so SegDepth trains on a synthetic store without DeepLabv3
weights.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pipelines.passes.store_pass import PassReport, StorePass

TAG = {"arch": "synthetic-truth", "weights": "masks.npz"}


def fill_true_masks(
    store_path: str | Path, world: str | Path, *, progress: bool = False, overwrite: bool = False
) -> PassReport:
    """Fill ``seg`` of the complete KITTI store at ``store_path`` from ``world/masks.npz``.

    Raises:
        ValueError: no ``masks.npz`` in ``world`` (write the world with ``masks=True``), or a
            frame of the store that it does not hold.
    """
    path = Path(world) / "masks.npz"
    if not path.is_file():
        raise ValueError(f"{path}: no true masks (write the world with write_kitti(masks=True))")
    job = StorePass(store_path, "seg", "masks", TAG, overwrite=overwrite, label="true masks")
    store = job.store
    cameras = [int(view[-1]) for view in store.camera.get("views", ["image_02", "image_03"])]
    with np.load(path) as data:
        masks = {key: data[key] for key in data.files}
    folders = store.sequences
    sequence = np.asarray(store["sequence"][...])
    frame = np.asarray(store["frame_in_sequence"][...])
    h, w = store.image_size
    for q in np.unique(sequence):
        for cam in cameras[: store.views]:
            key = f"{folders[q]}/image_0{cam}"
            needed = int(frame[sequence == q].max())
            if key not in masks or len(masks[key]) <= needed:
                raise ValueError(f"{path}: no mask {key} for frame {needed}")
    job.start()

    def compute(rows: slice) -> np.ndarray:
        out = np.empty((rows.stop - rows.start, store.views, h, w), dtype=np.uint8)
        for i, row in enumerate(range(rows.start, rows.stop)):
            for v, cam in enumerate(cameras[: store.views]):
                mask = masks[f"{folders[sequence[row]]}/image_0{cam}"][frame[row]]
                out[i, v] = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST_EXACT)
        return out

    return job.run(compute, workers=1, progress=progress)
