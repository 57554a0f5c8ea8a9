"""Plan the KITTI stores of ``prepare-kitti``: split files -> checked lines -> frame tables.

Nothing here reads pixels. For every split file present in the split folder
(``train_files.txt``, ``val_files.txt``, ``test_files.txt``) every line is checked against the
raw tree before anything is converted:

* training / validation lines need both colour cameras (``image_02`` and ``image_03``) at the
  frame and at its temporal neighbours frame - 1 and frame + 1 (V = 2 views are stored for
  every frame a sample needs);
* test lines need ``image_02`` and their ground truth: the velodyne scan, or the improved
  ("annotated depth") PNG; with ``prev_frames`` also ``image_02`` of frame - 1 (multi-frame
  methods such as ManyDepth evaluate on (previous, current) pairs; a line at frame 0 has none:
  its sample's previous row is -1 and the loader gives a black image, as the reference does);
* every line needs its date's calibration files and the drive's ``image_02/timestamps.txt``.

A colour image is ``<frame>.png`` or ``<frame>.jpg`` (:mod:`pipelines.prepare.kitti.images`:
``image_ext`` ``auto`` takes either, per file); the plan keeps which one per stored frame and
view.

Missing files are reported together (:class:`MissingFilesError`), or, with ``skip_missing``,
the lines that need them are dropped and listed as :class:`~pipelines.store.runner.SkippedItem`.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import kitti
from kitti import SplitEntry
from kitti.calib import CAM_TO_CAM, VELO_TO_CAM
from pipelines.prepare.kitti.images import ImageFinder, ImageSummary, summarize
from pipelines.store.runner import SkippedItem

SPLIT_FILES = {"train": "train_files.txt", "val": "val_files.txt", "test": "test_files.txt"}
GT_KINDS = ("auto", "velodyne", "improved")
SHOWN_MISSING = 5  # file names quoted in the missing-files error


class MissingFilesError(ValueError):
    """Files needed by split lines are missing from the raw tree."""

    def __init__(self, missing: Sequence[Path], lines: int, hint: str = "") -> None:
        self.missing = tuple(missing)
        self.lines = lines
        shown = ", ".join(str(p) for p in self.missing[:SHOWN_MISSING])
        more = len(self.missing) - SHOWN_MISSING
        super().__init__(
            f"{len(self.missing)} file(s) needed by {lines} split line(s) are missing "
            f"(pass --skip-missing to drop those lines{hint}): {shown}"
            + (f", ... and {more} more" if more > 0 else "")
        )


@dataclass(frozen=True)
class SplitLine:
    """A parsed split line and where it came from (file name and 1-based line number)."""

    file: str
    number: int
    entry: SplitEntry

    def __str__(self) -> str:
        e = self.entry
        return f"{self.file} line {self.number} ({e.folder} {e.frame} {e.side})"


@dataclass(frozen=True, eq=False)
class StorePlan:
    """The frames and samples of one store (``train``, ``val`` or ``test``).

    Attributes:
        split: store split name.
        split_file: the split file it comes from; ``sha256`` its hash.
        sequences: drive folders (``<date>/<date>_drive_<NNNN>_sync``), sorted.
        sequence: int32 (N,) index into ``sequences`` per frame row.
        frame: int32 (N,) frame number per row; rows are sorted by (sequence, frame).
        samples: int32 (M, 4) (centre row, previous row, next row, view) per kept split line,
            in split order; test samples are (row, -1, -1, 0), or (row, previous row, -1, 0)
            with ``prev_frames`` (previous row -1 at frame 0).
        skipped: split lines dropped because files are missing (``skip_missing``).
        gt: ``None`` for training stores, ``"velodyne"`` or ``"improved"`` for the test store.
        image_ext: uint8 (N, V) per row and view (camera 02, 03): index into
            :data:`pipelines.prepare.kitti.images.EXTENSIONS` of the image file found.
        gt_reason: why the test store gets ``gt`` (e.g. ``--gt auto`` and the split folder).
    """

    split: str
    split_file: Path
    sha256: str
    sequences: tuple[str, ...]
    sequence: np.ndarray
    frame: np.ndarray
    samples: np.ndarray
    skipped: tuple[SkippedItem, ...]
    gt: str | None
    image_ext: np.ndarray
    gt_reason: str = ""

    @property
    def n_frames(self) -> int:
        return int(self.frame.shape[0])

    @property
    def images(self) -> ImageSummary:
        """How many images of each extension the store reads (and mixed drives)."""
        return summarize(self.sequences, self.sequence, self.image_ext)

    def content_hash(self) -> str:
        """sha256 of the frame table, samples and image files (part of the store fingerprint)."""
        h = hashlib.sha256("\n".join(self.sequences).encode())
        # all-PNG plans hash as before JPEG trees were read (same fingerprint, same stores)
        jpeg = (self.image_ext,) if self.image_ext.any() else ()
        for a in (self.sequence, self.frame, self.samples, *jpeg):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()


def read_split_lines(path: Path) -> tuple[list[SplitLine], str]:
    """The non-blank lines of a split file with their line numbers, and the file's sha256."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ValueError(f"{path}: cannot read split file ({e})") from e
    entries = kitti.read_split(path)  # clear errors with file and line for malformed lines
    numbers = [n for n, line in enumerate(data.decode().splitlines(), 1) if line.strip()]
    lines = [SplitLine(path.name, n, e) for n, e in zip(numbers, entries, strict=True)]
    return lines, hashlib.sha256(data).hexdigest()


