"""Plan the labeled NYU stores of ``prepare-nyu``: ``splits.mat`` indices -> frame tables.

``labeled_train`` / ``labeled_test`` hold the labeled frames of ``trainNdxs`` / ``testNdxs`` in
the order of ``splits.mat``. Per frame, ``sequence`` indexes the frame's scene name, ``frame``
is its 0-based row in ``nyu_depth_v2_labeled.mat``, ``timestamp`` the host time of its raw RGB
file name (NaN when that name carries none) and ``accel`` the labeled ``accelData``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import nyutools
from nyutools.readers import NyuFormatError


@dataclass(frozen=True, eq=False)
class LabeledPlan:
    """Frames of one labeled store.

    Attributes:
        split: ``train`` or ``test``.
        indices: int64 (N,) 0-based rows of the ``.mat`` in store order.
        sequences: sorted scene names; ``sequence`` int32 (N,) indexes them.
        timestamp: float64 (N,) seconds; ``accel`` float32 (N, 4).
    """

    split: str
    indices: np.ndarray
    sequences: tuple[str, ...]
    sequence: np.ndarray
    timestamp: np.ndarray
    accel: np.ndarray

    @property
    def n_frames(self) -> int:
        return int(self.indices.shape[0])

    @property
    def samples(self) -> np.ndarray:
        """int32 (N, 4): one (row, -1, -1, 0) test/training sample per frame."""
        rows = np.arange(self.n_frames, dtype=np.int32)
        return np.stack([rows, -np.ones_like(rows), -np.ones_like(rows), 0 * rows], axis=1)

    def content_hash(self) -> str:
        h = hashlib.sha256("\n".join(self.sequences).encode())
        for a in (self.indices, self.sequence, self.timestamp, self.accel):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()


@dataclass(frozen=True, eq=False)
class LabeledInputs:
    """The opened labeled set, its plans, and the scenes of its test frames."""

    labeled: nyutools.LabeledSet
    mat_path: Path
    splits_path: Path
    splits_sha256: str
    plans: tuple[LabeledPlan, ...]
    test_scenes: frozenset[str]


def _time(name: str) -> float:
    try:
        return nyutools.frame_time(name)
    except NyuFormatError:
        return float("nan")


def plan_labeled(mat: Path, splits: Path) -> LabeledInputs:
    """Open the labeled ``.mat`` and ``splits.mat`` and plan both labeled stores.

    Raises:
        ValueError (NyuFormatError): a missing or unreadable file (named), indices outside the
            labeled set, or frames of another size than 480x640.
    """
    for path, what in ((mat, "labeled .mat"), (splits, "splits .mat")):
        if not path.is_file():
            raise ValueError(f"{path}: {what} not found")
    try:
        train, test = nyutools.read_splits(splits)
    except NyuFormatError:
        raise
    except Exception as err:  # noqa: BLE001 - scipy raises IndexError etc. on garbage files
        raise NyuFormatError(f"{splits}: not a readable MATLAB v5 splits file ({err})") from err
    labeled = nyutools.LabeledSet(mat)
    n = len(labeled)
    for name, idx in (("trainNdxs", train), ("testNdxs", test)):
        bad = idx[(idx < 0) | (idx >= n)]
        if bad.size:
            raise NyuFormatError(
                f"{splits}: {name} holds index {int(bad[0]) + 1} outside 1..{n} "
                f"(the labeled set {mat.name} has {n} frames)"
            )
    if n and labeled.image(0).shape != (nyutools.camera.HEIGHT, nyutools.camera.WIDTH, 3):
        raise NyuFormatError(f"{mat}: images are {labeled.image(0).shape}, expected 480x640x3")
    accels = labeled.accels()
    if accels.shape != (n, 4):
        raise NyuFormatError(f"{mat}: accelData is {accels.shape[::-1]}, expected (4, {n})")
    scenes = {int(i): labeled.scene(int(i)) for i in np.concatenate([train, test])}
    plans = []
    for split, idx in (("train", train), ("test", test)):
        names = [scenes[int(i)] for i in idx]
        sequences = tuple(sorted(set(names)))
        where = {s: k for k, s in enumerate(sequences)}
        plans.append(
            LabeledPlan(
                split=split,
                indices=idx.astype(np.int64),
                sequences=sequences,
                sequence=np.array([where[s] for s in names], dtype=np.int32),
                timestamp=np.array(
                    [_time(labeled.raw_rgb_filename(int(i))) for i in idx], dtype=np.float64
                ),
                accel=accels[idx].astype(np.float32).reshape(-1, 4),
            )
        )
    return LabeledInputs(
        labeled=labeled,
        mat_path=mat,
        splits_path=splits,
        splits_sha256=hashlib.sha256(splits.read_bytes()).hexdigest(),
        plans=tuple(plans),
        test_scenes=frozenset(scenes[int(i)] for i in test),
    )
