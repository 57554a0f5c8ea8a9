"""Schema v1 zarr stores: the schema, open/read, the block writer, the dask runner, info/verify.

Torch-free: nothing under :mod:`pipelines.store` imports torch. Modules:

* :mod:`~pipelines.store.schema`: names, dtypes, dimensions, chunks and codecs of every array;
* :mod:`~pipelines.store.reader`: :func:`open_store` -> :class:`Store` (zarr, dask, xarray views);
  :mod:`~pipelines.store.integrity`: checksummed chunks, reads that fail naming the array and the
  chunk (:class:`StoreDataError`), missing chunks of a complete store;
  :func:`require_complete` (or ``open_store(..., require_complete=True)``) refuses a store whose
  prepare run was interrupted with :class:`IncompleteStoreError`, saying how to finish it;
* :mod:`~pipelines.store.writer`: :class:`StoreWriter`, resumable block-wise writing, with
  :mod:`~pipelines.store.arrays` (array creation and value checks);
* :mod:`~pipelines.store.runner`: dask over the pending blocks of one or more stores, with
  :mod:`~pipelines.store.progress` (bars or plain lines), :mod:`~pipelines.store.failures`
  (bad inputs recorded, full disks explained) and :mod:`~pipelines.store.options` (sizes and
  counts checked before any work);
* :mod:`~pipelines.store.inspect`: :func:`describe` and :func:`verify` (``cli.py info``);
* :mod:`~pipelines.store.rowtable`: chunk-aligned row reads; :mod:`~pipelines.store.toystore`:
  small deterministic stores for tests and benchmarks.
"""

from __future__ import annotations

from pipelines.store.arrays import create_schema_array
from pipelines.store.inspect import describe, info_report, pending_frames, verify
from pipelines.store.integrity import MissingChunkError, StoreDataError
from pipelines.store.reader import (
    IncompleteStoreError,
    Store,
    open_store,
    read_store,
    require_complete,
)
from pipelines.store.rowtable import RowTable
from pipelines.store.runner import (
    Conversion,
    RunSummary,
    SkippedItem,
    parse_size,
    run_conversion,
    run_conversions,
    write_blocks,
)
from pipelines.store.schema import (
    ARRAYS,
    DATASETS,
    DEFAULT_CHUNK,
    SCHEMA,
    SEG_CLASSES,
    SEG_NOT_COMPUTED,
    ArraySpec,
    StoreLayout,
)
from pipelines.store.toystore import ToySpec, create_toy_writer, write_toy_store
from pipelines.store.writer import StoreWriter, make_fingerprint, refuse_other_store

__all__ = [
    "ARRAYS",
    "DATASETS",
    "DEFAULT_CHUNK",
    "SCHEMA",
    "SEG_CLASSES",
    "SEG_NOT_COMPUTED",
    "ArraySpec",
    "Conversion",
    "IncompleteStoreError",
    "MissingChunkError",
    "RowTable",
    "RunSummary",
    "SkippedItem",
    "Store",
    "StoreDataError",
    "StoreLayout",
    "StoreWriter",
    "ToySpec",
    "create_schema_array",
    "create_toy_writer",
    "describe",
    "info_report",
    "make_fingerprint",
    "open_store",
    "parse_size",
    "pending_frames",
    "read_store",
    "refuse_other_store",
    "require_complete",
    "run_conversion",
    "run_conversions",
    "verify",
    "write_blocks",
    "write_toy_store",
]
