"""Typed reader of schema v1 stores: ``open_store(path_or_url) -> Store``.

A store may be a local path or any fsspec URL zarr accepts (``memory://``, ``s3://``, ...).
Arrays stay lazy (zarr arrays); :meth:`Store.to_dask` and :meth:`Store.to_xarray` give
lazy dask / xarray views for notebooks (``xarray.open_zarr(path)`` opens a complete store too).

This reader reads every array's own metadata, never the consolidated copy in the group's
``zarr.json``: that copy is written for other tools when a store completes
(:func:`pipelines.store.arrays.consolidate`) and could be stale after a hand edit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

from pipelines.store.schema import ARRAYS, DIM_LABELS, DONE_ARRAY, SCHEMA, WRITER_ATTR, StoreLayout

if TYPE_CHECKING:
    import dask.array
    import xarray


def store_url(path_or_url: str | Path) -> str:
    """Normalise a store location: ``Path`` to str, ``file://`` URLs to plain local paths."""
    url = str(path_or_url)
    return url[len("file://") :] if url.startswith("file://") else url


def open_group(
    path_or_url: str | Path, mode: str, storage_options: dict[str, Any] | None = None
) -> zarr.Group:
    """``zarr.open_group`` on a local path or fsspec URL (zarr v3); storage options for URLs.

    Consolidated metadata is not used (see the module docstring).
    """
    url = store_url(path_or_url)
    options = storage_options if "://" in url else None
    return zarr.open_group(
        url, mode=mode, zarr_format=3, storage_options=options, use_consolidated=False
    )


