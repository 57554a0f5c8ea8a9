"""The Depth Hints pass: fused-SGM hints of both views of every frame of a KITTI store.

Like ``precompute_depth_hints.py`` of nianticlabs/depth-hints, the hints come from the *raw*
images, not the store's (smaller) ones, and from the same files the store was made from: the
store's ``source.images`` record says PNG or JPEG (``--image-ext auto``; ``png`` / ``jpg``
choose; a store made from both kinds reads each frame's PNG when there is one, as
``prepare-kitti --image-ext auto`` did). Each camera 02 and 03 image is decoded with PIL
(``Image.open(path).convert("RGB")``, the reference's ``pil_loader``: for a JPEG PIL's own
decoder), resized to the hint size (320 x 1024 by default) with LANCZOS, and handed to
:func:`pipelines.passes.hints.fused_sgm_hints` (12 SGBM matchers, per-pixel photometric choice,
depth in the reference's units: fx = 0.58 W, baseline 0.1, i.e. 5.4x smaller than metres, the
units of Monodepth2's stereo training).

What is stored is what depth-hints' training loader makes of that 320 x 1024 map
(``datasets/mono_dataset.py``), at the store's image size (H, W), float16, 0 = no hint:

* ``hint_depth`` (N, 2, H, W): ``cv2.resize(hint, (W, H), interpolation=cv2.INTER_NEAREST)``;
* ``hint_depth_flipped`` (N, 2, H, W): for a flipped sample the loader flips the full-size map
  *before* that resize, which is not the same pixels as flipping the resized map (nearest
  neighbour picks ``floor(x * 1024 / W)`` from the other side): this array holds
  ``resize(fliplr(hint))`` flipped back to the image's orientation, and the loader
  (:mod:`pipelines.loader.augment`) gives it to flipped samples.

The KITTI root is checked against the store before anything is written
(:func:`check_kitti_root`): every frame needs both raw images, and the first frame of each drive
must look like the stored one. The pass itself is a
:class:`pipelines.passes.store_pass.StorePass`: one dask task per frame chunk (local threads, or
a ``dask.distributed`` scheduler whose workers see the KITTI root and the store), resumable, a
progress bar with frames/s. Frames run in parallel, each on one thread (OpenCV and torch are set
to one thread during a local run and restored after; a distributed worker is set once).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from pipelines.passes.hints import HINT_HEIGHT, HINT_WIDTH, fused_sgm_hints, hint_resolution_image
from pipelines.passes.raw_kitti import (
    SIDES,
    check_kitti_root,
    raw_image_ext,
    raw_image_path,
    read_raw,
)
from pipelines.passes.store_pass import PassReport, StorePass
from pipelines.store.reader import open_store
from pipelines.store.runner import parse_size

HINT_SIZE = (HINT_HEIGHT, HINT_WIDTH)
HINT_ARRAYS = ("hint_depth", "hint_depth_flipped")
LOADER_RESIZE = "cv2.INTER_NEAREST of the hint, flipped samples flipped first (depth-hints' loader)"


def hints_tag(hint_size: tuple[int, int], images: str = "png") -> dict[str, Any]:
    """What ``attrs["hints"]`` records: the method, the size the hints were computed at, the
    image files read (``png``, ``jpg`` or ``auto`` = per frame) and the resize to the store."""
    return {
        "method": "fused-sgm (12 SGBM matchers, depth-hints precompute_depth_hints.py)",
        "hint_size": [int(hint_size[0]), int(hint_size[1])],
        "units": "fx = 0.58 W, baseline 0.1 (x5.4 = metres on KITTI)",
        "images": images,
        "resize": LOADER_RESIZE,
    }


def resize_hint(hint: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """float32 (h, w) hint -> (H, W) = ``size`` as depth-hints' loader resizes it:
    ``cv2.resize(hint, (W, H), interpolation=cv2.INTER_NEAREST)`` (0 stays 0)."""
    if hint.shape == tuple(size):
        return hint
    return cv2.resize(hint, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)


def resize_flipped_hint(hint: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The hint depth-hints' loader gives a flipped sample (``np.fliplr`` of the full-size map,
    then :func:`resize_hint`), flipped back to the image's orientation: float32 (H, W)."""
    flipped = np.ascontiguousarray(hint[:, ::-1])
    return np.ascontiguousarray(resize_hint(flipped, size)[:, ::-1])


