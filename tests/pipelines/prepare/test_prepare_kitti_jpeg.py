"""``prepare-kitti`` on JPEG trees (monodepth2's README conversion) and with ``--resize lanczos``.

The JPEG tree is the synthetic world with every colour PNG converted by PIL at quality 92 with
4:2:0 chroma subsampling (what the README's ImageMagick command writes) and the PNGs removed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import kitti
from pipelines import open_store
from pipelines.prepare.kitti.plan import MissingFilesError
from pipelines.prepare.kitti.prepare import KittiPrepareOptions, prepare_kitti
from pipelines.store.inspect import verify
from tests.helpers import run_cli

SIZE = (64, 192)
OPTS = KittiPrepareOptions(size=SIZE, chunk=4, workers=1, progress=False)
TEST_DRIVE = "2011_09_26/2011_09_26_drive_0002_sync"
TRAIN_DRIVE = "2011_09_26/2011_09_26_drive_0001_sync"
OTHER_DRIVE = "2011_09_28/2011_09_28_drive_0001_sync"


def to_jpeg(png: Path, jpg: Path) -> None:
    """monodepth2's conversion: quality 92, 2x2 chroma subsampling (4:2:0)."""
    with Image.open(png) as image:
        image.convert("RGB").save(jpg, quality=92, subsampling=2)


def jpeg_tree(world: Path, root: Path, keep_png: dict[str, set[int]] | None = None) -> Path:
    """``world`` linked under ``root`` with its colour images as JPEGs (PNGs of the frames in
    ``keep_png[drive]`` stay PNG: a half-converted drive)."""
    keep_png = keep_png or {}
    for date in sorted(p for p in world.iterdir() if p.name.startswith("20")):
        (root / date.name).mkdir(parents=True)
        for item in date.iterdir():
            if not item.is_dir():
                os.symlink(item, root / date.name / item.name)
                continue
            drive = root / date.name / item.name
            drive.mkdir()
            for stream in item.iterdir():
                if stream.name not in ("image_02", "image_03"):
                    os.symlink(stream, drive / stream.name, target_is_directory=True)
                    continue
                (drive / stream.name / "data").mkdir(parents=True)
                os.symlink(stream / "timestamps.txt", drive / stream.name / "timestamps.txt")
                for png in sorted((stream / "data").glob("*.png")):
                    if int(png.stem) in keep_png.get(f"{date.name}/{item.name}", set()):
                        os.symlink(png, drive / stream.name / "data" / png.name)
                    else:
                        to_jpeg(png, drive / stream.name / "data" / f"{png.stem}.jpg")
    os.symlink(world / "splits", root / "splits", target_is_directory=True)
    return root