@dataclass
class Store:
    """An opened schema v1 store: attributes, lazy zarr arrays and the samples table."""

    path: str
    group: zarr.Group
    attrs: dict[str, Any]
    arrays: dict[str, zarr.Array] = field(repr=False)

    @property
    def dataset(self) -> str:
        """``nyu-raw``, ``nyu-labeled`` or ``kitti-raw``."""
        return str(self.attrs.get("dataset", ""))

    @property
    def split(self) -> str:
        return str(self.attrs.get("split", ""))

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of ``image``, ``depth`` and ``seg``."""
        h, w = self.attrs.get("image_size", self.arrays["image"].shape[2:4])
        return int(h), int(w)

    @property
    def sequences(self) -> list[str]:
        """Scene or drive names; ``sequence`` holds indices into this list."""
        return list(self.attrs.get("sequences", []))

    @property
    def complete(self) -> bool:
        """True only after every block was written and verified."""
        return bool(self.attrs.get("complete", False))

    @property
    def camera(self) -> dict[str, Any]:
        return dict(self.attrs.get("camera", {}))

    @property
    def source(self) -> dict[str, Any]:
        """Provenance: command line, package version, input root, split file sha256."""
        return dict(self.attrs.get("source", {}))

    @property
    def n_frames(self) -> int:
        """N, the length of the frame axis."""
        return int(self.arrays["image"].shape[0])

    @property
    def views(self) -> int:
        """V: 1 for NYU, 2 for KITTI (view 0 = camera 02, view 1 = camera 03)."""
        return int(self.arrays["image"].shape[1])

    @property
    def chunk(self) -> int:
        """Frames per chunk along the frame axis (the unit of reading)."""
        return int(self.arrays["image"].chunks[0])

    @property
    def n_samples(self) -> int:
        """M, the number of rows of ``samples``."""
        return int(self.arrays["samples"].shape[0])

    @cached_property
    def samples(self) -> np.ndarray:
        """int32 (M, 4): (center row, previous row, next row, view), -1 = neighbour absent."""
        return np.asarray(self.arrays["samples"][...], dtype=np.int32).reshape(-1, 4)

    @property
    def layout(self) -> StoreLayout:
        """The sizes of this store, as used by the schema to derive shapes."""
        gt = self.arrays.get("gt_depth")
        return StoreLayout(
            n_frames=self.n_frames,
            n_samples=self.n_samples,
            views=self.views,
            image_size=self.image_size,
            gt_size=None if gt is None else (int(gt.shape[1]), int(gt.shape[2])),
            chunk=self.chunk,
        )

    @property
    def done_blocks(self) -> np.ndarray | None:
        """bool (n_blocks,) writer done markers, or None for a store without them."""
        done = self.group.get(DONE_ARRAY)
        return None if done is None else np.asarray(done[...], dtype=bool)

    @property
    def writer_info(self) -> dict[str, Any]:
        """Writer bookkeeping: fingerprint, frames_per_block, n_blocks."""
        return dict(self.attrs.get(WRITER_ATTR, {}))

    def has(self, name: str) -> bool:
        """True when array ``name`` is in the store (absent arrays are not stored empty)."""
        return name in self.arrays

    def __getitem__(self, name: str) -> zarr.Array:
        if name not in self.arrays:
            raise KeyError(f"{self.path}: no array {name!r} (has {sorted(self.arrays)})")
        return self.arrays[name]

    def to_dask(self) -> dict[str, dask.array.Array]:
        """Lazy dask arrays, one per stored array, chunked like the store."""
        import dask.array as da

        return {name: da.from_zarr(arr) for name, arr in self.arrays.items()}

    def to_xarray(self) -> xarray.Dataset:
        """Lazy ``xarray.Dataset``: dims frame, view, y, x, channel, sample, field, ...

        ``sequence``, ``frame`` and ``timestamp`` are coordinates along ``frame`` (no index:
        frame numbers repeat across sequences); attributes are the store attributes.
        """
        try:
            import xarray as xr
        except ImportError as e:
            raise ImportError("Store.to_xarray needs xarray: pip install xarray") from e
        lazy = self.to_dask()
        frame_coords = {n: ("frame", lazy.pop(n)) for n in ("sequence", "frame", "timestamp")}
        coords = {n: v for n, v in frame_coords.items() if self.has(n)}
        used = {d for name in lazy for d in ARRAYS[name].dims}
        coords.update({d: (d, list(labels)) for d, labels in DIM_LABELS.items() if d in used})
        data = {name: (ARRAYS[name].dims, arr) for name, arr in lazy.items()}
        return xr.Dataset(data, coords=xr.Coordinates(coords, indexes={}), attrs=dict(self.attrs))


def read_store(group: zarr.Group, path: str) -> Store:
    """Wrap an open zarr group as a :class:`Store`; ValueError when it is not schema v1."""
    attrs = dict(group.attrs)
    if attrs.get("schema") != SCHEMA:
        found = attrs.get("schema", "no 'schema' attribute")
        raise ValueError(f"{path}: not a {SCHEMA} store ({found})")
    found = dict(group.arrays())
    arrays = {name: found[name] for name in ARRAYS if name in found}  # schema order
    if "image" not in arrays:
        raise ValueError(f"{path}: store has no 'image' array")
    return Store(path=path, group=group, attrs=attrs, arrays=arrays)


def open_store(
    path_or_url: str | Path,
    *,
    mode: str = "r",
    storage_options: dict[str, Any] | None = None,
    require_complete: bool = False,
) -> Store:
    """Open a schema v1 store at a local path or fsspec URL.

    ``mode="r+"`` allows writing (the mask stage fills ``seg`` that way). Raises ValueError
    naming the path when there is no zarr group there or its schema is not ``depthstore/1``.
    ``require_complete=True`` also refuses a store whose writer did not finish, with
    :class:`IncompleteStoreError` (see :func:`require_complete`): what training, evaluation
    and the passes want.
    """
    url = store_url(path_or_url)
    try:
        group = open_group(url, mode, storage_options)
    except (OSError, zarr.errors.BaseZarrError) as e:
        raise ValueError(f"{url}: not a zarr store ({e})") from e
    store = read_store(group, url)
    if require_complete:
        _refuse_incomplete(store)
    return store


class IncompleteStoreError(ValueError):
    """A store whose writer did not finish (its ``complete`` attribute is not true)."""


def require_complete(store: Store) -> Store:
    """``store`` itself when it is complete, else :class:`IncompleteStoreError`.

    A store is complete only after its writer wrote and verified every block and set
    ``complete`` as the very last write; anything else is a prepare run that was interrupted (or
    is still running), whose arrays are partly fill values (zero intrinsics, empty images). The
    one-line message names the store, how many blocks were written, and how to finish it:
    re-run the same prepare command, which resumes; the command line recorded in the store's
    ``source`` attribute is quoted, with its ``OUT_DIR`` placeholder spelled out.
    Same as ``open_store(path, require_complete=True)`` on an already opened store.
    """
    _refuse_incomplete(store)
    return store


def _refuse_incomplete(store: Store) -> None:
    if store.complete:
        return
    done = store.done_blocks
    written = "" if done is None else f", {int(done.sum())} of {done.size} blocks written"
    command = " ".join(str(store.source.get("command", "")).split())  # one line
    how = "re-run the same prepare command, which resumes where it stopped"
    if command:
        how += f": `{command}`"
        if "OUT_DIR" in command.split():
            how += f" with OUT_DIR = {store.path.rstrip('/').rpartition('/')[0] or '.'}"
    raise IncompleteStoreError(
        f"{store.path}: the store is incomplete (the prepare run that writes it was interrupted"
        f"{written}); to finish it, {how}"
    )
