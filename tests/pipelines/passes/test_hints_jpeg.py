"""The hints pass on a JPEG-only KITTI tree (monodepth2's README conversion, PNGs deleted).

Issue 21 item 2: ``prepare-kitti`` then ``hints`` must read the JPEGs the store was made from,
decoded by PIL as depth-hints' ``precompute_depth_hints.py`` does, and store what depth-hints'
loader makes of each 320 x 1024 hint: ``cv2.resize(hint, (W, H), cv2.INTER_NEAREST)``, and for a
flipped sample the resize of the flipped full-size map.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import kitti
from pipelines.passes.hints import fused_sgm_hints
from pipelines.passes.raw_kitti import raw_image_path
from pipelines.prepare.kitti.prepare import KittiPrepareOptions, prepare_kitti
from pipelines.store import open_store, verify
from tests.helpers import run_cli, tree_bytes
from tests.pipelines.prepare.test_prepare_kitti_jpeg import jpeg_tree, split_dir

SIZE = (48, 160)  # the store
HINT_SIZE = (64, 320)  # where the pairs are matched (the reference's 320 x 1024, smaller)
TRAIN_DRIVE = "2011_09_26/2011_09_26_drive_0001_sync"
OTHER_DRIVE = "2011_09_28/2011_09_28_drive_0001_sync"


@pytest.fixture(scope="module")
def jpeg_store(kitti_world: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(JPEG-only tree, train.zarr prepared from it): 6 frames of two drives."""
    tmp = tmp_path_factory.mktemp("hints_jpeg")
    root = jpeg_tree(kitti_world, tmp / "kitti")
    lines = [f"{TRAIN_DRIVE} 2 l", f"{OTHER_DRIVE} 3 r"]
    options = KittiPrepareOptions(size=SIZE, chunk=4, workers=1, progress=False)
    prepare_kitti(root, split_dir(tmp, lines), tmp / "out", options)
    return root, tmp / "out" / "train.zarr"


def reference_hints(path_left: Path, path_right: Path) -> tuple[np.ndarray, ...]:
    """depth-hints, written out: ``pil_loader``, LANCZOS to the hint size, fused SGM."""
    pair = []
    for path in (path_left, path_right):
        with open(path, "rb") as f, Image.open(f) as image:
            rgb = image.convert("RGB").resize(HINT_SIZE[::-1], Image.LANCZOS)
        pair.append(np.array(rgb))
    return fused_sgm_hints(*pair)


def loader_resize(hint: np.ndarray, flip: bool) -> np.ndarray:
    """depth-hints' ``mono_dataset.py``: ``np.fliplr`` when flipped, then cv2 nearest."""
    if flip:
        hint = np.ascontiguousarray(np.fliplr(hint))
    return cv2.resize(hint, SIZE[::-1], interpolation=cv2.INTER_NEAREST)


def test_hints_of_a_jpeg_tree_equal_depth_hints(
    jpeg_store: tuple[Path, Path], tmp_path: Path
) -> None:
    root, made = jpeg_store
    path = tmp_path / "train.zarr"
    shutil.copytree(made, path)
    store = open_store(path)
    assert store.source["images"]["ext"] == "jpg"
    assert not any(root.rglob("*.png"))  # nothing to fall back on
    args = ["hints", str(path), "--kitti-root", str(root), "--hint-size", "64x320"]
    assert run_cli(args) == 0
    store = open_store(path)
    assert verify(store) == [] and store.attrs["hints"]["images"] == "jpg"
    hint, flipped = store["hint_depth"][...], store["hint_depth_flipped"][...]
    seq, frame = store["sequence"][...], store["frame"][...]
    for row in range(store.n_frames):
        folder = store.sequences[seq[row]]
        left, right = (kitti.image_path(root, folder, int(frame[row]), s, ".jpg") for s in "lr")
        for view, expected in enumerate(reference_hints(left, right)):
            plain = loader_resize(expected, flip=False).astype(np.float16)
            mirrored = loader_resize(expected, flip=True).astype(np.float16)
            np.testing.assert_array_equal(hint[row, view], plain)
            # stored in the image's orientation: the loader flips it with the image
            np.testing.assert_array_equal(flipped[row, view, :, ::-1], mirrored)
    assert (hint != flipped).any()
    before = tree_bytes(path)
    assert run_cli(args) == 0  # every chunk recorded as done with these settings
    assert tree_bytes(path) == before


def test_forced_png_on_a_jpeg_tree_is_refused(
    jpeg_store: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root, path = jpeg_store
    before = tree_bytes(path)
    args = ["hints", str(path), "--kitti-root", str(root), "--image-ext", "png"]
    assert run_cli(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "raw image(s) of the store's frames are missing" in err and ".png" in err
    assert "(the store was made from jpg files)" in err
    assert tree_bytes(path) == before


def test_auto_reads_each_frame_as_it_is(kitti_world: Path, tmp_path: Path) -> None:
    root = jpeg_tree(kitti_world, tmp_path / "mixed", keep_png={TRAIN_DRIVE: {2}})
    png = raw_image_path(root, TRAIN_DRIVE, 2, "l", "auto")
    jpg = raw_image_path(root, TRAIN_DRIVE, 3, "l", "auto")
    assert (png.suffix, jpg.suffix) == (".png", ".jpg") and png.is_file() and jpg.is_file()
    assert raw_image_path(root, TRAIN_DRIVE, 2, "l", "jpg").suffix == ".jpg"
