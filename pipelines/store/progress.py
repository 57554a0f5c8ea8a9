"""Progress of the conversions and passes over frames: rich bars on a terminal, plain lines
otherwise (see :class:`ProgressBars`)."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from rich.progress import ProgressColumn, Task
from rich.text import Text


class _RateColumn(ProgressColumn):
    """Frames per second of a task (blank until the first block has finished)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f} frames/s" if speed else "", style="progress.data.speed")


class ProgressBars:
    """Progress over frames, one per store: count, frames/s and ETA (or nothing).

    On a terminal: rich progress bars on stderr. Otherwise (a log file, CI, a pipe): plain lines
    on stderr, one per store at most every ``interval`` seconds and when it is done, so that
    logs hold neither bar redraws nor wrapped bars.
    """

    def __init__(
        self,
        enabled: bool,
        labels: Sequence[str],
        totals: Sequence[int],
        done: Sequence[int],
        interval: float = 10.0,
    ) -> None:
        self._plain = None
        self._progress = None
        if enabled and not sys.stderr.isatty():
            self._plain = _PlainProgress(labels, totals, done, interval)
            return
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
            _RateColumn(),
            TimeRemainingColumn(),
            disable=not enabled,
        )
        self._tasks = [
            self._progress.add_task(label, total=total, completed=d)
            for label, total, d in zip(labels, totals, done, strict=True)
        ]

    def advance(self, k: int, frames: int) -> None:
        if self._plain is not None:
            self._plain.advance(k, frames)
        elif self._progress is not None:
            self._progress.advance(self._tasks[k], frames)

    def __enter__(self) -> ProgressBars:
        if self._progress is not None:
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)  # type: ignore[arg-type]


class _PlainProgress:
    """Progress as plain stderr lines: ``label: 120/240 frames (50 %), 95.3 frames/s, 1 s left``."""

    def __init__(
        self, labels: Sequence[str], totals: Sequence[int], done: Sequence[int], interval: float
    ) -> None:
        self.labels, self.totals, self.interval = list(labels), list(totals), interval
        self.done, self.start = list(done), list(done)
        self.t0 = time.perf_counter()
        self.last = [float("-inf")] * len(self.labels)

    def advance(self, k: int, frames: int) -> None:
        self.done[k] += frames
        now = time.perf_counter()
        finished = self.done[k] >= self.totals[k]
        if not finished and now - self.last[k] < self.interval:
            return
        self.last[k] = now
        total, done = self.totals[k], self.done[k]
        line = f"{self.labels[k]}: {done}/{total} frames ({100 * done // max(total, 1)} %)"
        rate = (done - self.start[k]) / (now - self.t0) if now > self.t0 else 0.0
        if rate > 0:
            line += f", {rate:.1f} frames/s"
            if not finished:
                line += f", {(total - done) / rate:.0f} s left"
        print(line, file=sys.stderr, flush=True)
