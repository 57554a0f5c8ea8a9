"""Labeled set (.mat v7.3 via h5py) and splits.mat readers (spec nyuv2.md 6 and 9.13)."""

from __future__ import annotations

import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from nyutools import LabeledSet, NyuFormatError, read_splits

N = 2


def _matlab_user_block() -> bytes:
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: test HDF5 schema 1.00 ."
    return text.ljust(116, b" ") + bytes(8) + b"\x00\x02" + b"IM"


def _cell(f: h5py.File, name: str, strings: list[str]) -> None:
    refs = []
    for k, s in enumerate(strings):
        if s:
            ds = f["#refs#"].create_dataset(
                f"{name}{k}", data=np.array([[ord(c)] for c in s], np.uint16)
            )
            ds.attrs["MATLAB_class"] = np.bytes_("char")
        else:
            ds = f["#refs#"].create_dataset(f"{name}{k}", data=np.zeros(2, np.uint64))
            ds.attrs["MATLAB_class"] = np.bytes_("char")
            ds.attrs["MATLAB_empty"] = np.uint8(1)
        refs.append(ds.ref)
    f.create_dataset(name, data=np.array([refs], dtype=h5py.ref_dtype))


@pytest.fixture(scope="module")
def labeled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    """A small v7.3-like file (2 frames) and the arrays it encodes in (row, column) order."""
    rng = np.random.default_rng(0)
    truth = {
        "images": rng.integers(0, 256, (N, 480, 640, 3)).astype(np.uint8),
        "depths": rng.uniform(0.7, 10, (N, 480, 640)).astype(np.float32),
        "rawDepths": rng.uniform(0, 10, (N, 480, 640)).astype(np.float32),
        "labels": rng.integers(0, 895, (N, 480, 640)).astype(np.uint16),
        "instances": rng.integers(0, 30, (N, 480, 640)).astype(np.uint8),
        "accelData": rng.normal(size=(N, 4)).astype(np.float32),
    }
    path = tmp_path_factory.mktemp("labeled") / "nyu_depth_v2_labeled.mat"
    with h5py.File(path, "w", userblock_size=512) as f:
        f.create_group("#refs#")
        f.create_dataset("images", data=truth["images"].transpose(0, 3, 2, 1))
        for name in ("depths", "rawDepths", "labels", "instances"):
            f.create_dataset(name, data=truth[name].transpose(0, 2, 1))
        f.create_dataset("accelData", data=truth["accelData"].T)
        _cell(f, "names", ["book", "", "chair"])
        _cell(f, "scenes", ["bedroom_0001", "living_room_0012"])
        _cell(f, "sceneTypes", ["bedroom", "living_room"])
        _cell(
            f, "rawRgbFilenames", ["bedroom_0001/r-1.000000-1.ppm", "living_room_0012/r-2.5-2.ppm"]
        )
        _cell(f, "rawDepthFilenames", ["bedroom_0001/d-1.0-1.pgm", "living_room_0012/d-2.5-2.pgm"])
    with open(path, "r+b") as fh:
        fh.write(_matlab_user_block())
    return path, truth


def test_orientation_is_a_plain_transpose(labeled: tuple[Path, dict]) -> None:
    path, truth = labeled
    assert path.read_bytes()[:10] == b"MATLAB 7.3"
    with LabeledSet(path) as ds:
        assert len(ds) == N
        img = ds.image(1)
        assert img.dtype == np.uint8 and img.shape == (480, 640, 3)
        assert np.array_equal(img, truth["images"][1])
        assert np.array_equal(ds.images(slice(0, 2)), truth["images"])
        # The rotate(-90) recipe of some ports mirrors the image (spec 6.3 / 9.13).
        with h5py.File(path, "r") as f:
            rotated = np.rot90(np.moveaxis(f["images"][1], 0, -1), -1)
        assert np.array_equal(rotated, truth["images"][1][:, ::-1])


def test_maps_and_accel(labeled: tuple[Path, dict]) -> None:
    path, truth = labeled
    with LabeledSet(path) as ds:
        for i in range(N):
            assert np.array_equal(ds.depth(i), truth["depths"][i])
            assert np.array_equal(ds.raw_depth(i), truth["rawDepths"][i])
            assert np.array_equal(ds.label(i), truth["labels"][i])
            assert np.array_equal(ds.instance(i), truth["instances"][i])
            assert np.array_equal(ds.accel(i), truth["accelData"][i])
        assert ds.depth(0).dtype == np.float32 and ds.label(0).dtype == np.uint16
        assert ds.instance(0).dtype == np.uint8 and ds.accel(0).shape == (4,)
        assert np.array_equal(ds.depths(slice(0, 2)), truth["depths"])
        assert np.array_equal(ds.labels(slice(1, 2)), truth["labels"][1:])
        assert np.array_equal(ds.accels(), truth["accelData"])


def test_strings(labeled: tuple[Path, dict]) -> None:
    path, _ = labeled
    ds = LabeledSet(path)
    assert ds.names == ["book", "", "chair"]
    assert ds.names_to_ids() == {"book": 1, "": 2, "chair": 3}
    assert ds.scene(1) == "living_room_0012"
    assert ds.scene_type(1) == "living_room"
    assert ds.raw_rgb_filename(0) == "bedroom_0001/r-1.000000-1.ppm"
    assert ds.raw_depth_filename(1) == "living_room_0012/d-2.5-2.pgm"
    clone = pickle.loads(pickle.dumps(ds))  # reopens lazily in another process
    ds.close()
    assert clone.scene(0) == "bedroom_0001"
    clone.close()


def test_bad_labeled_files(tmp_path: Path) -> None:
    bad = tmp_path / "broken.mat"
    bad.write_bytes(b"MATLAB 5.0 MAT-file" + bytes(200))
    with pytest.raises(NyuFormatError, match="broken.mat"):
        LabeledSet(bad)
    with pytest.raises(NyuFormatError, match="missing.mat"):
        LabeledSet(tmp_path / "missing.mat")
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("x", data=[1])
    with pytest.raises(NyuFormatError, match="other.h5.*images"):
        LabeledSet(other)


def test_read_splits(tmp_path: Path) -> None:
    path = tmp_path / "splits.mat"
    train = np.array([[1], [2], [4]], dtype=np.float64)
    scipy.io.savemat(path, {"trainNdxs": train, "testNdxs": np.array([[3], [5]], np.uint16)})
    tr, te = read_splits(path)
    assert tr.dtype == np.int64 and tr.tolist() == [0, 1, 3]
    assert te.tolist() == [2, 4]
    scipy.io.savemat(tmp_path / "nokeys.mat", {"trainNdxs": train})
    with pytest.raises(NyuFormatError, match="nokeys.mat.*testNdxs"):
        read_splits(tmp_path / "nokeys.mat")
    (tmp_path / "junk.mat").write_bytes(b"junk" * 50)
    with pytest.raises(NyuFormatError, match="junk.mat"):
        read_splits(tmp_path / "junk.mat")
    with pytest.raises(NyuFormatError, match="absent.mat"):
        read_splits(tmp_path / "absent.mat")


def test_read_splits_refuses_v73(labeled: tuple[Path, dict]) -> None:
    with pytest.raises(NyuFormatError, match="nyu_depth_v2_labeled.mat"):
        read_splits(labeled[0])


def test_read_splits_rejects_a_text_file(tmp_path) -> None:
    from nyutools import NyuFormatError, read_splits

    bad = tmp_path / "splits.mat"
    bad.write_text("this is not a MATLAB file\n" * 20)
    with pytest.raises(NyuFormatError, match="splits.mat"):
        read_splits(bad)
