"""Schema arrays in a zarr group: creation with the schema's layout, and value checks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import zarr

from pipelines.store.schema import ARRAYS, REQUIRED_ARRAYS, StoreLayout, array_spec, compressors


def create_schema_array(group: zarr.Group, name: str, layout: StoreLayout) -> zarr.Array:
    """Create array ``name`` in ``group`` with the schema's dtype, chunks, codec, fill value and
    dimension names."""
    spec = array_spec(name)
    return group.create_array(
        name,
        shape=layout.shape(name),
        chunks=layout.chunks(name),
        dtype=spec.dtype,
        compressors=compressors(spec.codec),
        fill_value=spec.fill_value,
        dimension_names=spec.dims,
    )


def check_arrays(arrays: Sequence[str], gt_size: tuple[int, int] | None) -> list[str]:
    """The arrays a store holds, in schema order: ``arrays`` plus the required ones.

    ValueError for an unknown name, a missing required array, or ``gt_size`` given without
    ``gt_depth`` (or the reverse).
    """
    names = [array_spec(n).name for n in arrays]
    names += [n for n in REQUIRED_ARRAYS if n not in names]
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
