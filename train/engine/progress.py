"""The training progress display: a rich bar on a terminal; on a pipe or a log file (no
terminal), one plain line per epoch and at most one a minute, which neither wraps nor floods."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from rich import progress as rp

PLAIN_EVERY_S = 60.0


class Progress:
    """Steps done out of ``total`` (from ``completed``), with the epoch and samples/s."""

    def __init__(
        self, total: int, completed: int, enabled: bool, echo: Callable[[str], None] = print
    ) -> None:
        self.total, self.done = total, completed
        self.enabled = enabled
        self.echo = echo
        self.terminal = enabled and sys.stderr.isatty()
        self._bar: rp.Progress | None = None
        self._epoch: int | None = None
        self._printed = time.monotonic()
        if self.terminal:
            self._bar = rp.Progress(
                rp.TextColumn("{task.description}"),
                rp.BarColumn(),
                rp.MofNCompleteColumn(),
                rp.TextColumn("{task.fields[rate]}"),
                rp.TimeElapsedColumn(),
                rp.TextColumn("ETA"),
                rp.TimeRemainingColumn(),
            )
            self._task = self._bar.add_task("train", total=total, completed=completed, rate="")

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)

    def advance(self, epoch: int, samples_per_s: float) -> None:
        """One step of ``epoch`` done."""
        self.done += 1
        rate = f"{samples_per_s:.1f} samples/s"
        if self._bar is not None:
            self._bar.update(self._task, advance=1, rate=rate, description=f"epoch {epoch}")
            return
        new_epoch = epoch != self._epoch
        if self.enabled and (new_epoch or time.monotonic() - self._printed >= PLAIN_EVERY_S):
            self.echo(f"epoch {epoch}: step {self.done}/{self.total}, {rate}")
            self._epoch, self._printed = epoch, time.monotonic()
