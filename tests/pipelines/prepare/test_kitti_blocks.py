"""Pixel reading of prepare-kitti: the fast PNG path gives OpenCV's pixels, odd PNGs fall back."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pipelines.prepare.common import resized_intrinsics
from pipelines.prepare.kitti import blocks as kitti_blocks
from pipelines.prepare.kitti.blocks import read_resized, read_rgb


@pytest.fixture
def rgb() -> np.ndarray:
    rng = np.random.default_rng(0)
    smooth = cv2.resize(rng.integers(0, 256, (12, 40, 3), dtype=np.uint8), (124, 37))
    return np.clip(smooth.astype(int) + rng.integers(-8, 9, smooth.shape), 0, 255).astype(np.uint8)


def _write(path: Path, image: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), image)
    return path


@pytest.mark.parametrize("fast", [True, False])
def test_read_rgb_matches_opencv(rgb: np.ndarray, tmp_path: Path, fast: bool, monkeypatch) -> None:
    monkeypatch.setattr(kitti_blocks, "_FAST_PNG", fast)
    bgr = rgb[..., ::-1].copy()
    cases = {
        "rgb": bgr,
        "grey": cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY),
        "rgb16": bgr.astype(np.uint16) * 257,
        "rgba": cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA),
    }
    for name, image in cases.items():
        path = _write(tmp_path / f"{name}.png", image)
        expected = cv2.imread(str(path), cv2.IMREAD_COLOR_RGB)
        got = read_rgb(path)
        assert got.dtype == np.uint8 and got.shape == (37, 124, 3), name
        np.testing.assert_array_equal(got, expected, err_msg=name)


@pytest.mark.parametrize("fast", [True, False])
def test_read_rgb_names_a_bad_file(
    rgb: np.ndarray, tmp_path: Path, fast: bool, monkeypatch
) -> None:
    monkeypatch.setattr(kitti_blocks, "_FAST_PNG", fast)
    path = _write(tmp_path / "cut.png", rgb)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match=r"cut\.png: cannot read image"):
        read_rgb(path)
    with pytest.raises(ValueError, match=r"missing\.png: cannot read image"):
        read_rgb(tmp_path / "missing.png")


def test_read_resized_is_an_area_resize_with_matching_intrinsics(
    rgb: np.ndarray, tmp_path: Path
) -> None:
    path = _write(tmp_path / "a.png", rgb[..., ::-1])
    out = read_resized(path, (16, 64), (37, 124))
    np.testing.assert_array_equal(out, cv2.resize(rgb, (64, 16), interpolation=cv2.INTER_AREA))
    with pytest.raises(ValueError, match="S_rect says 125x37"):
        read_resized(path, (16, 64), (37, 125))
    # a pixel centre maps onto a pixel centre: the image centre stays the image centre
    K = np.array([[100.0, 0, 61.5], [0, 100, 18], [0, 0, 1]])
    k = resized_intrinsics(K, (37, 124), (16, 64))
    assert k[0, 2] == pytest.approx(31.5) and k[1, 2] == pytest.approx(7.5)
    assert k[0, 0] == pytest.approx(100 * 64 / 124) and k[1, 1] == pytest.approx(100 * 16 / 37)


def _kitti_sized(seed: int) -> np.ndarray:
    """A 1242x375 RGB frame with smooth structure and pixel noise (LANCZOS rings on both)."""
    rng = np.random.default_rng(seed)
    low = rng.integers(0, 256, (20, 60, 3), dtype=np.uint8)
    smooth = cv2.resize(low, (1242, 375), interpolation=cv2.INTER_CUBIC).astype(int)
    return np.clip(smooth + rng.integers(-20, 21, smooth.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_lanczos_is_pil_lanczos_of_the_decoded_file(tmp_path: Path, ext: str) -> None:
    from PIL import Image

    path = tmp_path / f"frame{ext}"
    Image.fromarray(_kitti_sized(3)).save(path, **({"quality": 92, "subsampling": 2}
                                                   if ext == ".jpg" else {}))  # fmt: skip
    for size in ((192, 640), (320, 1024), (96, 320), (400, 1300)):  # shrinking and enlarging
        with open(path, "rb") as f, Image.open(f) as image:
            ref = np.asarray(image.convert("RGB").resize(size[::-1], Image.LANCZOS))
        out = np.zeros((*size, 3), np.uint8)
        got = read_resized(path, size, (375, 1242), out=out, resize="lanczos")
        assert got is out
        np.testing.assert_array_equal(got, ref, err_msg=f"{ext} {size}")
    area = read_resized(path, (192, 640), (375, 1242))
    assert np.abs(area.astype(int) - read_resized(path, (192, 640), (375, 1242),
                                                   resize="lanczos")).max() > 0  # fmt: skip


def test_jpeg_reading(tmp_path: Path) -> None:
    from PIL import Image

    rgb = _kitti_sized(4)
    Image.fromarray(rgb).save(tmp_path / "c.jpg", quality=92, subsampling=2)
    got = read_rgb(tmp_path / "c.jpg")
    np.testing.assert_array_equal(got, np.asarray(Image.open(tmp_path / "c.jpg").convert("RGB")))
    assert np.abs(got.astype(int) - rgb).mean() < 12  # lossy: noise and 4:2:0 chroma
    Image.fromarray(rgb[..., 0]).save(tmp_path / "grey.jpg")
    grey = read_rgb(tmp_path / "grey.jpg")
    assert grey.shape == (375, 1242, 3) and (grey[..., 0] == grey[..., 2]).all()
    data = (tmp_path / "c.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) - 500])
    (tmp_path / "text.jpg").write_bytes(b"not an image")
    for name in ("cut.jpg", "text.jpg", "missing.jpg"):
        with pytest.raises(ValueError, match=rf"{name}: cannot read image \(.* not a JPEG\)"):
            read_rgb(tmp_path / name)
    with pytest.raises(ValueError, match="--resize 'cubic' must be one of area, lanczos"):
        kitti_blocks.check_resize("cubic")
