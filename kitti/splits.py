"""monodepth2-format split files (spec kitti.md section 7).

One sample per line: ``<folder> <frame> <side>``, e.g.
``2011_09_26/2011_09_26_drive_0002_sync 0000000069 l``; odometry splits use
``<sequence> <frame> <side>``. The side is ``l`` / ``r`` (``2`` / ``3`` are accepted and mapped).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SIDES = {"l": "l", "r": "r", "2": "l", "3": "r"}
CAMERA_OF_SIDE = {"l": 2, "r": 3}


@dataclass(frozen=True)
class SplitEntry:
    """One line of a split file.

    Attributes:
        folder: drive folder relative to the data root (``<date>/<date>_drive_<NNNN>_sync``),
            or the odometry sequence number as written (``"9"``).
        frame: frame index inside the drive (>= 0).
        side: ``"l"`` (camera 02) or ``"r"`` (camera 03).
    """

    folder: str
    frame: int
    side: str

    @property
    def cam(self) -> int:
        """KITTI camera index of the side: 2 for ``l``, 3 for ``r``."""
        return CAMERA_OF_SIDE[self.side]

    @property
    def date(self) -> str:
        """The recording date folder (first path component of ``folder``)."""
        return self.folder.split("/")[0]


def parse_split_line(line: str, where: str = "<string>") -> SplitEntry:
    """Parse one non-blank split line; ``where`` (file and line) prefixes error messages."""
    tokens = line.split()
    if len(tokens) != 3:
        raise ValueError(f"{where}: expected '<folder> <frame> <side>', got {line.strip()!r}")
    folder, frame_text, side = tokens
    try:
        frame = int(frame_text)
    except ValueError:
        raise ValueError(f"{where}: frame {frame_text!r} is not an integer") from None
    if frame < 0:
        raise ValueError(f"{where}: frame {frame} is negative")
    if side not in SIDES:
        raise ValueError(f"{where}: side {side!r} must be one of l, r, 2, 3")
    return SplitEntry(folder=folder, frame=frame, side=SIDES[side])


def read_split(path: str | Path) -> list[SplitEntry]:
    """Read a split file (eigen, eigen_zhou, eigen_full, eigen_benchmark, odom, ...).

    Blank lines are ignored. Raises ValueError naming the file and the 1-based line number for a
    line without exactly three tokens, a non-integer or negative frame, or an unknown side; and
    naming the file when it cannot be read.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: cannot read split file ({err})") from err
    return [
        parse_split_line(line, f"{path}, line {number}")
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]
