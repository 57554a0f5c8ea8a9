"""Files of the model commands (``eval``, ``predict``, ``export``): output paths checked before
any work, atomic writes that name the file when the disk is full, and media libraries kept quiet.

* :func:`check_output_path`: a file to write whose folder cannot be made (a parent is a file) is
  one clear line before the work starts, not ``[Errno 17] File exists`` after it.
* :func:`atomic_bytes`: a uniquely named temporary file beside the target, then a rename; a
  failed write removes its temporary file, and a full disk is one line naming the file, the
  bytes it needed and the space left.
* :func:`quiet_stderr`: OpenCV's FFmpeg back-end prints to the process's stderr (file
  descriptor 2: ``moov atom not found``); this captures those lines so that a bad input is
  reported as one line naming the file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def check_output_path(path: str | Path, what: str = "file") -> Path:
    """``path`` when a ``what`` (``"file"`` or ``"folder"``) can be written there: its nearest
    existing ancestor is a folder, and the path itself is not of the other kind.

    Raises:
        ValueError: a parent is a file, or ``path`` exists as a folder (for a file) or a file
            (for a folder); the message names both.
    """
    path = Path(path)
    if what == "file" and path.is_dir():
        raise ValueError(f"{path}: is a folder; give a file name to write")
    if what == "folder" and path.exists() and not path.is_dir():
        raise ValueError(f"{path}: exists and is a file, not a folder")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{parent} is a file, not a folder: cannot write {path}")
            break
    return path


def atomic_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (module docstring); the folder must exist.

    Raises:
        OSError: the write failed, naming ``path``; when the disk is full the message says how
            many bytes the file needed and how many were free (``errno`` is ``ENOSPC``).
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            _write(f, data)
        tmp.chmod(0o644)  # mkstemp's 0600 would hide the file from the user's group
        tmp.replace(path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            free = shutil.disk_usage(path.parent).free
            full = OSError(
                f"{path}: disk full ({len(data):,} bytes needed for this file, {free:,} free); "
                "the files written before it are complete"
            )
            full.errno = errno.ENOSPC
            raise full from e
        raise
    return path


def _write(f, data: bytes) -> None:  # noqa: ANN001 - a binary file object
    """The one write of :func:`atomic_bytes` (tests replace it to fill the disk)."""
    f.write(data)
    f.flush()


class Captured:
    """Text a library printed to stderr inside :func:`quiet_stderr`."""

    def __init__(self) -> None:
        self.text = ""

    def last_line(self) -> str:
        """The last non-empty line, without FFmpeg's ``[demuxer @ 0x...]`` prefix."""
        lines = [line.strip() for line in self.text.splitlines() if line.strip()]
        if not lines:
            return ""
        line = lines[-1]
        if line.startswith("[") and "] " in line:
            line = line.split("] ", 1)[1]
        return line


@contextlib.contextmanager
def quiet_stderr(sink: BinaryIO | None = None) -> Iterator[Captured]:
    """Redirect file descriptor 2 to ``sink`` (a binary file; default a new temporary file) for
    the block; the text written there is in the yielded :class:`Captured` afterwards. Python's
    own ``sys.stderr`` is flushed first. Pass one ``sink`` to many short blocks (every frame of
    a video) to avoid a file per block."""
    captured = Captured()
    with contextlib.ExitStack() as stack:
        if sink is None:
            sink = stack.enter_context(tempfile.TemporaryFile(mode="w+b"))
        sys.stderr.flush()
        start = sink.seek(0, os.SEEK_END)
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(start)
            captured.text = sink.read().decode("utf-8", "replace")
