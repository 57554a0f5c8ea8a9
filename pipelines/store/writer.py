"""Resumable block-wise writer of schema v1 stores.

A *block* is ``frames_per_block`` consecutive frames, a whole number of chunks, so two workers
never write the same chunk. :meth:`StoreWriter.write_block` writes every per-frame array of a
block and only then sets the block's done marker (one chunk of the ``_done`` bool array per
block). Re-creating a writer with the same fingerprint resumes: done blocks are skipped and the
result is identical to an uninterrupted run. Another fingerprint is refused unless
``overwrite=True``. ``complete`` is False from creation until :meth:`StoreWriter.finish` has
checked every block and the samples and consolidated the metadata, and is set as the very last
write.

Inside a dask task (threads or ``dask.distributed`` workers) the writer is pickled as its URL and
layout and re-opens the store lazily, so ``dask.delayed(writer.write_block)(b, **arrays)`` or
:func:`pipelines.store.runner.write_blocks` just work.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from pipelines.store.arrays import (
    CALLER_ALIASES,
    as_dtype,
    check_arrays,
    consolidate,
    create_schema_array,
    ensure_done_array,
    frame_coordinates,
)
from pipelines.store.reader import (
    Store,
    damaged_metadata,
    open_group,
    open_store,
    read_store,
    store_url,
)
from pipelines.store.schema import (
    ARRAYS,
    DATASETS,
    DEFAULT_CHUNK,
    DONE_ARRAY,
    FAILED_ATTR,
    PASS_ARRAYS,
    SCHEMA,
    WRITER_ARRAYS,
    WRITER_ATTR,
    StoreLayout,
)

_OWN_ATTRS = ("schema", "dataset", "split", "image_size", "complete", WRITER_ATTR, FAILED_ATTR)


def refuse_other_store(url: str, fingerprint: str, overwrite: bool) -> None:
    """Refuse, before anything is written, an existing store made with other arguments."""
    if overwrite:
        return
    try:
        store = open_store(url)
    except ValueError:
        return  # nothing there (or not a store: the writer refuses to touch it)
    if store.writer_info.get("fingerprint") != fingerprint:
        raise ValueError(
            f"{url}: a store made with other arguments or inputs is already there; "
            "pass --overwrite to replace it (or use another OUT_DIR)"
        )


def make_fingerprint(*parts: Any) -> str:
    """sha256 hex of the JSON of ``parts`` (e.g. command arguments and input file hashes)."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class StoreWriter:
    """Writes one store block by block; build it with :meth:`create`."""

    def __init__(
        self,
        url: str,
        layout: StoreLayout,
        arrays: Sequence[str],
        frames_per_block: int,
        fingerprint: str,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        self.url = url
        self.layout = layout
        self.arrays = tuple(arrays)
        self.frames_per_block = frames_per_block
        self.fingerprint = fingerprint
        self.storage_options = storage_options
        self._lock = threading.Lock()
        self._group: zarr.Group | None = None
        self._handles: dict[str, zarr.Array] = {}
        self._whole_arrays: set[str] = set()

    # ------------------------------------------------------------------ creation / resume
    @classmethod
    def create(
        cls,
        path_or_url: str | Path,
        *,
        dataset: str,
        split: str,
        n_frames: int,
        n_samples: int,
        image_size: tuple[int, int],
        views: int,
        arrays: Sequence[str],
        attrs: Mapping[str, Any],
        fingerprint: str,
        gt_size: tuple[int, int] | None = None,
        overwrite: bool = False,
        chunk: int = DEFAULT_CHUNK,
        frames_per_block: int | None = None,
        storage_options: dict[str, Any] | None = None,
    ) -> StoreWriter:
        """Create a store, or resume the one at ``path_or_url`` written with ``fingerprint``.

        ``arrays`` names the schema arrays this dataset has (``samples`` is always added);
        ``attrs`` carries ``sequences`` (required), ``camera``, ``source`` and any extra
        attributes. ``frames_per_block`` (default ``chunk``) must be a multiple of ``chunk``.
        Raises ValueError for bad arguments, for an existing store made with another
        fingerprint (unless ``overwrite``), and for a non-store folder at the location.
        """
        url = store_url(path_or_url)
        names = check_arrays(arrays, gt_size)
        fpb = chunk if frames_per_block is None else int(frames_per_block)
        if chunk < 1 or fpb < 1 or fpb % chunk:
            raise ValueError(f"frames_per_block {fpb} must be a positive multiple of chunk {chunk}")
        if dataset not in DATASETS:
            raise ValueError(f"dataset {dataset!r} is not one of {DATASETS}")
        layout = StoreLayout(
            n_frames=int(n_frames),
            n_samples=int(n_samples),
            views=int(views),
            image_size=(int(image_size[0]), int(image_size[1])),
            gt_size=None if gt_size is None else (int(gt_size[0]), int(gt_size[1])),
            chunk=int(chunk),
        )
        writer = cls(url, layout, names, fpb, fingerprint, storage_options)
        all_attrs = writer._attrs(dataset, split, attrs)

        existing, damaged = _try_open(url, storage_options, overwrite)
        if existing is not None and not overwrite:
            if "frame" in existing and "frame_in_sequence" not in existing:
                raise ValueError(
                    f"{url}: written by an earlier depthkit (no frame index, no checksums); "
                    "pass --overwrite to write it again"
                )
            found = dict(existing.attrs).get(WRITER_ATTR, {}).get("fingerprint")
            if found != fingerprint:
                raise ValueError(
                    f"{url}: a store made with other arguments is already there "
                    f"(fingerprint {str(found)[:12]}, now {fingerprint[:12]}); "
                    "pass overwrite=True (--overwrite) to replace it"
                )
            group = open_group(url, "r+", storage_options)
            group.attrs.update(all_attrs)  # complete = False before anything else happens
            if FAILED_ATTR in group.attrs:
                del group.attrs[FAILED_ATTR]  # this run tries again
        else:
            if existing is None and not damaged:
                _refuse_non_store(url)
            group = zarr.open_group(
                url, mode="w", zarr_format=3, attributes=all_attrs,
                storage_options=storage_options if "://" in url else None,
            )  # fmt: skip
        writer._group = group
        writer._ensure_arrays(group)
        writer._array("frame")[...] = np.arange(layout.n_frames, dtype=np.int32)  # the index
        return writer

    def _attrs(self, dataset: str, split: str, attrs: Mapping[str, Any]) -> dict[str, Any]:
        clash = sorted(set(attrs) & set(_OWN_ATTRS))
        if clash:
            raise ValueError(f"attrs may not set {clash}: the writer owns them")
        if "sequences" not in attrs:
            raise ValueError("attrs must contain 'sequences' (scene or drive names)")
        return {
            "schema": SCHEMA,
            "dataset": dataset,
            "split": split,
            "image_size": list(self.layout.image_size),
            **attrs,
            "complete": False,
            WRITER_ATTR: {
                "fingerprint": self.fingerprint,
                "frames_per_block": self.frames_per_block,
                "n_blocks": self.n_blocks,
                "layout": asdict(self.layout),
            },
        }

    def _ensure_arrays(self, group: zarr.Group) -> None:
        """Create missing arrays; check existing ones match the layout (resume safety)."""
        wanted = {name: self.layout.shape(name) for name in self.arrays}
        existing = dict(group.arrays())
        for name, arr in existing.items():
            if name in wanted:
                if arr.shape != wanted[name] or arr.dtype != np.dtype(ARRAYS[name].dtype):
                    raise ValueError(
                        f"{self.url}: array {name!r} is {arr.shape} {arr.dtype}, expected "
                        f"{wanted[name]} {ARRAYS[name].dtype}; pass overwrite=True"
                    )
            elif name not in (DONE_ARRAY, *PASS_ARRAYS):  # a pass may have added them
                raise ValueError(f"{self.url}: unexpected array {name!r}; pass overwrite=True")
        coordinates = frame_coordinates(self.arrays)
        for name in self.arrays:
            if name not in existing:
                create_schema_array(
                    group, name, self.layout, coordinates if name == "image" else ()
                )
        try:
            ensure_done_array(group, self.n_blocks)
        except ValueError as e:
            raise ValueError(f"{self.url}: {e}") from None

    # ------------------------------------------------------------------ pickling for dask
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_group"] = None
        state["_handles"] = {}
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def group(self) -> zarr.Group:
        """The zarr group, opened (``r+``) on first use in this process."""
        with self._lock:
            if self._group is None:
                self._group = open_group(self.url, "r+", self.storage_options)
            return self._group

    def _array(self, name: str) -> zarr.Array:
        """Cached handle of array ``name`` (saves a metadata read per block)."""
        handle = self._handles.get(name)
        if handle is None:
            # Blocks are rarely all fill value; skipping zarr's per-chunk emptiness scan halves
            # the CPU cost of writing image blocks (measured in benchmarks/bench_prepare_kitti).
            handle = self.group[name].with_config({"write_empty_chunks": True})
            self._handles[name] = handle
        return handle

    # ------------------------------------------------------------------ blocks
    @property
    def n_blocks(self) -> int:
        return -(-self.layout.n_frames // self.frames_per_block)

    @property
    def block_arrays(self) -> tuple[str, ...]:
        """Arrays every :meth:`write_block` call must supply: the per-frame arrays not written
        whole (:meth:`expect_frames`); ``seg`` is optional."""
        return tuple(
            n
            for n in self.arrays
            if ARRAYS[n].per_frame
            and n not in ("seg", *WRITER_ARRAYS)
            and n not in self._whole_arrays
        )

    def expect_frames(self, *names: str) -> None:
        """Declare per-frame arrays that :meth:`write_frames` writes whole, so that
        :meth:`write_block` no longer asks for them (call before any block is written)."""
        canonical = [CALLER_ALIASES.get(n, n) for n in names]
        for name in canonical:
            if name not in self.arrays or not ARRAYS[name].per_frame or name == "seg":
                raise ValueError(f"{name!r} is not a per-frame array of this store")
        self._whole_arrays.update(canonical)

    def write_frames(self, **arrays: np.ndarray) -> None:
        """Write whole per-frame arrays known before any pixel work (``(N, ...)`` each:
        intrinsics, timestamps, ...): one call per store instead of one write per block.

        Names not declared by :meth:`expect_frames` are declared here. Call it on every (re)run
        with the same values (they come from the plan); :meth:`finish` comes after it.
        """
        self.expect_frames(*arrays)
        for name, values in _canonical(arrays).items():
            data = as_dtype(name, values)
            if data.shape != self.layout.shape(name):
                raise ValueError(f"{name} is {data.shape}, expected {self.layout.shape(name)}")
            self._array(name)[...] = data

    def block_frames(self, block: int) -> slice:
        """Frame rows of ``block``: ``[block * frames_per_block, ...)`` clipped to N."""
        if not 0 <= block < self.n_blocks:
            raise IndexError(f"block {block} out of range 0..{self.n_blocks - 1}")
        start = block * self.frames_per_block
        return slice(start, min(start + self.frames_per_block, self.layout.n_frames))

    def pending_blocks(self) -> list[int]:
        """Blocks whose done marker is not set yet, in order."""
        done = np.asarray(self._array(DONE_ARRAY)[...], dtype=bool)
        return np.flatnonzero(~done).tolist()

    def write_block(self, block: int, **arrays: np.ndarray) -> None:
        """Write the frames of ``block`` (arrays shaped ``(len(block_frames), ...)``), then mark
        it done. Every name in :attr:`block_arrays` is required; ``seg`` may be given.
        """
        rows = self.block_frames(block)
        arrays = _canonical(arrays)
        missing = sorted(set(self.block_arrays) - set(arrays))
        unknown = sorted(set(arrays) - set(self.block_arrays) - ({"seg"} & set(self.arrays)))
        if missing or unknown:
            raise ValueError(f"block {block}: missing arrays {missing}, unexpected {unknown}")
        for name, values in arrays.items():
            target = self._array(name)
            data = as_dtype(name, values)
            expected = (rows.stop - rows.start, *target.shape[1:])
            if data.shape != expected:
                raise ValueError(f"block {block}: {name} is {data.shape}, expected {expected}")
            target[rows] = data
        self._array(DONE_ARRAY)[block] = True

    def write_samples(self, samples: np.ndarray) -> None:
        """Write the whole samples table, int (M, 4): (center, previous, next, view), -1 absent."""
        data = as_dtype("samples", samples)
        if data.shape != self.layout.shape("samples"):
            raise ValueError(f"samples is {data.shape}, expected {self.layout.shape('samples')}")
        self._array("samples")[...] = data

    def update_attrs(self, **attrs: Any) -> None:
        """Set extra attributes (``camera``, ``source``, ...); the writer's own are refused."""
        clash = sorted(set(attrs) & set(_OWN_ATTRS))
        if clash:
            raise ValueError(f"attrs may not set {clash}: the writer owns them")
        self.group.attrs.update(attrs)

    def finish(self, verify: bool = True) -> Store:
        """Check every block is done, verify (shapes, dtypes, samples), consolidate the metadata,
        then set complete (the last write)."""
        pending = self.pending_blocks()
        if pending:
            shown = ", ".join(map(str, pending[:10])) + (" ..." if len(pending) > 10 else "")
            raise ValueError(f"{self.url}: {len(pending)} blocks not written: {shown}")
        group = self.group
        if verify:
            from pipelines.store.inspect import verify as verify_store

            store = read_store(group, self.url)
            problems = verify_store(store, deep=False, require_complete=False, chunks=True)
            if problems:
                raise ValueError(f"{self.url}: verification failed: " + "; ".join(problems))
        # Through the consolidated group, so that setting complete keeps the consolidated metadata.
        consolidate(group).attrs.update({"complete": True})
        return open_store(self.url, storage_options=self.storage_options)


def _canonical(arrays: Mapping[str, Any]) -> dict[str, Any]:
    """``arrays`` under the schema's names (``frame`` = ``frame_in_sequence`` for callers)."""
    return {CALLER_ALIASES.get(name, name): values for name, values in arrays.items()}


def _try_open(
    url: str, storage_options: dict[str, Any] | None, overwrite: bool
) -> tuple[zarr.Group | None, bool]:
    """The store group at ``url`` (None when there is none) and whether its metadata is
    damaged (then the group is None; refused, naming the file, unless ``overwrite``)."""
    try:
        return open_group(url, "r", storage_options), False
    except (OSError, zarr.errors.BaseZarrError):
        return None, False
    except ValueError as e:
        damaged = damaged_metadata(url)
        if damaged is None:
            raise
        if overwrite:
            return None, True
        raise ValueError(f"{damaged}, or pass --overwrite") from e


def _refuse_non_store(url: str) -> None:
    """Never wipe a local folder that holds something other than a zarr store."""
    if "://" not in url and Path(url).exists():
        path = Path(url)
        if path.is_file() or any(path.iterdir()):
            raise ValueError(f"{url}: exists and is not a zarr store; refusing to overwrite it")
