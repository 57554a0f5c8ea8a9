"""KITTI ``timestamps.txt`` files: one ``YYYY-MM-DD HH:MM:SS.fffffffff`` line per frame."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

_LINE = re.compile(r"(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?")


def read_timestamps(path: str | Path) -> np.ndarray:
    """Read a KITTI timestamps file: float64 (N,) seconds since the Unix epoch (UTC, naive).

    Line k (0-based) belongs to frame k. Nanoseconds are parsed exactly; the float64 result
    resolves about 0.25 microseconds at 2011 epoch times. Trailing blank lines are ignored.

    Raises:
        ValueError: the file cannot be read, or a line (named with its 1-based number) is blank
            before the end or is not a ``YYYY-MM-DD HH:MM:SS[.fraction]`` time.
    """
    path = Path(path)
    try:
        lines = path.read_text().rstrip().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: cannot read timestamps ({err})") from err
    whole = np.empty(len(lines), dtype="datetime64[s]")
    fraction = np.zeros(len(lines), dtype=np.int64)  # nanoseconds
    for index, line in enumerate(lines):
        match = _LINE.fullmatch(line.strip())
        try:
            if match is None:
                raise ValueError
            whole[index] = np.datetime64(f"{match[1]}T{match[2]}", "s")
        except ValueError:
            raise ValueError(
                f"{path}, line {index + 1}: expected 'YYYY-MM-DD HH:MM:SS.fffffffff', got {line!r}"
            ) from None
        if match[3]:
            fraction[index] = int(match[3].ljust(9, "0"))
    return whole.astype(np.int64).astype(np.float64) + fraction.astype(np.float64) * 1e-9
