"""The checkpoint file itself: an atomic write and a read with one clear error, nothing else.

Below the methods and the engine (it knows neither): :mod:`train.engine.checkpoint` builds and
upgrades the payload, a method that reads another run's weights (FeatDepth's stage-1 extractor)
reads the raw payload here.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

FORMAT_PREFIX = "depthkit-checkpoint/"


def atomic_save(payload: dict[str, Any], path: str | Path) -> Path:
    """``torch.save`` to a uniquely named temporary file beside ``path``, then rename.

    A reader never sees a half-written file, two writers never share a temporary name, and a
    failed write (disk full) removes its temporary file and leaves the previous ``path`` intact.

    Raises:
        OSError: the write failed; the message names ``path`` (and, when the disk is full, the
            space the payload needed and what was free).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        tmp.chmod(0o644)  # mkstemp's 0600 would hide the file from the user's group
        tmp.replace(path)
    except BaseException as e:
        written = tmp.stat().st_size if tmp.exists() else 0
        tmp.unlink(missing_ok=True)
        if isinstance(e, (OSError, RuntimeError)) and _disk_full(e):
            free = shutil.disk_usage(path.parent).free
            raise OSError(
                errno.ENOSPC,
                f"{path}: disk full while writing the checkpoint ({written / 1e6:.0f} MB written "
                f"before it failed, at least {_payload_bytes(payload) / 1e6:.0f} MB needed, "
                f"{free / 1e6:.0f} MB free); the previous checkpoint is unchanged",
            ) from e
        raise
    return path


def load_payload(path: str | Path) -> dict[str, Any]:
    """The dict of a depthkit checkpoint file on the CPU (no format upgrade).

    Raises:
        ValueError: missing file, unreadable file, or not a depthkit checkpoint (names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file
        raise ValueError(
            f"{path}: not a readable checkpoint (torch.load failed: {type(e).__name__}); "
            "expected a depthkit checkpoint such as RUN/checkpoints/last.pt"
        ) from e
    if not isinstance(payload, dict) or not str(payload.get("format", "")).startswith(
        FORMAT_PREFIX
    ):
        raise ValueError(f"{path}: not a depthkit checkpoint")
    return payload


def _disk_full(e: BaseException) -> bool:
    if isinstance(e, OSError) and e.errno == errno.ENOSPC:
        return True
    # torch's zip writer reports a short write as "unexpected pos ..." (a RuntimeError)
    return "unexpected pos" in str(e) or "No space left" in str(e)


def _payload_bytes(payload: Any) -> int:
    if isinstance(payload, torch.Tensor):
        return payload.numel() * payload.element_size()
    if isinstance(payload, dict):
        return sum(_payload_bytes(v) for v in payload.values())
    if isinstance(payload, (list, tuple)):
        return sum(_payload_bytes(v) for v in payload)
    return 0
