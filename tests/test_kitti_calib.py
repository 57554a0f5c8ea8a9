"""kitti.calib: the monodepth2 calibration parsing rule and the per-date Calibration."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from kitti import Calibration, read_calib


@pytest.fixture()
def date_dir(testvectors: Path) -> Path:
    return testvectors / "kitti" / "2011_09_26"


def test_read_calib_real_files(date_dir: Path) -> None:
    cam = read_calib(date_dir / "calib_cam_to_cam.txt")
    assert cam["calib_time"] == "09-Jan-2012 13:57:47"
    assert isinstance(cam["corner_dist"], np.ndarray) and cam["corner_dist"].shape == (1,)
    np.testing.assert_array_equal(cam["S_rect_02"], [1242.0, 375.0])
    np.testing.assert_array_equal(
        cam["P_rect_02"].reshape(3, 4),
        [
            [721.5377, 0, 609.5593, 44.85728],
            [0, 721.5377, 172.854, 0.2163791],
            [0, 0, 1, 0.002745884],
        ],
    )
    assert cam["P_rect_03"][3] == -339.5242
    velo = read_calib(date_dir / "calib_velo_to_cam.txt")
    np.testing.assert_array_equal(velo["T"], [-0.004069766, -0.07631618, -0.2717806])
    assert velo["R"].dtype == np.float64 and velo["R"].shape == (9,)


def test_read_calib_value_rule(tmp_path: Path) -> None:
    path = tmp_path / "calib.txt"
    path.write_text("a: 1 2 3\nb: 1  2\nc: 1e-3 +2\nname: hello world\n\nempty:\nt: 12:30:00\n")
    calib = read_calib(path)
    np.testing.assert_array_equal(calib["a"], [1.0, 2.0, 3.0])
    assert calib["b"] == "1  2"  # double space -> '' piece -> float fails -> kept as text
    np.testing.assert_array_equal(calib["c"], [1e-3, 2.0])
    assert calib["name"] == "hello world"
    assert calib["empty"] == ""
    assert calib["t"] == "12:30:00"  # split at the first colon only


def test_read_calib_malformed(tmp_path: Path) -> None:
    path = tmp_path / "calib_cam_to_cam.txt"
    path.write_text("calib_time: x\nS_rect_02 1242 375\n")
    with pytest.raises(ValueError, match=r"calib_cam_to_cam\.txt, line 2"):
        read_calib(path)
    with pytest.raises(ValueError, match="missing.txt"):
        read_calib(tmp_path / "missing.txt")


def test_calibration(date_dir: Path) -> None:
    calib = Calibration.from_dir(date_dir)
    assert calib.size(2) == (375, 1242) and calib.size(3) == (375, 1242)
    assert calib.baseline == pytest.approx(0.5327, abs=1e-4)
    np.testing.assert_array_equal(
        calib.K(2), [[721.5377, 0, 609.5593], [0, 721.5377, 172.854], [0, 0, 1]]
    )
    assert calib.velo2cam.shape == (4, 4) and calib.R_cam2rect.shape == (4, 4)
    np.testing.assert_array_equal(calib.velo2cam[:3, 3], [-0.004069766, -0.07631618, -0.2717806])
    np.testing.assert_array_equal(calib.velo2cam[3], [0, 0, 0, 1])
    assert calib.R_cam2rect[0, 0] == 9.999239e-01 and calib.R_cam2rect[3, 3] == 1
    expected = calib.P_rect[3] @ calib.R_cam2rect @ calib.velo2cam
    np.testing.assert_allclose(calib.P_velo2im(3), expected, rtol=1e-12)
    with pytest.raises(ValueError, match="camera"):
        calib.P_velo2im(7)
    with pytest.raises(ValueError):
        calib.velo2cam[0, 0] = 2.0  # cached and shared: read-only


def test_calibration_cached_per_folder(date_dir: Path, tmp_path: Path) -> None:
    assert Calibration.from_dir(date_dir) is Calibration.from_dir(str(date_dir) + "/../2011_09_26")
    copy = tmp_path / "2011_09_26"
    shutil.copytree(date_dir, copy)
    assert Calibration.from_dir(copy) is not Calibration.from_dir(date_dir)


def test_calibration_missing_key(date_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "2011_09_26"
    shutil.copytree(date_dir, folder)
    velo = folder / "calib_velo_to_cam.txt"
    velo.write_text(velo.read_text().replace("T: ", "X: "))
    with pytest.raises(ValueError, match=r"calib_velo_to_cam\.txt.*'T'"):
        Calibration.from_dir(folder)


def test_calibration_reread_when_file_changes(date_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "2011_09_26"
    shutil.copytree(date_dir, folder)
    before = Calibration.from_dir(folder)
    cam = folder / "calib_cam_to_cam.txt"
    cam.write_text(cam.read_text().replace("S_rect_02: 1.242000e+03", "S_rect_02: 1.240000e+03"))
    after = Calibration.from_dir(folder)
    assert before.size(2) == (375, 1242) and after.size(2) == (375, 1240)
