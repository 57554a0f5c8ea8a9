"""Stopping a run cleanly: SIGINT (Ctrl-C) and SIGTERM ask the trainer to finish its step, write
``last.pt`` and return; a second signal stops at once."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """A context manager that turns SIGINT / SIGTERM into a flag (:attr:`signal_name`).

    Only the main thread can install handlers; elsewhere (a run started from a worker thread)
    signals keep their usual effect. The handlers in place before are restored on exit.
    """

    def __init__(self, echo: Callable[[str], None] = print) -> None:
        self.echo = echo
        self.signal_name: str | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:  # the second signal: stop now
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name
        self.echo(
            f"{self.signal_name}: stopping after this step and writing the checkpoint "
            "(send it again to stop at once)"
        )
