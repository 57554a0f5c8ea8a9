"""Arrays in a store's zarr group: schema arrays, the writer's done markers, consolidation.

Every array is created with zarr v3 ``dimension_names`` (the schema's for schema arrays,
``("block",)`` for the ``_done`` markers), so ``xarray.open_zarr`` can name every dimension.
:func:`consolidate` writes the group's consolidated metadata: the writer calls it when a store
completes and the passes (masks) after adding an array, so tools that read consolidated
metadata (xarray) see every array.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec

from pipelines.store.schema import (
    ARRAYS,
    DONE_ARRAY,
    DONE_DIMS,
    FRAME_COORDS,
    REQUIRED_ARRAYS,
    WRITER_ARRAYS,
    StoreLayout,
    array_spec,
    compressors,
)

# Names callers may use for another array: "frame" was the frame number in its sequence before
# it became the global frame index (see pipelines.store.reader).
CALLER_ALIASES = {"frame": "frame_in_sequence"}


def create_schema_array(
    group: zarr.Group, name: str, layout: StoreLayout, coordinates: Sequence[str] = ()
) -> zarr.Array:
    """Create array ``name`` in ``group`` with the schema's dtype, chunks, codec (checksummed),
    fill value and dimension names; ``coordinates`` (arrays of the store along ``frame``) go
    into its CF ``coordinates`` attribute, which xarray reads."""
    spec = array_spec(name)
    return group.create_array(
        name,
        shape=layout.shape(name),
        chunks=layout.chunks(name),
        dtype=spec.dtype,
        compressors=compressors(spec.codec),
        fill_value=spec.fill_value,
        dimension_names=spec.dims,
        attributes={"coordinates": " ".join(coordinates)} if coordinates else None,
    )


def frame_coordinates(arrays: Sequence[str]) -> tuple[str, ...]:
    """The coordinates along ``frame`` (besides the index) among ``arrays``."""
    return tuple(n for n in FRAME_COORDS if n in arrays)


def ensure_done_array(group: zarr.Group, n_blocks: int) -> zarr.Array:
    """The ``_done`` markers of ``group``: bool (n_blocks,), one chunk per block, so that each
    block's marker is its own object and concurrent workers never write one chunk.

    Created (all False) when absent. An existing one without dimension names (written by an
    older version) is recreated with them, keeping its values: should the process die in
    between, the markers are lost and the blocks rewritten, which gives the same store.
    ValueError when an existing one has another length (the block layout changed).
    """
    done = group.get(DONE_ARRAY)
    if done is not None and done.shape != (n_blocks,):
        raise ValueError("block layout changed; pass overwrite=True")
    if done is not None and tuple(done.metadata.dimension_names or ()) == DONE_DIMS:
        return done
    values = None if done is None else np.asarray(done[...], dtype=bool)
    done = group.create_array(
        DONE_ARRAY, shape=(n_blocks,), chunks=(1,), dtype="bool", fill_value=False,
        dimension_names=DONE_DIMS, overwrite=values is not None, compressors=(Crc32cCodec(),),
    )  # fmt: skip
    if values is not None and values.any():
        done[...] = values
    return done


def consolidate(group: zarr.Group) -> zarr.Group:
    """Write the consolidated metadata of ``group`` (every array's metadata in its
    ``zarr.json``) and return the group opened on it; attributes set through the returned group
    keep it."""
    with warnings.catch_warnings():
        # zarr notes that consolidated metadata is not in the v3 spec yet; xarray reads it.
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        return zarr.consolidate_metadata(group.store, path=group.path or None)


def check_arrays(arrays: Sequence[str], gt_size: tuple[int, int] | None) -> list[str]:
    """The arrays a store holds, in schema order: ``arrays`` (``frame`` read as
    ``frame_in_sequence``) plus the required ones and the writer's own (``frame``, ``samples``).

    ValueError for an unknown name, a missing required array, or ``gt_size`` given without
    ``gt_depth`` (or the reverse).
    """
    arrays = [CALLER_ALIASES.get(n, n) for n in arrays]
    names = [array_spec(n).name for n in arrays]
    names += [n for n in (*REQUIRED_ARRAYS, *WRITER_ARRAYS) if n not in names]
    missing = [n for n in REQUIRED_ARRAYS if n not in arrays and n != "samples"]
    if missing:
        raise ValueError(f"every store needs arrays {missing}")
    if ("gt_depth" in names) != (gt_size is not None):
        raise ValueError("gt_size must be given exactly when 'gt_depth' is stored")
    return [n for n in ARRAYS if n in names]  # schema order, deterministic


def as_dtype(name: str, values: Any) -> np.ndarray:
    """``values`` as the schema dtype of ``name``; ValueError when that would change their kind."""
    data = np.asarray(values)
    dtype = np.dtype(ARRAYS[name].dtype)
    if not np.can_cast(data.dtype, dtype, "same_kind"):
        raise ValueError(f"{name}: cannot store {data.dtype} values as {dtype}")
    return data.astype(dtype, copy=False)
