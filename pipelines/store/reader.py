"""Typed reader of schema v1 stores: ``open_store(path_or_url) -> Store``.

A store may be a local path or any fsspec URL zarr accepts (``memory://``, ``s3://``, ...).
Arrays stay lazy (zarr arrays); :meth:`Store.to_dask` and :meth:`Store.to_xarray` give
lazy dask / xarray views for notebooks (``xarray.open_zarr(path)`` opens a complete store too).

This reader reads every array's own metadata, never the consolidated copy in the group's
``zarr.json``: that copy is written for other tools when a store completes
(:func:`pipelines.store.arrays.consolidate`) and could be stale after a hand edit.

Arrays are :class:`~pipelines.store.integrity.CheckedArray` s: a damaged chunk, or a missing one
in a complete store, is a :class:`~pipelines.store.integrity.StoreDataError` naming the array and
the chunk. A damaged ``zarr.json`` is a ValueError naming the file.

Names: ``store["frame_in_sequence"]`` is the frame number inside its sequence, and
``store["frame"]`` is the same array (the name it had before ``frame`` became the global frame
index; the index itself is the row, 0..N-1, and the xarray ``frame`` coordinate). Stores written
before (``frame`` = frame number in its sequence on disk, no checksums) open the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

from pipelines.store.integrity import CheckedStore, checked
from pipelines.store.schema import (
    ARRAYS,
    DONE_ARRAY,
    DONE_DIMS,
    FAILED_ATTR,
    FRAME_COORDS,
    RECORD_PREFIX,
    SCHEMA,
    WRITER_ATTR,
    StoreLayout,
    has_checksums,
    pass_done,
)

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
        return ALIASES.get(name, name) in self.arrays

    def __getitem__(self, name: str) -> zarr.Array:
        found = self.arrays.get(ALIASES.get(name, name))
        if found is None:
            raise KeyError(f"{self.path}: no array {name!r} (has {sorted(self.arrays)})")
        return found

    @property
    def legacy(self) -> bool:
        """True for a store written before the frame index (``frame`` on disk holds the frame
        numbers inside their sequences; no checksums)."""
        return "frame" in self.group and "frame_in_sequence" not in self.group

    def to_dask(self) -> dict[str, dask.array.Array]:
        """Lazy dask arrays, one per stored array, chunked like the store."""
        import dask.array as da

        return {name: da.from_zarr(arr) for name, arr in self.arrays.items()}

    def to_xarray(self) -> xarray.Dataset:
        """Lazy ``xarray.Dataset``, the same as ``xarray.open_zarr(path)`` gives for a complete
        store: every array (``_done`` and the passes' ``_written_*`` records included) under its
        dimension names; coordinates ``frame`` (the global frame index 0..N-1, the index),
        ``sequence``, ``frame_in_sequence`` and ``timestamp``; attributes are the store
        attributes. A store written before the frame index gets the same coordinates (its
        ``frame`` array is ``frame_in_sequence`` here).
        """
        try:
            import xarray as xr
        except ImportError as e:
            raise ImportError("Store.to_xarray needs xarray: pip install xarray") from e
        import dask.array as da

        variables: dict[str, tuple[tuple[str, ...], Any]] = {
            name: (ARRAYS[name].dims, values) for name, values in self.to_dask().items()
        }
        index = self.group.get("frame")
        if self.legacy or index is None:
            variables["frame"] = (("frame",), np.arange(self.n_frames, dtype=np.int32))
        else:
            variables["frame"] = (("frame",), np.asarray(checked(index)[...]))
        done = self.group.get(DONE_ARRAY)
        if done is not None:
            variables[DONE_ARRAY] = (DONE_DIMS, da.from_zarr(done))
        for name, arr in self.group.arrays():
            if name.startswith(RECORD_PREFIX):  # the passes' chunk records
                variables[name] = (tuple(arr.metadata.dimension_names), da.from_zarr(arr))
        coords = {n: variables.pop(n) for n in ("frame", *FRAME_COORDS) if n in variables}
        return xr.Dataset(variables, coords=coords, attrs=dict(self.attrs))


# Names of the Python API that stand for another array (see the module docstring).
ALIASES = {"frame": "frame_in_sequence"}


def read_store(group: zarr.Group, path: str) -> Store:
    """Wrap an open zarr group as a :class:`Store`; ValueError when it is not schema v1.

    Arrays are :class:`~pipelines.store.integrity.CheckedArray` s. When ``group`` was opened on
    a :class:`~pipelines.store.integrity.CheckedStore` (what :func:`open_store` does) and the
    store is complete, a missing chunk of a checksummed array is an error (see
    :mod:`pipelines.store.integrity`); the global ``frame`` index is not among the arrays (it is
    the row), and a store written before it has its ``frame`` array as ``frame_in_sequence``.
    """
    attrs = dict(group.attrs)
    if attrs.get("schema") != SCHEMA:
        found = attrs.get("schema", "no 'schema' attribute")
        raise ValueError(f"{path}: not a {SCHEMA} store ({found})")
    on_disk = dict(group.arrays())
    found = {name: checked(arr) for name, arr in on_disk.items()}
    if "frame" in found and "frame_in_sequence" not in found:
        found["frame_in_sequence"] = found["frame"]  # written before the frame index
    found.pop("frame", None)
    arrays = {name: found[name] for name in ARRAYS if name in found}  # schema order
    if "image" not in arrays:
        raise ValueError(f"{path}: store has no 'image' array")
    store = group.store
    if isinstance(store, CheckedStore) and attrs.get("complete") is True:
        computed = attrs.get("computed", {})
        store.strict.update(
            arr.path
            for name, arr in on_disk.items()
            if name != DONE_ARRAY
            and has_checksums(arr.metadata.codecs)
            and pass_done(name, computed)
        )
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
        plain = open_group(url, mode, storage_options)
        group = zarr.open_group(
            store=CheckedStore(plain.store, url), path=plain.path,
            mode="r" if mode == "r" else "r+", zarr_format=3, use_consolidated=False,
        )  # fmt: skip
        store = read_store(group, url)
    except (OSError, zarr.errors.BaseZarrError) as e:
        raise ValueError(f"{url}: not a zarr store ({e})") from e
    except ValueError as e:
        damaged = damaged_metadata(url)
        if damaged is None:
            raise
        raise ValueError(damaged) from e
    if require_complete:
        _refuse_incomplete(store)
    return store


def damaged_metadata(url: str) -> str | None:
    """For a local store: a message naming the first ``zarr.json`` (the group's, then each
    array's) that is not valid JSON, or None when they all are (or ``url`` is not local)."""
    import json

    if "://" in url:
        return None
    root = Path(url)
    for path in (root / "zarr.json", *sorted(root.glob("*/zarr.json"))):
        try:
            json.loads(path.read_bytes())
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as e:
            size = path.stat().st_size
            where = f"at byte {e.pos} of {size}" if isinstance(e, json.JSONDecodeError) else ""
            reason = e.msg if isinstance(e, json.JSONDecodeError) else str(e)
            return (
                f"{path}: damaged store metadata (not valid JSON {where}: {reason}); "
                "restore the store from a copy or write it again"
            )
    return None


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
    written = "" if done is None else f"{int(done.sum())} of {done.size} blocks written"
    command = " ".join(str(store.source.get("command", "")).split())  # one line
    rerun = ""
    if command:
        rerun = f": `{command}`"
        if "OUT_DIR" in command.split():
            rerun += f" with OUT_DIR = {store.path.rstrip('/').rpartition('/')[0] or '.'}"
    failed = store.attrs.get(FAILED_ATTR)
    if isinstance(failed, dict) and failed.get("error"):
        fix = "repair or replace that file"
        if command.startswith("prepare-kitti"):
            fix += ", or delete it and add --skip-missing --overwrite to drop its split lines"
        raise IncompleteStoreError(
            f"{store.path}: the store is incomplete: the prepare run that writes it failed on "
            f"bad input ({failed['error']}; {written}); re-running the same command fails "
            f"again until that is fixed: {fix}; then re-run it{rerun}"
        )
    how = "re-run the same prepare command, which resumes where it stopped" + rerun
    raise IncompleteStoreError(
        f"{store.path}: the store is incomplete (the prepare run that writes it was interrupted"
        f"{', ' + written if written else ''}); to finish it, {how}"
    )