@dataclass(frozen=True, eq=False)
class HintChunks:
    """Chunk function of the pass (picklable, for dask.distributed workers).

    Attributes:
        root: KITTI raw root.
        folders: the store's drive folders; ``sequence`` and ``frame`` (N,) per frame row.
        size: the store's image size (H, W); ``hint_size`` the size hints are computed at.
        image_ext: raw files read (``png``, ``jpg`` or ``auto``: see
            :func:`pipelines.passes.raw_kitti.raw_image_ext`).
        one_thread: set OpenCV and torch to one thread on the first call (distributed workers).
    """

    root: Path
    folders: tuple[str, ...]
    sequence: np.ndarray
    frame: np.ndarray
    size: tuple[int, int]
    hint_size: tuple[int, int] = HINT_SIZE
    image_ext: str = "png"
    one_thread: bool = False

    def frame_hints(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """float32 (2, H, W) hints of frame ``row`` (left, right): for unflipped samples and for
        flipped ones (module docstring)."""
        folder, frame = self.folders[int(self.sequence[row])], int(self.frame[row])
        h, w = self.hint_size
        left, right = (
            hint_resolution_image(
                read_raw(raw_image_path(self.root, folder, frame, s, self.image_ext)), h, w
            )
            for s in SIDES
        )
        hints = fused_sgm_hints(left, right)
        return (
            np.stack([resize_hint(x, self.size) for x in hints]),
            np.stack([resize_flipped_hint(x, self.size) for x in hints]),
        )

    def __call__(self, rows: slice) -> tuple[np.ndarray, np.ndarray]:
        if self.one_thread:
            cv2.setNumThreads(1)
            torch.set_num_threads(1)
        shape = (rows.stop - rows.start, 2, *self.size)
        plain, flipped = np.empty(shape, np.float16), np.empty(shape, np.float16)
        for i, row in enumerate(range(rows.start, rows.stop)):
            plain[i], flipped[i] = self.frame_hints(row)
        return plain, flipped


def compute_hints(
    store_path: str | Path,
    kitti_root: str | Path,
    *,
    hint_size: tuple[int, int] | str = HINT_SIZE,
    image_ext: str = "auto",
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> PassReport:
    """Fill ``hint_depth`` and ``hint_depth_flipped`` of a complete two-view KITTI store from
    the raw images (module docstring), resumably; refuses before any work an incomplete store,
    other settings already there (unless ``overwrite``) and a root that does not hold the
    store's frames. ``hint_size``: (H, W) or ``"HxW"``; ``image_ext``: see
    :func:`raw_image_ext`."""
    root = Path(kitti_root)
    if isinstance(hint_size, str):
        hint_size = parse_size(hint_size)
    ext = raw_image_ext(open_store(store_path), image_ext)
    tag = hints_tag(hint_size, ext)
    job = StorePass(store_path, HINT_ARRAYS, "hints", tag, overwrite=overwrite, label="hints")
    store = job.store
    check_kitti_root(store, root, ext, what="hints", views=2)
    chunks = HintChunks(
        root=root,
        folders=tuple(store.sequences),
        sequence=np.asarray(store["sequence"][...]),
        frame=np.asarray(store["frame"][...]),
        size=store.image_size,
        hint_size=(int(hint_size[0]), int(hint_size[1])),
        image_ext=ext,
        one_thread=scheduler is not None,
    )
    job.start()
    with _one_thread(scheduler is None):
        return job.run(chunks, workers=workers, scheduler=scheduler, progress=progress)


@contextmanager
def _one_thread(enabled: bool) -> Iterator[None]:
    """OpenCV and torch on one thread each (frames run in parallel instead), then restored."""
    if not enabled:
        yield
        return
    cv_threads, torch_threads = cv2.getNumThreads(), torch.get_num_threads()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(cv_threads)
        torch.set_num_threads(torch_threads)
