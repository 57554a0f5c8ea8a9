"""Training data path: batches, the streaming dataset, sharding, shared memory, augmentation.

``train/`` imports its data path from here (and the store from :mod:`pipelines.store`):

* :func:`make_loader` / :class:`StoreDataset` stream uint8 :class:`Sample` / :class:`Batch`
  objects chunk by chunk from a store (:mod:`pipelines.loader.dataset`, sharding rules in
  :mod:`pipelines.loader.sharding`, shared-memory buffers in :mod:`pipelines.loader.shm`);
* :class:`Augment` turns a batch on the training device into :class:`Augmented` inputs
  (:mod:`pipelines.loader.augment`, colour jitter in :mod:`pipelines.loader.colour`).

Also the one device resolver (:func:`resolve_device`) and the one weights resolver
(:mod:`pipelines.loader.weights`) that training and the store passes share. Imports torch (unlike
:mod:`pipelines.store`).
"""

from __future__ import annotations

from pipelines.loader.augment import (
    Augment,
    AugmentConfig,
    AugmentDraw,
    Augmented,
    flip_images,
    image_pyramid,
    pixel_intrinsics,
    resize_bilinear,
    resize_nearest,
    stereo_transform,
)
from pipelines.loader.batch import IMAGE_FIELDS, Batch, Sample, collate
from pipelines.loader.colour import JitterParams, color_jitter
from pipelines.loader.dataset import StoreDataset, make_loader
from pipelines.loader.device import resolve_device, resolve_workers
from pipelines.loader.sharding import EVEN_MODES, slot_buffers, slot_range

__all__ = [
    "EVEN_MODES",
    "IMAGE_FIELDS",
    "Augment",
    "AugmentConfig",
    "AugmentDraw",
    "Augmented",
    "Batch",
    "JitterParams",
    "Sample",
    "StoreDataset",
    "collate",
    "color_jitter",
    "flip_images",
    "image_pyramid",
    "make_loader",
    "pixel_intrinsics",
    "resize_bilinear",
    "resolve_device",
    "resolve_workers",
    "resize_nearest",
    "slot_buffers",
    "slot_range",
    "stereo_transform",
]
