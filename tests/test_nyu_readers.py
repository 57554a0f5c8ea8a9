"""Raw NYU dump readers and scene containers (spec nyuv2.md 1, test vectors 9.1 and 9.3)."""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nyutools import (
    NyuFormatError,
    frame_time,
    list_scenes,
    open_scene,
    parse_frame_name,
    read_accel_dump,
    read_depth_pgm,
    read_rgb_ppm,
    scene_type,
    zip_scene_names,
)

DEPTH_HEADER = b"P5 640 480 65535\n"
RGB_HEADER = b"P6 640 480 255\n"


def depth_bytes(raw: np.ndarray) -> bytes:
    return DEPTH_HEADER + raw.astype("<u2").tobytes()


def rgb_bytes(rgb: np.ndarray) -> bytes:
    return RGB_HEADER + rgb.astype(np.uint8).tobytes()


def test_depth_byte_order_is_little_endian(tmp_path: Path) -> None:
    data = DEPTH_HEADER + b"\xff\x07" * (640 * 480)
    path = tmp_path / "d-1.000000-1.pgm"
    path.write_bytes(data)
    depth = read_depth_pgm(path)
    assert depth.dtype == np.uint16 and depth.shape == (480, 640)
    assert np.all(depth == 2047)
    # A standard (big-endian) PGM decoder reads 65287 until byte-swapped (spec 9.1).
    pil = np.asarray(Image.open(io.BytesIO(data)))
    assert int(pil[0, 0]) == 65287
    assert np.all(pil.astype(np.uint16).byteswap() == depth)


def test_depth_and_rgb_roundtrip() -> None:
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 2048, (480, 640)).astype(np.uint16)
    rgb = rng.integers(0, 256, (480, 640, 3)).astype(np.uint8)
    assert np.array_equal(read_depth_pgm(depth_bytes(raw)), raw)
    out = read_rgb_ppm(rgb_bytes(rgb))
    assert out.dtype == np.uint8 and np.array_equal(out, rgb)


@pytest.mark.parametrize(
    ("reader", "good"),
    [(read_depth_pgm, DEPTH_HEADER + bytes(614400)), (read_rgb_ppm, RGB_HEADER + bytes(921600))],
)
def test_truncated_or_malformed_files_name_the_file(tmp_path: Path, reader, good: bytes) -> None:
    short = tmp_path / "short.bin"
    short.write_bytes(good[:-1])
    with pytest.raises(NyuFormatError, match="short.bin.*truncated"):
        reader(short)
    with pytest.raises(NyuFormatError, match="too long"):
        reader(good + b"\0", name="long.bin")
    bad_header = b"P5 640 480 255\n" + good[15:]
    with pytest.raises(NyuFormatError, match="member.pgm"):
        reader(bad_header, name="member.pgm")
    with pytest.raises(ValueError, match="missing.pgm"):
        reader(tmp_path / "missing.pgm")


def test_accel_dump_spec_example_and_rejects_other_sizes(testvectors: Path) -> None:
    data = struct.pack("<hhhbxi", -12, 805, 40, -6, 0)
    assert len(data) == 12
    out = read_accel_dump(data)
    assert out.dtype == np.float64 and out.tolist() == [-12, 805, 40, -6]
    for n in (11, 13, 0):
        with pytest.raises(NyuFormatError, match="a-x.dump"):
            read_accel_dump(bytes(n), name="a-x.dump")
    example = read_accel_dump(testvectors / "nyu" / "accel_example.dump")
    assert example.tolist() == [-29, 812, 94, 3]


def test_frame_names() -> None:
    name = "d-1294886362.665769-3143255701.pgm"
    assert parse_frame_name(name) == ("d", 1294886362.665769, 3143255701)
    assert parse_frame_name("cafe_0001a/" + name)[0] == "d"
    assert frame_time("a-1294886363.011060-3164794231.dump") == 1294886363.011060
    with pytest.raises(NyuFormatError, match="INDEX.txt"):
        parse_frame_name("INDEX.txt")
    assert scene_type("living_room_0012") == "living_room"
    assert scene_type("cafe_0001a") == "cafe"


def _write_scene_files(files: dict[str, bytes], folder: Path) -> None:
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)


@pytest.fixture
def scene_files() -> dict[str, bytes]:
    raw = np.full((480, 640), 900, np.uint16)
    rgb = np.zeros((480, 640, 3), np.uint8)
    return {
        "d-1.000000-10.pgm": depth_bytes(raw),
        "r-1.010000-11.ppm": rgb_bytes(rgb),
        "a-0.990000-10.dump": struct.pack("<hhhbxi", 1, 2, 3, 4, 0),
        "INDEX.txt": b"d-1.000000-10.pgm\n",
    }


def test_folder_and_zip_scenes(tmp_path: Path, scene_files: dict[str, bytes]) -> None:
    root = tmp_path / "raw"
    _write_scene_files(scene_files, root / "bedroom_0001")
    with zipfile.ZipFile(root / "cafes.zip", "w") as zf:
        for scene in ("cafe_0001a", "cafe_0001b"):
            zf.writestr(scene + "/", b"")
            for name, data in scene_files.items():
                zf.writestr(f"{scene}/{name}", data)
    assert zip_scene_names(root / "cafes.zip") == ["cafe_0001a", "cafe_0001b"]

    scenes = list_scenes(root)
    assert [s.name for s in scenes] == ["bedroom_0001", "cafe_0001a", "cafe_0001b"]
    assert [s.name for s in list_scenes(root, glob="cafe_*")] == ["cafe_0001a", "cafe_0001b"]
    for scene in scenes:
        with scene:
            assert scene.files() == sorted(scene_files)
            assert scene.read_depth("d-1.000000-10.pgm")[0, 0] == 900
            assert scene.read_rgb("r-1.010000-11.ppm").shape == (480, 640, 3)
            assert scene.read_accel("a-0.990000-10.dump").tolist() == [1, 2, 3, 4]

    cafe = open_scene(root / "cafes.zip", "cafe_0001b/")
    assert cafe.name == "cafe_0001b" and cafe.scene_type == "cafe"
    cafe.files()  # opens the archive
    clone = pickle.loads(pickle.dumps(cafe))
    assert clone == cafe and clone.read_accel("a-0.990000-10.dump").tolist() == [1, 2, 3, 4]
    clone.close()
    with pytest.raises(NyuFormatError, match="cafes.zip:cafe_0001b/nope.pgm"):
        cafe.read_bytes("nope.pgm")
    with pytest.raises(NyuFormatError, match="2 scenes"):
        open_scene(root / "cafes.zip")
    with pytest.raises(NyuFormatError, match="no scene"):
        open_scene(root / "cafes.zip", "kitchen_0001")
    assert open_scene(root / "bedroom_0001").files() == sorted(scene_files)


def test_truncated_member_in_zip_names_the_member(tmp_path: Path) -> None:
    path = tmp_path / "one.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("study_0001/d-1.000000-1.pgm", DEPTH_HEADER + bytes(100))
    scene = open_scene(path)
    with pytest.raises(NyuFormatError, match=r"one.zip:study_0001/d-1.000000-1.pgm.*truncated"):
        scene.read_depth("d-1.000000-1.pgm")
    (tmp_path / "broken.zip").write_bytes(b"not a zip")
    with pytest.raises(NyuFormatError, match="broken.zip"):
        open_scene(tmp_path / "broken.zip")
