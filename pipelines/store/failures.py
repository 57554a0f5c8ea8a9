"""What a conversion that stops on an error leaves behind, and what it says.

* A bad input (a ValueError from a block function: a truncated image, a scan of the wrong size)
  fails the same way on every re-run: :func:`record_failure` writes it into each unfinished
  store (``_failed`` attribute), so that a later refusal of the store
  (:func:`pipelines.store.reader.require_complete`) says which file stopped it instead of calling
  the run interrupted. A successful (re)start of the writer removes the record.
* A full disk (``ENOSPC``, whose OSError names no file when it happens inside a write) becomes one
  line naming the store, the free space and about how much more it needs
  (:func:`disk_full_error`); zarr removes its own temporary ``.partial`` file, and the blocks
  written so far stay, so the same command resumes once there is room.
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipelines.store.schema import ARRAYS, FAILED_ATTR

if TYPE_CHECKING:
    from pipelines.store.writer import StoreWriter


def record_failure(writers: Sequence[StoreWriter], error: BaseException) -> None:
    """Write ``error`` (one line) into the ``_failed`` attribute of each writer's store that
    still has blocks to write; never raises (the original error matters more)."""
    text = " ".join(str(error).split())[:400]
    for writer in writers:
        try:
            if writer.pending_blocks():
                writer.group.attrs.update({FAILED_ATTR: {"error": text}})
        except Exception:  # noqa: BLE001, S112 - best effort beside the real error
            continue


def is_disk_full(error: BaseException) -> bool:
    """True for an OSError meaning the disk (or quota) is full."""
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)


def disk_full_error(writers: Sequence[StoreWriter], error: OSError) -> OSError:
    """One-line OSError for a full disk: the store, the free space, the space still needed."""
    unfinished = [w for w in writers if _safe_pending(w)] or list(writers)
    target = unfinished[0].url
    for writer in unfinished:
        if error.filename and str(error.filename).startswith(writer.url):
            target = writer.url
    needed = sum(space_needed(w) for w in unfinished)
    free = _free_bytes(Path(target))
    where = f"{_size(free)} free" if free is not None else "free space unknown"
    return OSError(
        f"{target}: no space left on the disk ({where}; the stores need about {_size(needed)} "
        "more); free some space or choose another OUT_DIR, then re-run the same command: it "
        "resumes with the blocks already written"
    )


def space_needed(writer: StoreWriter) -> int:
    """Bytes the frames still to write will take, estimated from the frames written so far
    (stored bytes per frame), else their uncompressed size."""
    blocks = [writer.block_frames(b) for b in _safe_pending(writer)]
    left = sum(rows.stop - rows.start for rows in blocks)
    done = writer.layout.n_frames - left
    per_frame = sum(
        int(np.prod(writer.layout.shape(n)[1:])) * np.dtype(ARRAYS[n].dtype).itemsize
        for n in writer.arrays
        if ARRAYS[n].per_frame
    )
    root = Path(writer.url)
    if done > 0 and "://" not in writer.url and root.is_dir():
        stored = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
        per_frame = min(per_frame, max(1, stored // done))
    return left * per_frame


def _safe_pending(writer: StoreWriter) -> list[int]:
    try:
        return writer.pending_blocks()
    except Exception:  # noqa: BLE001 - reading the markers may fail on a full disk too
        return list(range(writer.n_blocks))


def _free_bytes(path: Path) -> int | None:
    for folder in (path, *path.parents):
        if folder.exists():
            try:
                return shutil.disk_usage(folder).free
            except OSError:
                return None
    return None


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"
