"""Plan the raw NYU stores of ``prepare-nyu``: scenes -> synced frames -> checked frame tables.

No pixel is decoded here. For every scene kept (see :func:`split_scenes`) the synced frames of
:func:`nyutools.sync_frames` are subsampled on the stride grid (synced indices 0, K, 2K, ...),
and every grid frame's files are checked cheaply: depth and RGB by size and header (a stat or
zip directory entry plus the first 17 bytes), the 12-byte accelerometer record by reading it.
A frame with a missing, truncated or malformed file is dropped here, at planning time, and
listed as a :class:`~pipelines.store.runner.SkippedItem` (with a logged warning naming the file), so
the blocks written later are a pure function of the plan.

Neighbours. A stored frame with synced index ``i`` has its temporal neighbours at synced
indices ``i - G*K`` and ``i + G*K`` (``G`` = neighbour gap, ``K`` = stride, i.e. ``G`` steps on
the stride grid) in the same scene. A neighbour that was dropped as unreadable is absent, and
the gap is never bridged by a farther frame. Only frames with both neighbours become samples
(a self-supervised sample needs both); every readable grid frame is stored.

Sampling (``--sample N --seed S``, the feature-metric study's NYU setting): instead of a grid,
N synced frames are drawn uniformly without replacement, by seed, among the frames of the kept
scenes that have both neighbours at -/+ G synced frames in their scene
(:func:`sample_centres`); each is stored with those two neighbours, and only the drawn frames
are sample centres (a neighbour stored for one centre is not a sample itself).
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import nyutools
from nyutools.readers import (
    DEPTH_FILE_SIZE,
    DEPTH_HEADER,
    RGB_FILE_SIZE,
    RGB_HEADER,
    NyuFormatError,
    read_accel_dump,
)
from pipelines.store.runner import SkippedItem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SceneSource:
    """Where a scene lives: a folder (``member_prefix`` None) or ``member_prefix/`` in a zip."""

    name: str
    path: str
    member_prefix: str | None = None

    @classmethod
    def of(cls, scene: nyutools.Scene) -> SceneSource:
        return cls(scene.name, str(scene.path), scene.member_prefix)

    def open(self) -> nyutools.Scene:
        """A fresh :class:`nyutools.Scene` (its own zip handle; close it after use)."""
        return nyutools.Scene(self.name, Path(self.path), self.member_prefix)


@dataclass(frozen=True)
class ScenePlan:
    """The checked grid frames of one scene.

    Attributes:
        source: the scene.
        n_synced: synced frames of the scene (one per depth file).
        index: int (F,) synced index of each kept frame, ascending.
        depth, rgb: bare file names per kept frame.
        t_rgb: float64 (F,) RGB host time (s); ``accel``: float32 (F, 4), NaN when the scene
            has no accelerometer file at all.
        skipped: grid frames dropped because a file is unreadable.
        centres: int (C,) synced indices of the sample centres (``--sample``), or None: every
            kept frame with both neighbours is one.
    """

    source: SceneSource
    n_synced: int
    index: np.ndarray
    depth: tuple[str, ...]
    rgb: tuple[str, ...]
    t_rgb: np.ndarray
    accel: np.ndarray
    skipped: tuple[SkippedItem, ...]
    centres: np.ndarray | None = None

    @property
    def n_grid(self) -> int:
        """Synced frames checked: on the stride grid, or drawn with their neighbours."""
        return len(self.index) + len(self.skipped)


@dataclass(frozen=True, eq=False)
class RawPlan:
    """Frames and samples of one raw store (``train`` or ``val``).

    Attributes:
        split: store split name.
        scenes: one :class:`ScenePlan` per sequence, sorted by scene name.
        sequence: int32 (N,) index into ``scenes`` per frame row; rows are grouped by scene
            and in temporal (synced index) order.
        frame: int32 (N,) synced frame index inside the scene.
        samples: int32 (M, 4) (centre, previous, next, 0) rows.
    """

    split: str
    scenes: tuple[ScenePlan, ...]
    sequence: np.ndarray
    frame: np.ndarray
    samples: np.ndarray

    @property
    def n_frames(self) -> int:
        return int(self.frame.shape[0])

    @property
    def sequences(self) -> tuple[str, ...]:
        return tuple(s.source.name for s in self.scenes)

    @property
    def skipped(self) -> tuple[SkippedItem, ...]:
        return tuple(item for s in self.scenes for item in s.skipped)

    def column(self, name: str) -> np.ndarray | tuple[str, ...]:
        """Per-row concatenation of a :class:`ScenePlan` field (``depth``, ``t_rgb``, ...)."""
        parts = [getattr(s, name) for s in self.scenes]
        if isinstance(parts[0], tuple):
            return tuple(x for p in parts for x in p)
        return np.concatenate(parts)

    def content_hash(self) -> str:
        """sha256 of everything the store's content depends on in the inputs: scene
        locations, file names per row (their sizes are fixed by the checks), accelerometer
        values, frame table and samples."""
        h = hashlib.sha256()
        for s in self.scenes:
            h.update(repr((s.source, s.n_synced, s.depth, s.rgb)).encode())
            for a in (s.index, s.t_rgb, s.accel):
                h.update(np.ascontiguousarray(a).tobytes())
        for a in (self.sequence, self.frame, self.samples):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()


class _SceneFiles:
    """Sizes, first bytes and whole small files of one scene, without decoding pixels."""

    def __init__(self, scene: nyutools.Scene) -> None:
        self.scene = scene
        self._zip: zipfile.ZipFile | None = None
        if scene.member_prefix is None:
            with os.scandir(scene.path) as it:
                self.sizes = {e.name: e.stat().st_size for e in it if e.is_file()}
        else:
            self._zip = zipfile.ZipFile(scene.path)
            prefix = scene.member_prefix
            self.sizes = {
                i.filename[len(prefix) :]: i.file_size
                for i in self._zip.infolist()
                if i.filename.startswith(prefix)
            }

    def head(self, name: str, n: int) -> bytes:
        if self._zip is None:
            with open(self.scene.path / name, "rb") as f:
                return f.read(n)
        assert self.scene.member_prefix is not None
        with self._zip.open(self.scene.member_prefix + name) as f:
            return f.read(n)

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def _image_problem(files: _SceneFiles, name: str, header: bytes, size: int) -> str | None:
    """Why a depth / RGB dump cannot be used (None when its size and header are right)."""
    found = files.sizes.get(name)
    if found is None:
        return "file missing"
    if found != size:
        state = "truncated" if found < size else "too long"
        return f"{state} ({found} bytes, expected {size})"
    try:
        head = files.head(name, len(header))
    except (OSError, zipfile.BadZipFile, KeyError) as err:
        return f"cannot read ({err})"
    if head != header:
        return f"bad header {head!r}, expected {header!r}"
    return None


def plan_scene(
    scene: nyutools.Scene,
    stride: int,
    indices: Sequence[int] | None = None,
    centres: Sequence[int] | None = None,
    synced: Sequence[nyutools.SyncedFrame] | None = None,
) -> ScenePlan:
    """Sync one scene and check the files of its stride-grid frames (see the module docstring),
    or of the synced ``indices`` (ascending) with sample ``centres`` (``--sample``). ``synced``:
    the scene's :func:`nyutools.sync_frames`, when already known."""
    synced = nyutools.sync_frames(scene) if synced is None else synced
    files = _SceneFiles(scene)
    index, depth, rgb, t_rgb, accel, skipped = [], [], [], [], [], []
    try:
        for i in range(0, len(synced), stride) if indices is None else indices:
            f = synced[i]
            problems = []
            bad = _image_problem(files, f.depth, DEPTH_HEADER, DEPTH_FILE_SIZE)
            if bad:
                problems.append((f.depth, bad))
            if f.rgb is None:
                problems.append((f.depth, "no RGB frame in the scene"))
            else:
                bad = _image_problem(files, f.rgb, RGB_HEADER, RGB_FILE_SIZE)
                if bad:
                    problems.append((f.rgb, bad))
            values = np.full(4, np.nan, dtype=np.float32)
            if f.accel is not None:
                try:
                    values[:] = read_accel_dump(scene.read_bytes(f.accel), scene.label(f.accel))
                except NyuFormatError as err:
                    problems.append((f.accel, str(err).split(": ", 1)[-1]))
            if problems:
                name, reason = problems[0]
                item = SkippedItem(scene.label(name), reason)
                log.warning("warning: skipping synced frame %d of %s: %s", i, scene.name, item)
                skipped.append(item)
                continue
            index.append(i)
            depth.append(f.depth)
            rgb.append(str(f.rgb))
            t_rgb.append(f.t_rgb)
            accel.append(values)
    finally:
        files.close()
        scene.close()
    return ScenePlan(
        source=SceneSource.of(scene),
        n_synced=len(synced),
        index=np.asarray(index, dtype=np.int64),
        depth=tuple(depth),
        rgb=tuple(rgb),
        t_rgb=np.asarray(t_rgb, dtype=np.float64),
        accel=np.asarray(accel, dtype=np.float32).reshape(-1, 4),
        skipped=tuple(skipped),
        centres=None if centres is None else np.asarray(centres, dtype=np.int64),
    )