@pytest.fixture(scope="module")
def jpeg_world(kitti_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return jpeg_tree(kitti_world, tmp_path_factory.mktemp("kitti_jpeg"))


def split_dir(tmp_path: Path, lines: list[str], name: str = "train_files.txt") -> Path:
    d = tmp_path / "split"
    d.mkdir(exist_ok=True)
    (d / name).write_text("".join(f"{ln}\n" for ln in lines))
    return d


def pil_lanczos(path: Path, size: tuple[int, int]) -> np.ndarray:
    """monodepth2's loader: ``pil.open(path).convert('RGB')`` resized with LANCZOS."""
    with open(path, "rb") as f, Image.open(f) as image:
        return np.asarray(image.convert("RGB").resize((size[1], size[0]), Image.LANCZOS))


def test_jpeg_tree_converts_and_records_its_images(jpeg_world: Path, tmp_path: Path) -> None:
    lines = [f"{TRAIN_DRIVE} 2 l", f"{TRAIN_DRIVE} 2 r", f"{OTHER_DRIVE} 3 l"]
    report = prepare_kitti(jpeg_world, split_dir(tmp_path, lines), tmp_path / "out", OPTS)
    assert "images: 12 .jpg" in str(report)  # 2 drives x 3 frames x 2 views
    store = open_store(tmp_path / "out" / "train.zarr")
    assert store.complete and verify(store) == []
    assert store.source["images"] == {"ext": "jpg", "files": {".jpg": 12}, "mixed_drives": []}
    assert store.camera["resize_method"] == "area"
    seq, frame = store["sequence"][...], store["frame"][...]
    for row in (0, 4):
        for view, side in enumerate("lr"):
            path = kitti.image_path(jpeg_world, store.sequences[seq[row]], int(frame[row]), side,
                                    ".jpg")  # fmt: skip
            decoded = np.asarray(Image.open(path).convert("RGB"))  # PIL's decode: the same pixels
            ref = cv2.resize(decoded, SIZE[::-1], interpolation=cv2.INTER_AREA)
            np.testing.assert_array_equal(store["image"][row, view], ref)


def test_jpeg_test_store_and_forced_extensions(
    jpeg_world: Path, kitti_world: Path, tmp_path: Path
) -> None:
    test = split_dir(tmp_path, [f"{TEST_DRIVE} 1 l", f"{TEST_DRIVE} 3 l"], "test_files.txt")
    opts = KittiPrepareOptions(size=SIZE, chunk=4, workers=1, progress=False, gt="velodyne",
                               image_ext="jpg")  # fmt: skip
    report = prepare_kitti(jpeg_world, test, tmp_path / "a", opts)
    assert "images: 2 .jpg" in str(report)
    store = open_store(tmp_path / "a" / "test.zarr")
    assert store.complete and store.source["images"]["ext"] == "jpg"
    assert "--image-ext jpg" in store.source["command"]

    # forced to the other extension: the frames count as missing, named with it
    with pytest.raises(MissingFilesError, match=r"--image-ext png counts only .*0000000001\.png"):
        prepare_kitti(jpeg_world, test, tmp_path / "b", KittiPrepareOptions(image_ext="png"))
    with pytest.raises(MissingFilesError, match=r"0000000001\.jpg"):
        prepare_kitti(kitti_world, test, tmp_path / "c", KittiPrepareOptions(image_ext="jpg"))
    # auto in a JPEG tree: a missing frame is reported as the JPEG it should be
    gone = split_dir(tmp_path, [f"{TEST_DRIVE} 40 l"], "test_files.txt")
    with pytest.raises(MissingFilesError, match=r"0000000040\.jpg"):
        prepare_kitti(jpeg_world, gone, tmp_path / "d", KittiPrepareOptions(gt="velodyne"))
    with pytest.raises(ValueError, match="--image-ext 'gif' must be one of auto, png, jpg"):
        prepare_kitti(jpeg_world, test, tmp_path / "e", KittiPrepareOptions(image_ext="gif"))


def test_mixed_drive_is_read_as_it_is_and_reported(
    kitti_world: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = jpeg_tree(kitti_world, tmp_path / "mixed", keep_png={TRAIN_DRIVE: {1, 2}})
    lines = [f"{TRAIN_DRIVE} 2 l", f"{TRAIN_DRIVE} 3 r"]
    with caplog.at_level(logging.WARNING):
        report = prepare_kitti(root, split_dir(tmp_path, lines), tmp_path / "out", OPTS)
    text = str(report)
    assert "images: 4 .png, 4 .jpg" in text and f"both kinds in 1 drive(s): {TRAIN_DRIVE}" in text
    assert "both kinds" in caplog.text
    store = open_store(tmp_path / "out" / "train.zarr")
    assert store.source["images"]["ext"] == "mixed"
    assert store.source["images"]["mixed_drives"] == [TRAIN_DRIVE]
    frames = store["frame"][...].tolist()  # frames 1..4 of the drive
    for row, f in enumerate(frames):
        ext = ".png" if f in (1, 2) else ".jpg"
        path = kitti.image_path(root, TRAIN_DRIVE, f, "l", ext)
        decoded = np.asarray(Image.open(path).convert("RGB"))
        ref = cv2.resize(decoded, SIZE[::-1], interpolation=cv2.INTER_AREA)
        np.testing.assert_array_equal(store["image"][row, 0], ref, err_msg=path.name)


def test_unreadable_jpeg_is_named(kitti_world: Path, tmp_path: Path) -> None:
    root = jpeg_tree(kitti_world, tmp_path / "raw")
    jpg = kitti.image_path(root, TEST_DRIVE, 1, "l", ".jpg")
    data = jpg.read_bytes()
    jpg.write_bytes(data[: len(data) // 2])  # decoders fill the cut part with grey
    test = split_dir(tmp_path, [f"{TEST_DRIVE} 1 l"], "test_files.txt")
    for resize in ("area", "lanczos"):
        opts = KittiPrepareOptions(size=SIZE, gt="velodyne", workers=1, progress=False,
                                   resize=resize)  # fmt: skip
        with pytest.raises(ValueError, match=r"0000000001\.jpg: cannot read image .*not a JPEG"):
            prepare_kitti(root, test, tmp_path / resize, opts)


@pytest.mark.parametrize("tree", ["png", "jpg"])
def test_lanczos_stores_equal_pil(
    tree: str, kitti_world: Path, jpeg_world: Path, tmp_path: Path
) -> None:
    root, ext = (kitti_world, ".png") if tree == "png" else (jpeg_world, ".jpg")
    size = (96, 320)
    opts = KittiPrepareOptions(size=size, chunk=4, workers=1, progress=False, resize="lanczos")
    lines = [f"{TRAIN_DRIVE} 2 l", f"{OTHER_DRIVE} 3 r"]
    prepare_kitti(root, split_dir(tmp_path, lines), tmp_path / "out", opts)
    store = open_store(tmp_path / "out" / "train.zarr")
    assert store.camera["resize_method"] == "lanczos" and "LANCZOS" in store.camera["resize"]
    assert "--resize lanczos" in store.source["command"]
    seq, frame = store["sequence"][...], store["frame"][...]
    for row in range(store.n_frames):
        for view, side in enumerate("lr"):
            path = kitti.image_path(root, store.sequences[seq[row]], int(frame[row]), side, ext)
            np.testing.assert_array_equal(store["image"][row, view], pil_lanczos(path, size))


def test_cli_options(jpeg_world: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    test = split_dir(tmp_path, [f"{TEST_DRIVE} 1 l"], "test_files.txt")
    args = ["prepare-kitti", str(jpeg_world), str(test), str(tmp_path / "out"), "--size", "32x96",
            "--gt", "velodyne", "--workers", "1"]  # fmt: skip
    assert run_cli([*args, "--image-ext", "jpg", "--resize", "lanczos"]) == 0
    assert "images: 1 .jpg" in capsys.readouterr().out
    assert run_cli([*args, "--image-ext", "png"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "0000000001.png" in err and err.count("\n") == 1
