"""Generic conversion driver: dask over a writer's pending blocks, progress bar, summary.

Dataset pipelines (``prepare-kitti``, ``prepare-nyu``) plan their frames, create a
:class:`~pipelines.store.writer.StoreWriter`, write the samples table, and hand this module a *block
function* ``make_block(block, rows) -> {array name: values}`` that computes the per-frame arrays
of frame rows ``rows`` (a slice). :func:`run_conversions` (several stores, one graph) or
:func:`run_conversion` (one store) then

1. builds one dask task per pending block (blocks are whole chunks, so tasks never share a chunk);
2. runs them on the local threaded scheduler with ``workers`` threads, or on a
   ``dask.distributed`` cluster when ``scheduler`` is its address (``tcp://host:8786``; workers
   must see the input files and the store location, and the block function must pickle);
3. advances a rich progress bar per store (frames, frames/s, ETA) as each block is written (plain
   lines, at most one every few seconds, when stderr is not a terminal: logs, CI, pipes);
4. calls :meth:`StoreWriter.finish` (verify, then ``complete = True``) on every store and returns
   a :class:`RunSummary` per store.

An exception in any block stops the run; blocks already written keep their done markers, so
re-running with the same arguments resumes. The block function must be deterministic.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipelines.store.failures import disk_full_error, is_disk_full, record_failure
from pipelines.store.options import parse_size
from pipelines.store.progress import ProgressBars
from pipelines.store.writer import StoreWriter

__all__ = ["Conversion", "ProgressBars", "RunSummary", "SkippedItem", "parse_size", "plural",
           "run_conversion", "run_conversions", "run_tasks", "write_blocks"]  # fmt: skip

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
            f"{self.store}: {plural(self.frames, 'frame')}, {plural(self.samples, 'sample')}; "
            f"wrote {plural(self.frames_written, 'frame')} in "
            f"{plural(self.blocks_written, 'block')} "
            f"({self.frames_per_second:.1f} frames/s, {self.seconds:.1f} s), "
            f"{plural(self.blocks_skipped, 'block')} already done"
        ]
        if self.skipped:
            lines.append(f"  {plural(len(self.skipped), 'item')} skipped:")
            lines += [f"    {s}" for s in self.skipped[:10]]
            if len(self.skipped) > 10:
                lines.append(f"    ... and {len(self.skipped) - 10} more")
        return "\n".join(lines)


def plural(n: int, word: str) -> str:
    """``"1 block"``, ``"2 blocks"``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@dataclass(frozen=True, eq=False)
class Conversion:
    """One store to write: its writer, its block function, a progress label, skipped inputs,
    and per-frame arrays known without pixel work (``frames``: name -> (N, ...) values), which
    are written whole (:meth:`StoreWriter.write_frames`) by a thread of this process while the
    blocks run, and left out of the blocks."""

    writer: StoreWriter
    make_block: BlockFn
    label: str | None = None
    skipped: tuple[SkippedItem, ...] = ()
    frames: Mapping[str, np.ndarray] = field(default_factory=dict)


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
    """Compute and write every pending block of one store, then finish it.

    Same as :func:`run_conversions` with one :class:`Conversion`; see there.
    """
    job = Conversion(writer, make_block, label, tuple(skipped))
    (summary,) = run_conversions(
        [job], workers=workers, scheduler=scheduler, progress=progress, finish=finish
    )
    return summary


