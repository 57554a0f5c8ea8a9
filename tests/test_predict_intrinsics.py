"""``predict --intrinsics``: every accepted form gives the same network-size intrinsics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.store.toystore import ToySpec, write_toy_store
from train.eval.intrinsics import parse_intrinsics

NORMALISED = (0.58, 1.92, 0.5, 0.5)  # KITTI's (fx, fy, cx, cy), x by width, y by height


def _expected(size: tuple[int, int]) -> torch.Tensor:
    fx, fy, cx, cy = NORMALISED
    h, w = size
    return torch.tensor(
        [[fx * w, 0, cx * w, 0], [0, fy * h, cy * h, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]]
    )


def test_every_form_gives_the_same_matrix(tmp_path: Path) -> None:
    image, net = (375, 1242), (192, 640)
    fx, fy, cx, cy = NORMALISED
    pixels = f"{fx * 1242},{fy * 375},{cx * 1242},{cy * 375}"
    (tmp_path / "k.json").write_text(json.dumps([[fx, 0, cx], [0, fy, cy], [0, 0, 1]]))
    (tmp_path / "calib_cam_to_cam.txt").write_text(
        "calib_time: 09-Jan-2012 13:57:47\nS_rect_02: 1.242000e+03 3.750000e+02\n"
        f"P_rect_02: {fx * 1242} 0 {cx * 1242} 44.8 0 {fy * 375} {cy * 375} 0.2 0 0 1 0.003\n"
    )
    for text in (pixels, str(tmp_path / "k.json"), str(tmp_path / "calib_cam_to_cam.txt")):
        camera = parse_intrinsics(text)
        assert camera is not None
        torch.testing.assert_close(camera.at(image, net), _expected(net), rtol=1e-6, atol=1e-4)
    assert parse_intrinsics(None) is None


def test_store_intrinsics(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    write_toy_store(path, ToySpec(n_sequences=1, frames_per_sequence=2, image_size=(64, 96)))
    from pipelines import open_store

    K = np.asarray(open_store(path)["intrinsics"][0, 0])
    camera = parse_intrinsics(str(path))
    assert camera is not None
    got = camera.at((10, 10), (64, 96))
    assert float(got[0, 0]) == pytest.approx(float(K[0, 0])) and float(got[1, 2]) == pytest.approx(
        float(K[1, 2])
    )


@pytest.mark.parametrize("text", ["1,2", "a,b,c,d", "0,1,2,3"])
def test_bad_values_are_one_line(text: str) -> None:
    with pytest.raises(ValueError, match="--intrinsics"):
        parse_intrinsics(text)
