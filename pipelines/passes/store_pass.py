"""Adding one array to a finished store, chunk by chunk, resumably, on dask.

Every pass (:mod:`~pipelines.passes.masks`, :mod:`~pipelines.passes.hints_pass`,
:mod:`~pipelines.passes.true_masks`) goes through :class:`StorePass`:

1. the constructor opens a complete store for writing (an incomplete one is refused with
   :class:`pipelines.store.IncompleteStoreError`) and refuses one whose array was computed with
   another tag (``attrs[attr]``, e.g. another model) unless ``overwrite``; it writes nothing, so
   a caller can check its own inputs (weights, raw files) before :meth:`StorePass.start`;
2. :meth:`StorePass.start` creates the array when absent (schema dtype, chunks, dimension names;
   its fill value means "not computed": 255 for ``seg``, NaN for ``hint_depth``), records the
   tag, marks the array not completely computed (``attrs["computed"][name] = False``) and
   re-consolidates the metadata (filling chunks later leaves it alone);
3. :meth:`StorePass.run` runs one dask task per frame chunk, on local threads or a
   ``dask.distributed`` scheduler (:func:`pipelines.store.runner.run_tasks`), with a progress bar
   (frames, frames/s). A task reads its chunk and skips it when some value differs from the fill
   value (computed before); otherwise (and always with ``overwrite``) it computes the chunk's
   values and writes them in one call. After the last chunk ``attrs["computed"][name] = True``.

A chunk is either untouched or written whole, so an interrupted pass resumes where it stopped and
gives the same bytes as an uninterrupted run (chunk functions must be deterministic).
:func:`pipelines.store.inspect.pending_frames` tells training whether a pass finished, without
reading the array when the attribute says so.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from pipelines.store.arrays import consolidate, create_schema_array
from pipelines.store.inspect import is_fill
from pipelines.store.reader import open_group, open_store
from pipelines.store.runner import ProgressBars, plural, run_tasks

ChunkFn = Callable[[slice], np.ndarray]
"""``compute(rows)``: the array's values for frame rows ``rows`` (one chunk), ``(n, ...)``."""


@dataclass(frozen=True)
class PassReport:
    """What a pass did to one store."""

    name: str  # the pass ("masks", "hints", ...)
    chunks: int  # frame chunks in the store
    skipped: int  # chunks already computed before this run
    computed: int  # chunks computed now
    frames: int  # frames computed now
    views: int  # views per frame
    seconds: float

    @property
    def images(self) -> int:
        """Images (frames x views) computed now."""
        return self.frames * self.views

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        return (
            f"{self.name}: {plural(self.computed, 'chunk')} ({plural(self.frames, 'frame')}, "
            f"{plural(self.images, 'image')}) computed, {self.skipped} already done, "
            f"{self.chunks} in all, {self.frames_per_second:.2f} frames/s"
        )


