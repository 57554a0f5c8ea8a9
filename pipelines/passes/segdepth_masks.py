"""SegDepth's own masks: ``create_segmentation_masks.py`` of hakansivuk/SegDepth (kitti.md 11).

``cli.py masks STORE --recipe segdepth --kitti-root ROOT`` computes, for every frame and view
of a 192 x 640 KITTI store, what the reference computed from the raw PNG:

1. ``cv2.imread(path)``: uint8 **BGR**, never converted (DeepLabv3 sees it as if RGB);
2. ``cv2.resize(img, (640, 192), cv2.INTER_AREA)``: the flag lands in the ``dst`` slot, so the
   interpolation is OpenCV's default bilinear (:func:`segdepth_input` calls it so);
3. HWC -> CHW, ``/ 255.0`` in float64, ImageNet mean and std in that channel order (on the B,
   G, R planes), cast to float32;
4. torchvision ``deeplabv3_mobilenet_v3_large`` (COCO-with-VOC-labels weights, or a state dict
   from ``--seg-weights``) in eval mode; ``argmax`` over the 21 classes.

``seg`` keeps the class index (as the default recipe does); the reference's mask is
``argmax > 0``, what SegDepth trains on (``seg > 0``). The store must be 192 x 640 (the
reference never resamples its masks) and the PNGs must be there (the reference reads only
``.png``). The default recipe (:mod:`pipelines.passes.masks`: the store's RGB images, area
resized) stays the default; the SegDepth presets' header names the difference.
"""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import torch

from pipelines.passes.masks import IMAGENET_MEAN, IMAGENET_STD, build_segmenter, weights_tag
from pipelines.passes.raw_kitti import SIDES, check_kitti_root, raw_image_path
from pipelines.passes.store_pass import PassReport, StorePass
from pipelines.store.reader import open_store

SEGDEPTH_SIZE = (192, 640)
SEGDEPTH_ARCH = "mobilenet_v3_large"
RECIPE = "segdepth: create_segmentation_masks.py (raw PNG, cv2 BGR, bilinear 640x192)"


def segdepth_tag(weights: str | Path | None) -> dict[str, str]:
    """What ``attrs["masks"]`` records for SegDepth's recipe."""
    return {"arch": SEGDEPTH_ARCH, "weights": weights_tag(weights), "recipe": RECIPE}


def read_bgr(path: Path) -> np.ndarray:
    """``cv2.imread(path)``: uint8 (H, W, 3) BGR (ValueError naming the file when unreadable)."""
    image = cv2.imread(str(path))
    if image is None:
        raise ValueError(f"{path}: cannot read image (missing, truncated or not a PNG)")
    return image


def segdepth_input(bgr: np.ndarray) -> np.ndarray:
    """The reference's network input of one image: float32 (3, 192, 640), C-contiguous (module
    docstring)."""
    # The reference's call: its third positional argument is dst, so the resize is bilinear.
    small = cv2.resize(bgr, SEGDEPTH_SIZE[::-1], interpolation=cv2.INTER_LINEAR)
    x = np.ascontiguousarray(small.transpose(2, 0, 1)) / 255.0  # CHW memory, as np.array([..])
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float64)[:, None, None]
    std = np.asarray(IMAGENET_STD, dtype=np.float64)[:, None, None]
    return ((x - mean) / std).astype(np.float32)


def segdepth_labels(model: torch.nn.Module, inputs: np.ndarray, batch_size: int) -> np.ndarray:
    """Class index per pixel: float32 (N, 3, 192, 640) inputs -> uint8 (N, 192, 640)."""
    device = next(model.parameters()).device
    out = np.empty((inputs.shape[0], *inputs.shape[2:]), dtype=np.uint8)
    with torch.inference_mode():
        for i in range(0, inputs.shape[0], batch_size):
            # C-contiguous NCHW as the reference's tensor: a channels-last input takes another
            # convolution path, whose rounding can flip a near-tie between two classes.
            batch = torch.from_numpy(np.ascontiguousarray(inputs[i : i + batch_size])).to(device)
            out[i : i + batch_size] = model(batch)["out"].argmax(1).to(torch.uint8).cpu().numpy()
    return out


def compute_segdepth_masks(
    store_path: str | Path,
    kitti_root: str | Path,
    weights: str | Path | None = "default",
    *,
    batch_size: int = 1,
    device: str | None = None,
    progress: bool = True,
    overwrite: bool = False,
    workers: int = 2,
) -> PassReport:
    """Fill ``seg`` of a complete 192 x 640 KITTI store with SegDepth's masks (module docstring),
    resumably. Refuses before any work: another store kind or size, missing PNGs, a root that
    is not the store's, masks of other settings already there (unless ``overwrite``), missing
    weights. ``batch_size`` 1 runs the reference's arithmetic (one image per forward); larger
    batches are faster but may flip a pixel whose two best classes tie within float rounding."""
    root = Path(kitti_root)
    store = open_store(store_path)
    if store.dataset == "kitti-raw" and tuple(store.image_size) != SEGDEPTH_SIZE:
        h, w = store.image_size
        raise ValueError(
            f"{store.path}: SegDepth's masks are 192x640 (create_segmentation_masks.py never "
            f"resamples them), the store is {h}x{w}: prepare it with --size 192x640"
        )
    job = StorePass(store_path, "seg", "masks", segdepth_tag(weights), overwrite=overwrite,
                    label="masks (segdepth)")  # fmt: skip
    store = job.store
    check_kitti_root(store, root, "png", what="SegDepth's masks", views=0)
    model = build_segmenter(SEGDEPTH_ARCH, weights, device)  # missing weights: nothing written
    job.start()
    folders, views = store.sequences, store.views
    sequence, frame = np.asarray(store["sequence"][...]), np.asarray(store["frame"][...])
    lock = threading.Lock()

    def compute(rows: slice) -> np.ndarray:
        inputs = np.stack(
            [
                segdepth_input(
                    read_bgr(raw_image_path(root, folders[sequence[r]], int(frame[r]), side, "png"))
                )  # fmt: skip
                for r in range(rows.start, rows.stop)
                for side in SIDES[:views]
            ]
        )
        with lock:
            labels = segdepth_labels(model, inputs, batch_size)
        return labels.reshape(rows.stop - rows.start, views, *SEGDEPTH_SIZE)

    return job.run(compute, workers=workers, progress=progress)
