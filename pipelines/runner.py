"""Generic conversion driver: dask over a writer's pending blocks, progress bar, summary.

Dataset pipelines (``prepare-kitti``, ``prepare-nyu``) plan their frames, create a
:class:`~pipelines.writer.StoreWriter`, write the samples table, and hand this module a *block
function* ``make_block(block, rows) -> {array name: values}`` that computes the per-frame arrays
of frame rows ``rows`` (a slice). :func:`run_conversion` then

1. builds one dask task per pending block (blocks are whole chunks, so tasks never share a chunk);
2. runs them on the local threaded scheduler with ``workers`` threads, or on a
   ``dask.distributed`` cluster when ``scheduler`` is its address (``tcp://host:8786``; workers
   must see the input files and the store location, and the block function must pickle);
3. advances a rich progress bar (frames, frames/s, ETA) as each block is written;
4. calls :meth:`StoreWriter.finish` (verify, then ``complete = True``) and returns a
   :class:`RunSummary`.

An exception in any block stops the run; blocks already written keep their done markers, so
re-running with the same arguments resumes. The block function must be deterministic.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipelines.writer import StoreWriter

BlockFn = Callable[[int, slice], Mapping[str, np.ndarray]]
"""``make_block(block, rows)``: the per-frame arrays of frame rows ``rows`` of ``block``."""


@dataclass(frozen=True)
class SkippedItem:
    """An input left out of a store (e.g. a split line whose files are missing) and why."""

    item: str
    reason: str

    def __str__(self) -> str:
        return f"{self.item}: {self.reason}"


@dataclass(frozen=True)
class RunSummary:
    """What :func:`run_conversion` did to one store."""

    store: str
    frames: int  # N, frames in the store
    samples: int  # M, rows of the samples table
    frames_written: int  # frames computed and written by this run
    blocks_written: int
    blocks_skipped: int  # blocks already done by an earlier (interrupted) run
    seconds: float
    skipped: tuple[SkippedItem, ...] = field(default=())

    @property
    def frames_per_second(self) -> float:
        return self.frames_written / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        lines = [
            f"{self.store}: {self.frames} frames, {self.samples} samples; wrote "
            f"{self.frames_written} frames in {self.blocks_written} blocks "
            f"({self.frames_per_second:.1f} frames/s, {self.seconds:.1f} s), "
            f"{self.blocks_skipped} blocks already done"
        ]
        if self.skipped:
            lines.append(f"  {len(self.skipped)} item(s) skipped:")
            lines += [f"    {s}" for s in self.skipped[:10]]
            if len(self.skipped) > 10:
                lines.append(f"    ... and {len(self.skipped) - 10} more")
        return "\n".join(lines)


def parse_size(text: str) -> tuple[int, int]:
    """``"192x640"`` (height x width) -> ``(192, 640)``; ValueError for anything else."""
    parts = text.lower().replace(" ", "").split("x")
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"size {text!r} must be HEIGHTxWIDTH, e.g. 192x640") from None
    if h < 1 or w < 1:
        raise ValueError(f"size {text!r} must be positive")
    return h, w


def run_conversion(
    writer: StoreWriter,
    make_block: BlockFn,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    label: str | None = None,
    skipped: Iterable[SkippedItem] = (),
    finish: bool = True,
) -> RunSummary:
    """Compute and write every pending block of ``writer``, then finish the store.

    Args:
        writer: a created (or resumed) writer; its samples should already be written when
            ``finish`` is True (finishing verifies them).
        make_block: deterministic block function (see :data:`BlockFn`); it must return every
            array of :attr:`StoreWriter.block_arrays`, shaped ``(rows.stop - rows.start, ...)``.
        workers: threads of the local scheduler (default: all cores); ignored with ``scheduler``.
        scheduler: address of a ``dask.distributed`` scheduler, or None for local threads.
        progress: show a progress bar (frames, frames/s, ETA) on stderr.
        label: progress bar title (default: the store path).
        skipped: inputs the caller left out, reported in the summary.
        finish: call :meth:`StoreWriter.finish` after the last block.

    Returns:
        A :class:`RunSummary`. Exceptions raised by ``make_block`` propagate unchanged.
    """
    import dask

    pending = writer.pending_blocks()
    n_frames = writer.layout.n_frames
    todo = sum(_block_len(writer, b) for b in pending)
    token = uuid.uuid4().hex[:12]
    # The writer and the block function enter the graph once, as keys every task refers to.
    shared_writer = dask.delayed(writer, name=f"writer-{token}", traverse=False)
    shared_fn = dask.delayed(make_block, name=f"block-fn-{token}", traverse=False)
    task = dask.delayed(_write_one, pure=False)
    tasks = [
        task(shared_writer, shared_fn, b, dask_key_name=f"write-block-{token}-{b}") for b in pending
    ]
    t0 = time.perf_counter()
    with _Bar(progress, label or writer.url, total=n_frames, done=n_frames - todo) as bar:
        if not tasks:
            pass
        elif scheduler:
            _run_distributed(scheduler, tasks, bar.advance)
        else:
            _run_threads(tasks, f"write-block-{token}-", workers, bar.advance)
    seconds = time.perf_counter() - t0
    if finish:
        writer.finish()
    return RunSummary(
        store=writer.url,
        frames=n_frames,
        samples=writer.layout.n_samples,
        frames_written=todo,
        blocks_written=len(pending),
        blocks_skipped=writer.n_blocks - len(pending),
        seconds=seconds,
        skipped=tuple(skipped),
    )


def _block_len(writer: StoreWriter, block: int) -> int:
    rows = writer.block_frames(block)
    return rows.stop - rows.start


def _write_one(writer: StoreWriter, make_block: BlockFn, block: int) -> int:
    """One task: compute the block, write it, mark it done; returns its frame count."""
    rows = writer.block_frames(block)
    writer.write_block(block, **make_block(block, rows))
    return rows.stop - rows.start


def _run_threads(
    tasks: Sequence[Any], prefix: str, workers: int | None, advance: Callable[[int], None]
) -> None:
    import os

    import dask
    from dask.callbacks import Callback

    def posttask(key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        if isinstance(key, str) and key.startswith(prefix):
            advance(int(result))

    n = workers if workers and workers > 0 else (os.cpu_count() or 1)
    with Callback(posttask=posttask):
        dask.compute(*tasks, scheduler="threads", num_workers=n)


def _run_distributed(address: str, tasks: Sequence[Any], advance: Callable[[int], None]) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError as e:
        raise ImportError(
            "--scheduler needs dask.distributed: pip install 'depthkit[distributed]' "
            "(or pip install distributed)"
        ) from e
    try:
        client = Client(address, timeout="30s")
    except OSError as e:
        raise ValueError(f"cannot reach the dask scheduler at {address} ({e})") from e
    with client:
        futures = client.compute(list(tasks))
        try:
            for future in as_completed(futures):
                advance(int(future.result()))
        finally:
            client.cancel(futures)


class _Bar:
    """Rich progress bar over frames: count, frames/s and ETA (or nothing when disabled)."""

    def __init__(self, enabled: bool, label: str, total: int, done: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]} frames/s"),
            TimeRemainingColumn(),
            disable=not enabled,
        )
        self._task = self._progress.add_task(label, total=total, completed=done, rate="-")

    def advance(self, frames: int) -> None:
        self._progress.advance(self._task, frames)
        speed = self._progress.tasks[0].speed
        if speed:
            self._progress.update(self._task, rate=f"{speed:.1f}")

    def __enter__(self) -> _Bar:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)  # type: ignore[arg-type]
