"""A run folder: what it holds, the guard against overwriting a run, and its lock.

``RUN/config.json`` (the config), ``RUN/run.json`` (the stores it trains on: what ``--resume``
takes back), ``RUN/checkpoints/`` (``last.pt``, ``epoch_NNN.pt``), ``RUN/log.jsonl``,
``RUN/tensorboard/`` or ``RUN/images/``. A folder holding any of them is a run: a new run there is
refused unless resumed or overwritten. While a run trains, ``RUN/.lock`` names its process; a
second run on the same folder is refused, a lock left by a dead process is taken over.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUN_ENTRIES = ("checkpoints", "log.jsonl", "tensorboard", "images", "config.json", "run.json")
LOCK_NAME = ".lock"


@dataclass(frozen=True)
class RunFolder:
    """The paths of a run folder."""

    path: Path

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last(self) -> Path:
        return self.checkpoints / "last.pt"

    def epoch_file(self, epoch: int) -> Path:
        return self.checkpoints / f"epoch_{epoch:03d}.pt"

    def holds_run(self) -> list[str]:
        """The run entries present (empty for a new or empty folder)."""
        return [name for name in RUN_ENTRIES if (self.path / name).exists()]

    def check_new_run(self, overwrite: bool) -> None:
        """Refuse a folder that holds a run, or with ``overwrite`` delete the run's entries
        (only those: other files in the folder stay).

        Raises:
            ValueError: the folder holds a run and ``overwrite`` is False.
        """
        present = self.holds_run()
        if not present:
            return
        if not overwrite:
            what = f"a checkpoint ({self.last})" if self.last.exists() else ", ".join(present)
            raise ValueError(
                f"{self.path} already holds a run ({what}); continue it with --resume, or "
                "replace it with --overwrite"
            )
        for name in present:
            entry = self.path / name
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()

    def record(self, config: dict[str, Any], stores: dict[str, str | None]) -> None:
        """Write ``config.json`` and ``run.json`` (the stores; what ``--resume`` reuses)."""
        self.path.mkdir(parents=True, exist_ok=True)
        _write_json(self.path / "config.json", config)
        _write_json(self.path / "run.json", {"stores": stores})

    def recorded_stores(self) -> dict[str, str | None]:
        """The stores of ``run.json`` (``train``, ``val``); empty for runs older than it."""
        path = self.path / "run.json"
        if not path.is_file():
            return {}
        return dict(json.loads(path.read_text(encoding="utf-8")).get("stores", {}))

    def prune_epoch_files(self, keep: int) -> None:
        """Delete all but the newest ``keep`` ``epoch_NNN.pt`` files (0 = keep all)."""
        if keep <= 0:
            return
        # by epoch number: past epoch 999 the zero-padded names no longer sort as numbers
        files = sorted(
            self.checkpoints.glob("epoch_*.pt"), key=lambda p: int(p.stem.removeprefix("epoch_"))
        )
        for old in files[:-keep]:
            old.unlink(missing_ok=True)


class RunLock:
    """``RUN/.lock`` while a run trains (a context manager; a no-op when ``enabled`` is False).

    The lock file holds the host, process id and start time. A lock whose process is gone (same
    host, no such process) is stale and taken over; any other is refused.
    """

    def __init__(self, folder: str | Path, enabled: bool = True) -> None:
        self.path = Path(folder) / LOCK_NAME
        self.enabled = enabled
        self.took_over: dict[str, Any] | None = None
        self._created = False

    def __enter__(self) -> RunLock:
        if not self.enabled:
            return self
        self._created = not self.path.parent.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        mine = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder is not None and _alive(holder):
                    raise ValueError(_busy(self.path.parent, holder)) from None
                self.took_over = holder
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(mine, f)
            return self
        raise ValueError(f"{self.path}: cannot take the run folder's lock")

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.path.unlink(missing_ok=True)
            if self._created and not any(self.path.parent.iterdir()):
                self.path.parent.rmdir()  # a run refused before it wrote anything

    def _holder(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # unreadable or half-written: treat as stale


def _alive(holder: dict[str, Any]) -> bool:
    if holder.get("host") != socket.gethostname():
        return True  # another machine's process: cannot tell, so respect it
    try:
        os.kill(int(holder.get("pid", -1)), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, OverflowError):
        return True
    return True


def _busy(folder: Path, holder: dict[str, Any]) -> str:
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(holder.get("since", 0))))
    return (
        f"{folder} is in use by another training process (pid {holder.get('pid')} on "
        f"{holder.get('host')}, since {since}); choose another --out, or wait for it to finish "
        f"(remove {folder / LOCK_NAME} only if that process is gone)"
    )


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
