"""Adding arrays to a finished store, chunk by chunk, resumably, on dask.

Every pass (:mod:`~pipelines.passes.masks`, :mod:`~pipelines.passes.hints_pass`,
:mod:`~pipelines.passes.true_masks`) goes through :class:`StorePass`:

1. the constructor opens a complete store for writing (an incomplete one is refused with
   :class:`pipelines.store.IncompleteStoreError`) and refuses one whose arrays were computed with
   another tag (``attrs[attr]``, e.g. another model or hint size; one line naming what differs)
   unless ``overwrite``; it writes nothing, so a caller can check its own inputs (weights, raw
   files) before :meth:`StorePass.start`;
2. :meth:`StorePass.start` creates the arrays when absent (schema dtype, chunks, dimension
   names; the fill value means "not computed": 255 for ``seg``, NaN for the hints), records the
   tag, marks the arrays not completely computed (``attrs["computed"][name] = False``), and
   only then, with ``overwrite``, invalidates every chunk written before
   (:mod:`pipelines.store.passrecord`); then it re-consolidates the metadata (filling chunks
   later leaves it alone);
3. :meth:`StorePass.run` runs one dask task per frame chunk, on local threads or a
   ``dask.distributed`` scheduler (:func:`pipelines.store.runner.run_tasks`), with a progress bar
   (frames, frames/s). A task skips its chunk when the chunk record (``_written_<name>``) says
   the current tag wrote it; otherwise it computes the chunk's values, writes them, then records
   the tag's id for the chunk. After the last chunk ``attrs["computed"][name] = True``.

A chunk is current only once written whole with the current settings, so an interrupted pass
(``--overwrite`` or not) resumes where it stopped and gives the same bytes as an uninterrupted
run (chunk functions must be deterministic), and old values are never taken for new ones:
``info --verify`` reports a mix, training refuses it
(:func:`pipelines.store.passrecord.pass_refusal`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from pipelines.store.arrays import consolidate, create_schema_array
from pipelines.store.inspect import is_fill
from pipelines.store.passrecord import (
    INVALIDATED,
    NOT_WRITTEN,
    ensure_record,
    record_name,
    tag_id,
)
from pipelines.store.reader import open_group, open_store
from pipelines.store.runner import ProgressBars, plural, run_tasks

ChunkFn = Callable[[slice], np.ndarray | tuple[np.ndarray, ...]]
"""``compute(rows)``: the values for frame rows ``rows`` (one chunk), ``(n, ...)``: one array,
or a tuple with one array per name of a pass that fills several."""


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


def describe_tag_change(previous: Mapping[str, Any], tag: Mapping[str, Any]) -> str:
    """``"hint_size 128x384, this run 320x1024"``: the settings that differ, readably."""
    keys = [k for k in {**previous, **tag} if previous.get(k) != tag.get(k)]
    was = ", ".join(f"{k} {_setting(previous.get(k))}" for k in keys)
    now = ", ".join(f"{k} {_setting(tag.get(k))}" for k in keys)
    return f"{was} (this run: {now})"


def _setting(value: Any) -> str:
    if value is None:
        return "unset"
    if (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int) for v in value)
    ):
        return f"{value[0]}x{value[1]}"
    return str(value)


class StorePass:
    """Fill arrays ``name`` of the complete store at ``path`` chunk by chunk (module docstring).

    Args:
        path: store path or fsspec URL.
        name: a pass array of the schema (``seg``, ``hint_depth``), or several filled together
            (``("hint_depth", "hint_depth_flipped")``: the chunk function returns a tuple).
        attr: store attribute recording what the arrays were computed with (``masks``,
            ``hints``).
        tag: that record for this run (JSON-able); another one already there is refused unless
            ``overwrite``, which recomputes every chunk.
        label: name of the pass in messages, reports and the progress bar.
    """

    def __init__(
        self,
        path: str | Path,
        name: str | Sequence[str],
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
        self.names = (name,) if isinstance(name, str) else tuple(name)
        self.attr, self.tag = attr, dict(tag)
        self.overwrite = overwrite
        self.label = label or attr
        self.storage_options = storage_options
        previous = self.store.attrs.get(attr)
        filled = any(self.store.has(n) for n in self.names)
        if filled and previous not in (None, self.tag) and not overwrite:
            what = " and ".join(n for n in self.names if self.store.has(n))
            change = (
                describe_tag_change(previous, self.tag)
                if isinstance(previous, Mapping)
                else f"{previous!r}"
            )
            raise ValueError(
                f"{self.store.path}: {what} was computed with {change}; pass --overwrite to "
                "recompute it"
            )

    @property
    def name(self) -> str:
        """The first (main) array of the pass."""
        return self.names[0]

    def start(self) -> None:
        """Create the arrays when absent, record the tag, invalidate (``overwrite``) or adopt
        (a store filled before chunk records existed) what is there, consolidate."""
        store, group = self.store, self.store.group
        previous = store.attrs.get(self.attr)
        unrecorded = [n for n in self.names if store.has(n) and record_name(n) not in group]
        for name in self.names:
            if not store.has(name):
                create_schema_array(group, name, store.layout)
        computed = dict(store.attrs.get("computed", {}))
        finished = {n: computed.get(n) is True for n in self.names}
        computed.update({n: False for n in self.names})
        # The new settings first: from here on every chunk not recorded with them is pending.
        group.attrs.update({self.attr: self.tag, "computed": computed})
        n_chunks = -(-store.n_frames // store.chunk)
        current = tag_id(self.tag)
        for name in self.names:
            record = ensure_record(group, name, n_chunks)
            if name in unrecorded:
                adopt = previous == self.tag and not self.overwrite
                record[...] = self._unrecorded_ids(name, adopt and finished[name], adopt, current)
            elif self.overwrite:
                ids = np.asarray(record[...])
                record[...] = np.where(ids != NOT_WRITTEN, INVALIDATED, NOT_WRITTEN)
        consolidate(group)  # the metadata changed; filling chunks leaves it alone

    def _unrecorded_ids(self, name: str, finished: bool, adopt: bool, current: int) -> np.ndarray:
        """Chunk ids for an array filled before records existed: chunks holding values are
        ``current`` when written with this tag (``adopt``), else INVALIDATED."""
        store = self.store
        starts = range(0, store.n_frames, store.chunk)
        if finished:
            return np.full(len(starts), current, dtype=np.uint32)
        written = np.array(
            [not is_fill(np.asarray(store[name][s : s + store.chunk]), name) for s in starts]
        )
        return np.where(written, current if adopt else INVALIDATED, NOT_WRITTEN).astype(np.uint32)

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
        writer = _ChunkWriter(store.path, self.names, tag_id(self.tag), chunk, self.storage_options)
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
        computed_attr.update({n: True for n in self.names})
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
    """Reads chunk records, writes chunks and records; pickled as its location
    (dask.distributed)."""

    def __init__(
        self,
        url: str,
        names: tuple[str, ...],
        current: int,
        chunk: int,
        storage_options: dict[str, Any] | None,
    ) -> None:
        self.url, self.names, self.current, self.chunk = url, names, current, chunk
        self.storage_options = storage_options
        self._group: zarr.Group | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_group": None}

    @property
    def group(self) -> zarr.Group:
        if self._group is None:
            self._group = open_group(self.url, "r+", self.storage_options)
        return self._group

    def pending(self, rows: slice) -> bool:
        """True unless every array's chunk record says the current settings wrote it."""
        i = rows.start // self.chunk
        return any(int(self.group[record_name(n)][i]) != self.current for n in self.names)

    def write(self, rows: slice, values: np.ndarray | tuple[np.ndarray, ...]) -> None:
        """Write the chunk of every array, then record it as current."""
        parts = (values,) if len(self.names) == 1 and not isinstance(values, tuple) else values
        if len(parts) != len(self.names):
            raise ValueError(f"{self.names}: the chunk function gave {len(parts)} array(s)")
        for name, data in zip(self.names, parts, strict=True):
            arr = self.group[name]
            expected = (rows.stop - rows.start, *arr.shape[1:])
            data = np.asarray(data)
            if data.shape != expected:
                raise ValueError(f"{name}: chunk values are {data.shape}, expected {expected}")
            arr[rows] = data.astype(arr.dtype, copy=False)
        for name in self.names:
            self.group[record_name(name)][rows.start // self.chunk] = self.current


def _fill_chunk(writer: _ChunkWriter, compute: ChunkFn, start: int, stop: int) -> tuple[int, bool]:
    """One task: compute and write the chunk ``start:stop`` unless it was computed with the
    current settings before. Returns (frames, computed now)."""
    rows = slice(start, stop)
    if not writer.pending(rows):
        return stop - start, False
    writer.write(rows, compute(rows))
    return stop - start, True
