"""Computations that add an array to a finished store (imports torch).

* :mod:`~pipelines.passes.masks`: DeepLabv3 class masks into ``seg``.

A pass opens the store with ``open_store(path, mode="r+", require_complete=True)``, creates its
array with :func:`pipelines.store.create_schema_array` (schema dtype, chunks and dimension
names), records what it used in an attribute, and then calls
:func:`pipelines.store.arrays.consolidate`, so that ``xarray.open_zarr`` sees the new array;
filling chunks afterwards leaves the metadata alone, so an interrupted pass stays consistent.
"""

from __future__ import annotations

from pipelines.passes.masks import (
    MaskReport,
    MissingWeightsError,
    build_segmenter,
    check_weights,
    compute_masks,
    segment,
    weights_file,
)

__all__ = [
    "MaskReport",
    "MissingWeightsError",
    "build_segmenter",
    "check_weights",
    "compute_masks",
    "segment",
    "weights_file",
]
