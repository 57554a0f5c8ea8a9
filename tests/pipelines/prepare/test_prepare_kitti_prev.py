"""``prepare-kitti --prev-frames``: test stores that also hold each test frame's previous frame
(for multi-frame methods such as ManyDepth)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import kitti
from pipelines import open_store
from pipelines.prepare.kitti.prepare import KittiPrepareOptions, prepare_kitti
from pipelines.store.inspect import verify

SIZE = (64, 192)
OPTS = KittiPrepareOptions(size=SIZE, chunk=4, workers=2, progress=False, gt="velodyne")


def test_previous_frames_of_the_test_store(kitti_world: Path, tmp_path: Path) -> None:
    """A split with gaps: frames 2 and 4 need frames 1 and 3 (stored without ground truth),
    frame 0 has no previous frame (-1: the loader gives a black image, counted)."""
    folder = kitti.read_split(kitti_world / "splits" / "eigen" / "test_files.txt")[0].folder
    split = tmp_path / "split"
    split.mkdir()
    (split / "test_files.txt").write_text("".join(f"{folder} {i:010d} l\n" for i in (4, 0, 2)))
    prepare_kitti(kitti_world, split, tmp_path / "plain", OPTS)
    opts = KittiPrepareOptions(**{**OPTS.__dict__, "prev_frames": True})
    prepare_kitti(kitti_world, split, tmp_path / "prev", opts)
    plain = open_store(tmp_path / "plain" / "test.zarr")
    store = open_store(tmp_path / "prev" / "test.zarr")
    assert verify(store) == []
    assert "--prev-frames" in store.source["command"]
    assert store.attrs["previous_frames"] == {"stored": True, "samples_without": 1}
    frames = store["frame"][...]
    assert sorted(frames.tolist()) == [0, 1, 2, 3, 4] and plain.n_frames == 3
    s = store.samples
    assert [frames[r] for r in s[:, 0]] == [4, 0, 2]
    assert [frames[r] if r >= 0 else None for r in s[:, 1]] == [3, None, 1]
    assert (s[:, 2:] == [-1, 0]).all()
    sizes, gt = store["gt_size"][...], store["gt_depth"][...]
    for row, frame in enumerate(frames):
        if frame in (1, 3):
            assert tuple(sizes[row]) == (0, 0) and not gt[row].any()
        else:
            p_row = int(np.flatnonzero(plain["frame"][...] == frame)[0])
            np.testing.assert_array_equal(gt[row], plain["gt_depth"][p_row])
            np.testing.assert_array_equal(store["image"][row], plain["image"][p_row])


def test_missing_previous_image_is_listed(kitti_world: Path, tmp_path: Path) -> None:
    root = tmp_path / "raw"
    shutil.copytree(kitti_world, root)
    folder = kitti.read_split(root / "splits" / "eigen" / "test_files.txt")[0].folder
    (root / "split").mkdir()
    (root / "split" / "test_files.txt").write_text(f"{folder} {3:010d} l\n")
    previous = kitti.image_path(root, folder, 2, "l")
    previous.unlink()
    opts = KittiPrepareOptions(**{**OPTS.__dict__, "prev_frames": True})
    with pytest.raises(ValueError, match=previous.name):
        prepare_kitti(root, root / "split", tmp_path / "out", opts)
    # without --prev-frames the test store does not need it
    prepare_kitti(root, root / "split", tmp_path / "out", OPTS)