def run_conversions(
    jobs: Sequence[Conversion],
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    finish: bool = True,
) -> list[RunSummary]:
    """Compute and write every pending block of every store in one dask graph, then finish them.

    One graph keeps all workers busy across store boundaries (no idle tail per store).

    Args:
        jobs: the stores. Each writer is created (or resumed) and should already hold its
            samples when ``finish`` is True (finishing verifies them). Each block function is
            deterministic (see :data:`BlockFn`) and returns every array of
            :attr:`StoreWriter.block_arrays`, shaped ``(rows.stop - rows.start, ...)``.
        workers: threads of the local scheduler (default: all cores); ignored with ``scheduler``.
        scheduler: address of a ``dask.distributed`` scheduler, or None for local threads.
        progress: show one progress bar per store (frames, frames/s, ETA) on stderr.
        finish: call :meth:`StoreWriter.finish` on every writer after the last block, in order.

    Returns:
        One :class:`RunSummary` per job, in order; ``seconds`` runs from the start to the
        store's last block. Exceptions raised by a block function propagate unchanged (no
        store is finished then); a ValueError (a bad input) is first recorded in the unfinished
        stores, and a full disk becomes one line naming the store and the space it needs
        (:mod:`pipelines.store.failures`).
    """
    import dask

    token = uuid.uuid4().hex[:12]
    prefix = f"write-block-{token}-"
    pending = [job.writer.pending_blocks() for job in jobs]
    todo = [sum(_block_len(j.writer, b) for b in p) for j, p in zip(jobs, pending, strict=True)]
    task = dask.delayed(_write_one, pure=False)
    tasks = []
    for k, (job, blocks) in enumerate(zip(jobs, pending, strict=True)):
        # The writer and the block function enter the graph once, as keys every task refers to.
        writer = dask.delayed(job.writer, name=f"writer-{token}-{k}", traverse=False)
        make_block = dask.delayed(job.make_block, name=f"block-fn-{token}-{k}", traverse=False)
        tasks += [task(writer, make_block, b, dask_key_name=f"{prefix}{k}-{b}") for b in blocks]
        job.writer.expect_frames(*job.frames)

    t0 = time.perf_counter()
    ended = [t0] * len(jobs)
    labels = [job.label or job.writer.url for job in jobs]
    totals = [job.writer.layout.n_frames for job in jobs]
    done = [n - t for n, t in zip(totals, todo, strict=True)]
    with ProgressBars(progress, labels, totals, done) as bar:

        def advance(key: str, frames: Any) -> None:
            k = int(key[len(prefix) :].split("-")[0])
            bar.advance(k, int(frames))
            ended[k] = time.perf_counter()

        writers = [job.writer for job in jobs]
        try:
            # The whole per-frame arrays are written here, beside the block tasks: as graph
            # tasks dask orders them last, where they would run alone.
            with ThreadPoolExecutor(1) as side:
                frames = side.submit(_write_frames, [job for job in jobs if job.frames])
                run_tasks(tasks, prefix, workers=workers, scheduler=scheduler, done=advance)
                frames.result()
            if finish:
                for job in jobs:
                    job.writer.finish()
        except OSError as e:
            if is_disk_full(e):
                raise disk_full_error(writers, e) from e
            raise
        except ValueError as e:  # a bad input: the same command fails again on it
            record_failure(writers, e)
            raise
    return [
        RunSummary(
            store=job.writer.url,
            frames=job.writer.layout.n_frames,
            samples=job.writer.layout.n_samples,
            frames_written=todo[k],
            blocks_written=len(pending[k]),
            blocks_skipped=job.writer.n_blocks - len(pending[k]),
            seconds=ended[k] - t0,
            skipped=job.skipped,
        )
        for k, job in enumerate(jobs)
    ]


def write_blocks(
    writer: StoreWriter,
    make_block: BlockFn,
    *,
    scheduler: Any = None,
) -> int:
    """Compute and write every pending block with dask; returns how many were written.

    ``make_block(block, frames)`` returns the block's arrays for frame rows ``frames``; it runs
    in a dask task (threads by default; pass ``scheduler="processes"`` or a
    ``distributed.Client``), so it and the writer must be picklable for remote schedulers.
    """
    import dask

    pending = writer.pending_blocks()
    tasks = [dask.delayed(_write_one)(writer, make_block, b) for b in pending]
    dask.compute(*tasks, scheduler=scheduler)
    return len(pending)


def run_tasks(
    tasks: Sequence[Any],
    prefix: str,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    done: Callable[[str, Any], None] = lambda key, result: None,
) -> None:
    """Compute dask ``tasks`` (delayed objects whose keys start with ``prefix``) on the local
    threaded scheduler with ``workers`` threads (default: all cores), or on the
    ``dask.distributed`` scheduler at address ``scheduler``; ``done(key, result)`` is called in
    this process as each task finishes (progress bars). Exceptions propagate unchanged."""
    if not tasks:
        return
    if scheduler:
        _run_distributed(scheduler, tasks, done)
    else:
        _run_threads(tasks, prefix, workers, done)


def _write_frames(jobs: Sequence[Conversion]) -> None:
    """Write the whole per-frame arrays of ``jobs`` (:attr:`Conversion.frames`)."""
    for job in jobs:
        job.writer.write_frames(**job.frames)


def _block_len(writer: StoreWriter, block: int) -> int:
    rows = writer.block_frames(block)
    return rows.stop - rows.start


def _write_one(writer: StoreWriter, make_block: BlockFn, block: int) -> int:
    """One task: compute the block, write it, mark it done; returns its frame count."""
    rows = writer.block_frames(block)
    writer.write_block(block, **make_block(block, rows))
    return rows.stop - rows.start


def _run_threads(
    tasks: Sequence[Any], prefix: str, workers: int | None, advance: Callable[[str, Any], None]
) -> None:
    import os

    import dask
    from dask.callbacks import Callback

    def posttask(key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        if isinstance(key, str) and key.startswith(prefix):
            advance(key, result)

    n = workers if workers and workers > 0 else (os.cpu_count() or 1)
    with Callback(posttask=posttask):
        dask.compute(*tasks, scheduler="threads", num_workers=n)


def _run_distributed(
    address: str, tasks: Sequence[Any], advance: Callable[[str, Any], None]
) -> None:
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
                advance(str(future.key), future.result())
        finally:
            client.cancel(futures)