def sample_centres(counts: Sequence[int], n: int, gap: int, seed: int) -> list[np.ndarray]:
    """``--sample``: per scene (in the order of ``counts``, its synced frame counts) the ascending
    synced indices of ``n`` frames drawn uniformly without replacement (``numpy`` generator of
    ``seed``) among the frames with both neighbours at -/+ ``gap`` inside their scene.

    Raises:
        ValueError: fewer than ``n`` such frames.
    """
    eligible = np.asarray([max(0, c - 2 * gap) for c in counts], dtype=np.int64)
    total = int(eligible.sum())
    if n > total:
        raise ValueError(
            f"--sample {n}: only {total} synced frames of the kept scenes have both neighbours "
            f"at -/+{gap}"
        )
    flat = np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False))
    edges = np.concatenate([[0], np.cumsum(eligible)])
    return [
        flat[(flat >= lo) & (flat < hi)] - lo + gap
        for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    ]


def raw_plan(split: str, scenes: Sequence[ScenePlan], stride: int, gap: int) -> RawPlan:
    """Frame table and samples of a store holding ``scenes`` (sorted by name here)."""
    ordered = tuple(sorted(scenes, key=lambda s: (s.source.name, s.source.path)))
    sequence = np.concatenate(
        [np.full(len(s.index), k, dtype=np.int32) for k, s in enumerate(ordered)] or [[]]
    ).astype(np.int32)
    frame = np.concatenate([s.index for s in ordered] or [[]]).astype(np.int32)
    samples = []
    start = 0
    step = gap * stride
    for s in ordered:
        row_of = {int(i): start + r for r, i in enumerate(s.index)}
        centres = s.index if s.centres is None else s.centres
        for i in centres.tolist():
            row, prev, nxt = row_of.get(i), row_of.get(i - step), row_of.get(i + step)
            if row is not None and prev is not None and nxt is not None:
                samples.append((row, prev, nxt, 0))
        start += len(s.index)
    return RawPlan(
        split, ordered, sequence, frame, np.asarray(samples, dtype=np.int32).reshape(-1, 4)
    )