def find_split_files(split_dir: Path) -> dict[str, Path]:
    """``{store split: split file}`` for the split files present in ``split_dir``."""
    if not split_dir.is_dir():
        raise ValueError(f"{split_dir}: split folder not found")
    found = {s: split_dir / f for s, f in SPLIT_FILES.items() if (split_dir / f).is_file()}
    if not found:
        raise ValueError(f"{split_dir}: no {', '.join(SPLIT_FILES.values())} in this folder")
    return found


class _Exists:
    """File existence through one directory listing per folder (fast on 40k-line splits)."""

    def __init__(self) -> None:
        self._listings: dict[str, frozenset[str]] = {}

    def __call__(self, folder: str, name: str) -> bool:
        return name in self.names(folder)

    def names(self, folder: str) -> frozenset[str]:
        """The file names in ``folder`` (empty when it cannot be listed)."""
        names = self._listings.get(folder)
        if names is None:
            try:
                names = frozenset(os.listdir(folder))
            except OSError:
                names = frozenset()
            self._listings[folder] = names
        return names


class _Needed:
    """Every raw file a split line needs (see the module docstring) as (folder, name) strings.

    The folders of each drive come from :mod:`kitti.paths` once per drive; building a
    ``pathlib.Path`` per file made planning a 40k-line split take seconds.
    """

    def __init__(
        self, root: Path, split: str, gt: str, images: ImageFinder, prev_frames: bool = False
    ) -> None:
        self.root, self.split, self.gt, self.images = root, split, gt, images
        self.prev_frames = prev_frames
        self._folders: dict[str, dict[str, str]] = {}

    def _drive(self, folder: str) -> dict[str, str]:
        found = self._folders.get(folder)
        if found is None:
            root, stamps = self.root, kitti.timestamps_path(self.root, folder)
            found = {
                "date": str(kitti.calib_dir(root, folder)),
                "stamps": str(stamps.parent),
                "stamps_name": stamps.name,
                "l": str(kitti.image_path(root, folder, 0, "l").parent),
                "r": str(kitti.image_path(root, folder, 0, "r").parent),
                "velodyne": str(kitti.velodyne_path(root, folder, 0).parent),
                "improved": str(kitti.improved_gt_path(root, folder, 0).parent),
            }
            self._folders[folder] = found
        return found

    def improved_gt(self, entry: SplitEntry) -> tuple[str, str]:
        """The improved ("annotated depth") PNG of a test line."""
        return self._drive(entry.folder)["improved"], kitti.frame_file(entry.frame)

    def __call__(self, entry: SplitEntry) -> list[tuple[str, str]]:
        d = self._drive(entry.folder)
        files = [(d["date"], CAM_TO_CAM), (d["date"], VELO_TO_CAM), (d["stamps"], d["stamps_name"])]
        if self.split == "test":
            files.append((d["l"], self.images.name(d["l"], entry.frame)))
            if self.prev_frames and entry.frame > 0:
                files.append((d["l"], self.images.name(d["l"], entry.frame - 1)))
            if self.gt == "improved":
                files.append(self.improved_gt(entry))
            else:
                files.append((d["velodyne"], kitti.frame_file(entry.frame, ".bin")))
            return files
        for frame in (entry.frame - 1, entry.frame, entry.frame + 1):  # frame -1 never exists
            files += [(d[s], self.images.name(d[s], frame)) for s in ("l", "r")]
        return files

    def image_codes(
        self, sequences: Sequence[str], sequence: np.ndarray, frame: np.ndarray, sides: str
    ) -> np.ndarray:
        """uint8 (N, V) extension code of every row's image per side (all present)."""
        codes = np.zeros((len(frame), len(sides)), dtype=np.uint8)
        for row, (s, f) in enumerate(zip(sequence.tolist(), frame.tolist(), strict=True)):
            d = self._drive(sequences[s])
            for v, side in enumerate(sides):
                codes[row, v] = self.images.code(d[side], f)
        return codes


