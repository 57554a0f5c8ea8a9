"""True object masks of the synthetic KITTI world, and ``seg`` filled from them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pipelines.passes.true_masks import fill_true_masks
from pipelines.prepare.kitti.prepare import KittiPrepareOptions, prepare_kitti
from pipelines.store import open_store, pending_frames, verify
from pipelines.synth.kitti import DATES, Rig, calibration_text, write_drive
from tests.helpers import tree_bytes


@pytest.mark.slow
def test_world_masks_are_optional_and_change_nothing_else(tmp_path: Path) -> None:
    spec = DATES[0]
    files = calibration_text(spec, np.random.default_rng(0))
    rig = Rig.from_text(files)
    plain = write_drive(tmp_path / "a", spec, "0001", rig, 2, 0, True)
    masked = write_drive(tmp_path / "b", spec, "0001", rig, 2, 0, True, masks=True)
    assert plain.masks is None and tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")
    assert masked.masks is not None and sorted(masked.masks) == [2, 3]
    seg = masked.masks[2]
    assert seg.shape == plain.depth.shape and seg.dtype == np.uint8
    assert set(np.unique(seg)) <= {0, 7} and (seg == 7).any()  # cars, nothing else
    # a car pixel is nearer than the facade behind it: masks follow the rendered geometry
    assert np.median(plain.depth[seg == 7]) < np.median(plain.depth[(seg == 0) & (plain.depth > 0)])


def test_seg_filled_from_true_masks(kitti_world: Path, tmp_path: Path) -> None:
    options = KittiPrepareOptions(size=(64, 224), chunk=4, progress=False, workers=1)
    prepare_kitti(kitti_world, kitti_world / "splits" / "eigen_zhou", tmp_path, options)
    path = tmp_path / "train.zarr"
    with pytest.raises(ValueError, match="no true masks"):
        fill_true_masks(path, tmp_path)
    store = open_store(path)
    assert pending_frames(store, "seg") == store.n_frames  # prepared without masks: all 255
    world = tmp_path / "world"
    world.mkdir()
    masks = {}
    for folder in store.sequences:  # a hand-made masks.npz: class 7 on a band of columns
        for cam in (2, 3):
            m = np.zeros((5, 375, 1242), np.uint8)
            m[:, :, 300 + 100 * cam : 500 + 100 * cam] = 7
            masks[f"{folder}/image_0{cam}"] = m
    np.savez(world / "masks.npz", **masks)
    report = fill_true_masks(path, world)
    assert report.computed == report.chunks
    store = open_store(path)
    expected = cv2.resize(masks[f"{store.sequences[0]}/image_03"][0], (224, 64),
                          interpolation=cv2.INTER_NEAREST_EXACT)  # fmt: skip
    np.testing.assert_array_equal(store["seg"][0, 1], expected)
    assert pending_frames(store, "seg") == 0 and verify(store) == []
    assert store.attrs["masks"]["arch"] == "synthetic-truth"
