"""Frame rows of a zarr array read as a few contiguous, chunk-aligned slices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class RowTable:
    """Frame rows of one array read as a few contiguous slices.

    ``starts[i]`` is the first frame row of ``parts[i]``; ``table[row]`` is that row's data.
    """

    starts: np.ndarray
    parts: list[np.ndarray]

    @classmethod
    def read(cls, array: Any, rows: np.ndarray, chunk: int) -> RowTable:
        """Read ``rows`` of a zarr ``array``, one slice per run of rows.

        Rows whose chunks touch or neighbour each other share one slice, so no chunk is
        decompressed twice (reading any row decompresses its whole chunk anyway).
        """
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        if len(rows) == 0:
            return cls(np.zeros(0, np.int64), [])
        chunks = rows // chunk
        breaks = np.flatnonzero(chunks[1:] > chunks[:-1] + 1) + 1
        firsts = np.r_[0, breaks]
        lasts = np.r_[breaks - 1, len(rows) - 1]
        parts = [
            np.asarray(array[rows[a] : rows[b] + 1]) for a, b in zip(firsts, lasts, strict=True)
        ]
        return cls(rows[firsts], parts)

    def __getitem__(self, row: int) -> np.ndarray:
        i = int(np.searchsorted(self.starts, row, side="right")) - 1
        return self.parts[i][row - self.starts[i]]