class StorePass:
    """Fill array ``name`` of the complete store at ``path`` chunk by chunk (module docstring).

    Args:
        path: store path or fsspec URL.
        name: a schema array (``seg``, ``hint_depth``).
        attr: store attribute recording what the array was computed with (``masks``, ``hints``).
        tag: that record for this run (JSON-able); another one already there is refused unless
            ``overwrite``, which recomputes every chunk.
        label: name of the pass in messages, reports and the progress bar.
    """

    def __init__(
        self,
        path: str | Path,
        name: str,
        attr: str,
        tag: Mapping[str, Any],
        *,
        overwrite: bool = False,
        label: str | None = None,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        self.store = open_store(
            path, mode="r+", require_complete=True, storage_options=storage_options
        )
        self.name, self.attr, self.tag = name, attr, dict(tag)
        self.overwrite = overwrite
        self.label = label or attr
        self.storage_options = storage_options
        previous = self.store.attrs.get(attr)
        if self.store.has(name) and previous not in (None, self.tag) and not overwrite:
            raise ValueError(
                f"{self.store.path}: {name} was computed with {previous}, not {self.tag}; "
                "pass --overwrite"
            )

    def start(self) -> None:
        """Create the array when absent, record the tag, consolidate the metadata."""
        store = self.store
        if not store.has(self.name):
            create_schema_array(store.group, self.name, store.layout)
        computed = dict(store.attrs.get("computed", {}))
        computed[self.name] = False
        store.group.attrs.update({self.attr: self.tag, "computed": computed})
        consolidate(store.group)  # the metadata changed; filling chunks leaves it alone

    def run(
        self,
        compute: ChunkFn,
        *,
        workers: int | None = None,
        scheduler: str | None = None,
        progress: bool = True,
    ) -> PassReport:
        """Compute every pending chunk with ``compute`` (picklable for ``scheduler``); see the
        module docstring. ``workers``: local threads (default: all cores)."""
        store = self.store
        chunk, n = store.chunk, store.n_frames
        starts = list(range(0, n, chunk))
        writer = _ChunkWriter(store.path, self.name, self.overwrite, self.storage_options)
        import dask

        token = uuid.uuid4().hex[:12]
        prefix = f"{self.label}-chunk-{token}-"
        fn = dask.delayed(compute, name=f"{self.label}-fn-{token}", traverse=False)
        put = dask.delayed(writer, name=f"{self.label}-writer-{token}", traverse=False)
        task = dask.delayed(_fill_chunk, pure=False)
        tasks = [task(put, fn, s, min(s + chunk, n), dask_key_name=f"{prefix}{s}") for s in starts]
        counts = {"computed": 0, "frames": 0}
        t0 = time.perf_counter()
        with ProgressBars(progress, [f"{self.label} {store.path}"], [n], [0]) as bar:

            def done(_key: str, result: tuple[int, bool]) -> None:
                frames, computed = result
                bar.advance(0, frames)
                if computed:
                    counts["computed"] += 1
                    counts["frames"] += frames

            run_tasks(tasks, prefix, workers=workers, scheduler=scheduler, done=done)
        seconds = time.perf_counter() - t0
        computed_attr = dict(open_store(store.path).attrs.get("computed", {}))
        computed_attr[self.name] = True
        group = open_group(store.path, "r+", self.storage_options)
        # Through the consolidated group, so that the attribute keeps the consolidated metadata.
        consolidate(group).attrs.update({"computed": computed_attr})
        return PassReport(
            name=self.label,
            chunks=len(starts),
            skipped=len(starts) - counts["computed"],
            computed=counts["computed"],
            frames=counts["frames"],
            views=store.views,
            seconds=seconds,
        )


class _ChunkWriter:
    """Reads and writes chunks of one array; pickled as its location (dask.distributed)."""

    def __init__(
        self, url: str, name: str, overwrite: bool, storage_options: dict[str, Any] | None
    ) -> None:
        self.url, self.name, self.overwrite = url, name, overwrite
        self.storage_options = storage_options
        self._array: zarr.Array | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_array": None}

    @property
    def array(self) -> zarr.Array:
        if self._array is None:
            self._array = open_group(self.url, "r+", self.storage_options)[self.name]
        return self._array

    def pending(self, rows: slice) -> bool:
        """True when the chunk still holds only the fill value (or ``overwrite``)."""
        return self.overwrite or is_fill(np.asarray(self.array[rows]), self.name)

    def write(self, rows: slice, values: np.ndarray) -> None:
        arr = self.array
        expected = (rows.stop - rows.start, *arr.shape[1:])
        data = np.asarray(values)
        if data.shape != expected:
            raise ValueError(f"{self.name}: chunk values are {data.shape}, expected {expected}")
        arr[rows] = data.astype(arr.dtype, copy=False)


def _fill_chunk(writer: _ChunkWriter, compute: ChunkFn, start: int, stop: int) -> tuple[int, bool]:
    """One task: compute and write the chunk ``start:stop`` unless it was computed before.
    Returns (frames, computed now)."""
    rows = slice(start, stop)
    if not writer.pending(rows):
        return stop - start, False
    writer.write(rows, compute(rows))
    return stop - start, True