def needed_files(
    root: Path, entry: SplitEntry, split: str, gt: str, image_ext: str = "auto"
) -> list[Path]:
    """Every raw file a split line needs (see the module docstring)."""
    needed = _Needed(root, split, gt, ImageFinder(_Exists().names, image_ext))
    return [Path(folder) / name for folder, name in needed(entry)]


def choose_gt(split_dir: Path, gt: str) -> tuple[str, str]:
    """The test ground truth, ``velodyne`` or ``improved``, and why, in words.

    ``auto`` follows the split as monodepth2's ``export_gt_depth.py`` does: a split folder named
    ``eigen_benchmark`` (or any ``*benchmark*``) gets the improved (annotated depth) maps, every
    other one (``eigen``) the velodyne scans with ``vel_depth=True``.
    """
    if gt not in GT_KINDS:
        raise ValueError(f"--gt {gt!r} must be one of {', '.join(GT_KINDS)}")
    if gt != "auto":
        return gt, f"--gt {gt}"
    name = Path(split_dir).resolve().name
    kind = "improved" if "benchmark" in name else "velodyne"
    return kind, f"--gt auto: split folder {name!r} -> {kind}, as export_gt_depth.py"


def plan_stores(
    root: Path,
    split_dir: Path,
    gt: str = "auto",
    skip_missing: bool = False,
    image_ext: str = "auto",
    prev_frames: bool = False,
) -> list[StorePlan]:
    """Check every split line against ``root`` and plan one store per split file present
    (colour images: ``.png`` or ``.jpg`` per ``image_ext``, see :mod:`.images`; ``prev_frames``:
    the test store also holds each test frame's previous frame).

    Raises:
        MissingFilesError: files are missing and ``skip_missing`` is False (all splits checked
            first, every missing file counted).
        ValueError: unreadable or malformed split files, a right-camera test line, a split
            left without any usable line, or an unknown ``image_ext``.
    """
    exists = _Exists()
    images = ImageFinder(exists.names, image_ext)
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: KITTI raw folder not found")
    files = find_split_files(Path(split_dir))
    parsed = {split: read_split_lines(path) for split, path in files.items()}
    test_gt, gt_reason = choose_gt(split_dir, gt) if "test" in parsed else (None, "")
    for line in parsed.get("test", ([], ""))[0]:
        if line.entry.side != "l":
            raise ValueError(f"{line}: test lines must use the left camera (side 'l')")

    missing: dict[Path, None] = {}  # ordered set
    kept: dict[str, list[SplitLine]] = {}
    dropped: dict[str, list[SkippedItem]] = {}
    bad_lines = 0
    for split, (lines, _) in parsed.items():
        kept[split], dropped[split] = [], []
        needed = _Needed(root, split, test_gt or "", images, prev_frames)
        for line in lines:
            absent = [Path(f) / n for f, n in needed(line.entry) if not exists(f, n)]
            if absent:
                bad_lines += 1
                missing.update(dict.fromkeys(absent))
                reason = "missing " + ", ".join(str(p) for p in absent[:3])
                dropped[split].append(SkippedItem(str(line), reason))
            else:
                kept[split].append(line)
    if missing and not skip_missing:
        hint = (
            f"; --image-ext {image_ext} counts only .{image_ext} images"
            if image_ext != "auto"
            else ""
        )
        if test_gt == "improved":
            hint += f"; the test store needs the improved ground truth ({gt_reason})"
        raise MissingFilesError(list(missing), bad_lines, hint)
    if missing:
        logging.getLogger(__name__).warning(
            "warning: dropping %d split line(s) whose %d file(s) are missing, e.g. %s",
            bad_lines, len(missing), next(iter(missing)),
        )  # fmt: skip

    plans = []
    for split, (lines, sha) in parsed.items():
        if not kept[split]:
            raise ValueError(f"{files[split]}: no usable line ({len(lines)} in the file)")
        entries = [ln.entry for ln in kept[split]]
        tables = _test_table(entries, prev_frames) if split == "test" else _training_table(entries)
        sides = "l" if split == "test" else "lr"
        codes = _Needed(root, split, "", images).image_codes(*tables[:3], sides)
        plans.append(
            StorePlan(
                split, files[split], sha, *tables, tuple(dropped[split]),
                test_gt if split == "test" else None, codes, gt_reason if split == "test" else "",
            )
        )  # fmt: skip
        if plans[-1].images.mixed_drives:
            logging.getLogger(__name__).warning("warning: %s.zarr %s", split, plans[-1].images)
    return plans