@dataclass(frozen=True)
class SceneSplit:
    """Scene names per role: training, validation, and excluded as holding labeled test images."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    excluded: tuple[str, ...]


def split_scenes(
    names: Sequence[str], test_scenes: set[str], val_fraction: float, include_test: bool
) -> SceneSplit:
    """Choose the validation scenes and exclude the labeled test scenes.

    Validation scenes: the scenes are ordered by the sha256 of their name and the first
    ``round(val_fraction * n)`` are taken (at least one when ``val_fraction > 0`` and at least
    one scene stays for training), so the choice is deterministic and independent of listing
    order. Scenes in ``test_scenes`` are excluded first unless ``include_test``.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"--val-fraction {val_fraction} must be in [0, 1)")
    excluded = () if include_test else tuple(sorted(n for n in names if n in test_scenes))
    kept = [n for n in names if n not in excluded]
    n_val = 0
    if val_fraction > 0 and len(kept) >= 2:
        n_val = min(len(kept) - 1, max(1, round(val_fraction * len(kept))))
    by_hash = sorted(kept, key=lambda n: hashlib.sha256(n.encode()).hexdigest())
    val = set(by_hash[:n_val])
    return SceneSplit(
        train=tuple(sorted(n for n in kept if n not in val)),
        val=tuple(sorted(val)),
        excluded=excluded,
    )


def find_scenes(root: Path, glob: str | None) -> list[nyutools.Scene]:
    """The scenes under ``root`` (folders and zips), refusing an empty selection."""
    if not root.exists():
        raise ValueError(f"{root}: raw root not found")
    scenes = nyutools.list_scenes(root, glob)
    if not scenes:
        what = f" matching --glob {glob!r}" if glob else ""
        raise ValueError(
            f"{root}: no NYU scenes{what} (folders holding d-*.pgm files, or .zip archives of them)"
        )
    names = [s.name for s in scenes]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"{root}: scene(s) found more than once: {', '.join(twice[:5])}")
    return scenes
