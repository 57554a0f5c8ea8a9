"""Computations that add an array to a finished store (imports torch).

* :mod:`~pipelines.passes.store_pass`: what every pass shares (:class:`StorePass`: refuse an
  incomplete store or another tag, create the array, tag and consolidate, then one dask task
  per frame chunk, resumable, with a progress bar);
* :mod:`~pipelines.passes.masks`: DeepLabv3 class masks into ``seg``;
  :mod:`~pipelines.passes.segdepth_masks`: SegDepth's own recipe of them, from the raw PNGs;
* :mod:`~pipelines.passes.hints` and :mod:`~pipelines.passes.hints_pass`: Depth Hints' fused-SGM
  hints of the raw stereo pairs into ``hint_depth`` and ``hint_depth_flipped``;
* :mod:`~pipelines.passes.raw_kitti`: the raw KITTI files a pass reads (those the store was made
  from) and the check that a root holds the store's frames;
* :mod:`~pipelines.passes.true_masks`: ``seg`` from a synthetic world's true object masks.

A pass opens the store with ``open_store(path, mode="r+", require_complete=True)``, creates its
array with :func:`pipelines.store.create_schema_array` (schema dtype, chunks and dimension
names), records what it used in an attribute, and then calls
:func:`pipelines.store.arrays.consolidate`, so that ``xarray.open_zarr`` sees the new array;
filling chunks afterwards leaves the metadata alone, so an interrupted pass stays consistent; each
chunk's writer settings are recorded (:mod:`pipelines.store.passrecord`).
"""

from __future__ import annotations

from pipelines.passes.hints_pass import compute_hints
from pipelines.passes.masks import (
    MaskReport,
    MissingWeightsError,
    build_segmenter,
    check_weights,
    compute_masks,
    segment,
    weights_file,
)
from pipelines.passes.raw_kitti import check_kitti_root
from pipelines.passes.segdepth_masks import compute_segdepth_masks
from pipelines.passes.store_pass import PassReport, StorePass
from pipelines.passes.true_masks import fill_true_masks

__all__ = [
    "MaskReport",
    "MissingWeightsError",
    "PassReport",
    "StorePass",
    "build_segmenter",
    "check_kitti_root",
    "check_weights",
    "compute_hints",
    "compute_masks",
    "compute_segdepth_masks",
    "fill_true_masks",
    "segment",
    "weights_file",
]