def _frame_rows(
    frames: set[tuple[str, int]],
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, dict[tuple[str, int], int]]:
    """Sorted drives, per-row sequence index and frame number, and the row of each frame."""
    ordered = sorted(frames)
    sequences = tuple(sorted({folder for folder, _ in ordered}))
    index = {s: i for i, s in enumerate(sequences)}
    sequence = np.array([index[f] for f, _ in ordered], dtype=np.int32)
    frame = np.array([k for _, k in ordered], dtype=np.int32)
    return sequences, sequence, frame, {key: row for row, key in enumerate(ordered)}


def _training_table(
    entries: Sequence[SplitEntry],
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray]:
    """Frames (centre and +-1 neighbours, stored once) and (centre, prev, next, view) samples."""
    needed = {(e.folder, e.frame + d) for e in entries for d in (-1, 0, 1)}
    sequences, sequence, frame, row = _frame_rows(needed)
    samples = np.array(
        [
            (row[e.folder, e.frame], row[e.folder, e.frame - 1], row[e.folder, e.frame + 1],
             0 if e.side == "l" else 1)
            for e in entries
        ],
        dtype=np.int32,
    ).reshape(-1, 4)  # fmt: skip
    return sequences, sequence, frame, samples


def _test_table(
    entries: Sequence[SplitEntry], prev_frames: bool = False
) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray]:
    """Test frames (sorted, stored once) and (row, prev, -1, 0) samples in split order; prev is
    the row of frame - 1 with ``prev_frames`` (-1 at frame 0, and always without it)."""
    frames = {(e.folder, e.frame) for e in entries}
    if prev_frames:
        frames |= {(e.folder, e.frame - 1) for e in entries if e.frame > 0}
    sequences, sequence, frame, row = _frame_rows(frames)
    samples = np.array(
        [(row[e.folder, e.frame], row.get((e.folder, e.frame - 1), -1) if prev_frames else -1,
          -1, 0) for e in entries],
        dtype=np.int32,
    )  # fmt: skip
    return sequences, sequence, frame, samples.reshape(-1, 4)
