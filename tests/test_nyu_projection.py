"""Depth -> RGB projection against the toolbox (spec nyuv2.md 4, 8, 9.2 and 9.5-9.10)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nyutools import camera, crop_image, project_depth, projection_mask, undistort, undistort_rgb
from nyutools.projection import (
    depth_plane_to_world,
    depth_world_to_rgb_world,
    project_points,
    rgb_world_to_plane,
    zbuffer_depth,
    zbuffer_winners,
)
from nyutools.undistort import DEPTH_CAMERA, RGB_CAMERA, matlab_round, undistort_map

FRAMES = (0, 4, 8)
BLACK = np.zeros((480, 640, 3), np.uint8)


@pytest.fixture(scope="module")
def reference(testvectors: Path) -> dict[int, tuple]:
    """(ours depth, ours rgb, expected depth, expected rgb) per reference frame, computed once."""
    inputs = np.load(testvectors / "nyu" / "project_inputs.npz")
    expected = np.load(testvectors / "nyu" / "project_expected.npz")
    out = {}
    for k in FRAMES:
        depth, rgb = project_depth(inputs[f"raw_depth_{k}"], inputs[f"rgb_{k}"])
        out[k] = (depth, rgb, expected[f"depth_{k}"], expected[f"rgb_undistorted_{k}"])
    return out


@pytest.mark.parametrize("k", FRAMES)
def test_matches_toolbox_reference(reference: dict[int, tuple], k: int) -> None:
    depth, rgb, exp_depth, exp_rgb = reference[k]
    assert depth.dtype == np.float64 and depth.shape == (480, 640)
    assert rgb.dtype == np.uint8 and rgb.shape == (480, 640, 3)
    assert np.count_nonzero(np.abs(depth - exp_depth) > 1e-9) <= 3
    assert np.abs(rgb.astype(int) - exp_rgb).max() <= 1
    assert np.all(depth[479] == 0) and np.all(depth[:, 639] == 0)


def test_raw_to_metres_values() -> None:
    raw = np.array([600, 839, 900, 1000, 1057.5, 1092.5, 2047])
    want = [0.7132994923857868, 1.3857988165680475, 1.824935064935065, 3.797837837837838, 10, 10, 0]
    np.testing.assert_allclose(camera.raw_to_metres(raw), want, rtol=0, atol=1e-15)


def test_rotation() -> None:
    r = camera.R
    # np.linalg.inv (LAPACK) may round the last bits differently on another CPU: 2 ulps.
    assert r[0, 0] == pytest.approx(-0.99997798940829263, rel=0, abs=2.3e-16)
    assert np.linalg.det(r) == pytest.approx(-1.0, abs=1e-12)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-15)


def test_geometric_chain_without_undistortion() -> None:
    world = depth_plane_to_world(np.array([320.0]), np.array([240.0]), np.array([2.0]))
    np.testing.assert_allclose(np.ravel(world), [0.023875554532, 0.005341093809, 2.0], atol=1e-12)
    rgb_world = depth_world_to_rgb_world(*world)
    np.testing.assert_allclose(
        np.ravel(rgb_world), [0.009823068732, -0.013087501564, -1.999388505171], atol=1e-12
    )
    x, y = rgb_world_to_plane(*rgb_world)
    np.testing.assert_allclose([x[0], y[0]], [323.033282, 257.136486], atol=1e-6)
    u1, v1, z = np.array([1.0, 640.0]), np.array([1.0, 480.0]), np.array([1.0, 5.0])
    x, y = rgb_world_to_plane(*depth_world_to_rgb_world(*depth_plane_to_world(u1, v1, z)))
    np.testing.assert_allclose(x, [33.099060, 610.614999], atol=1e-6)
    np.testing.assert_allclose(y, [42.397615, 472.326188], atol=1e-6)
    # The full chain lands 1-based (x 323, y 257) on numpy [256, 322].
    depth = np.zeros((480, 640))
    depth[239, 319] = 2.0
    _, target, z = project_points(depth)
    assert target.tolist() == [322 * 480 + 256] and z.tolist() == [2.0]


def test_matlab_round_is_half_away_from_zero() -> None:
    assert matlab_round(np.array([0.5, 1.5, 2.5, -0.5, -2.5])).tolist() == [1, 2, 3, -1, -3]


def test_undistortion_geometry_and_constant_image() -> None:
    out = undistort_rgb(np.full((480, 640, 3), 100, np.uint8))
    assert np.count_nonzero(out[..., 0] == 100) == 293_366
    white = np.all(out == 255, axis=2)
    assert np.count_nonzero(white) == 13_834
    rows, cols = np.nonzero(white)
    assert np.all((rows <= 5) | (rows >= 474) | (cols <= 6) | (cols >= 632))
    rgb_map, depth_map = undistort_map(RGB_CAMERA), undistort_map(DEPTH_CAMERA)
    assert depth_map.valid.all()
    for umap, corner0, corner1 in (
        (rgb_map, (-6.5504, -5.1356), (646.1847, 484.1553)),
        (depth_map, (3.3063, 3.4243), (633.4881, 475.8793)),
    ):
        np.testing.assert_allclose([umap.src_x[0, 0], umap.src_y[0, 0]], corner0, atol=1e-4)
        np.testing.assert_allclose([umap.src_x[-1, -1], umap.src_y[-1, -1]], corner1, atol=1e-4)
    gray = undistort(np.full((480, 640), 7.0), DEPTH_CAMERA)
    np.testing.assert_allclose(gray, 7.0, atol=1e-12)


def test_constant_frame_is_all_noise() -> None:
    depth, _ = project_depth(np.full((480, 640), 900, np.uint16), BLACK)
    assert not depth.any()


def test_constant_frame_with_one_no_reading_pixel() -> None:
    raw = np.full((480, 640), 900, np.uint16)
    raw[0, 0] = 2047
    depth, _ = project_depth(raw, BLACK)
    nz = depth != 0
    np.testing.assert_allclose(depth[nz], 1.824935064935065, atol=1e-12)
    rows, cols = np.nonzero(nz)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (41, 471, 35, 606)
    assert np.count_nonzero(nz) == 244_144
    holes = ~nz & projection_mask()
    rows, cols = np.nonzero(holes)
    assert np.count_nonzero(holes) == 105
    assert set(rows) == {44} and (cols.min(), cols.max()) == (496, 600)


def test_small_block_is_eroded_by_noise_dilation() -> None:
    raw = np.full((480, 640), 2047, np.uint16)
    raw[238:243, 318:323] = 1000
    depth, _ = project_depth(raw, BLACK)
    rows, cols = np.nonzero(depth)
    assert len(rows) == 16
    assert set(rows) == set(range(255, 259)) and set(cols) == set(range(325, 329))
    np.testing.assert_allclose(depth[rows, cols], 3.797837837837838, atol=1e-12)
    single = np.full((480, 640), 2047, np.uint16)
    single[240, 320] = 1000
    assert not project_depth(single, BLACK)[0].any()


def test_zbuffer_rule() -> None:
    assert zbuffer_winners(np.array([5, 5]), np.array([3.0, 2.0]), 8)[5] == 1
    assert zbuffer_winners(np.array([5, 5]), np.array([2.0, 3.0]), 8)[5] == 0
    # Equal z: the larger (later) column-major source index wins.
    winners = zbuffer_winners(np.array([5, 2, 5, 5]), np.array([2.0, 1.0, 2.0, 4.0]), 8)
    assert winners.tolist() == [-1, -1, 1, -1, -1, 2, -1, -1]
    depth = zbuffer_depth(np.array([5, 2, 5, 5]), np.array([2.0, 1.0, 2.0, 4.0]), 8)
    assert depth.tolist() == [0, 0, 1.0, 0, 0, 2.0, 0, 0]


def test_zbuffer_depth_equals_winners_on_reference(testvectors: Path) -> None:
    inputs = np.load(testvectors / "nyu" / "project_inputs.npz")
    from nyutools.projection import noise_mask, raw_to_depth, undistort_depth

    raw = inputs["raw_depth_4"]
    noise = noise_mask(raw)
    _, target, z = project_points(raw_to_depth(undistort_depth(raw, noise), noise))
    winners = zbuffer_winners(target, z, raw.size)
    via_winners = np.where(winners >= 0, z[winners], 0.0)
    assert np.array_equal(via_winners, zbuffer_depth(target, z, raw.size))


def test_projection_mask_and_crop() -> None:
    mask = projection_mask()
    assert mask.sum() == 427 * 561
    rows, cols = np.nonzero(mask)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (44, 470, 40, 600)
    assert crop_image(np.zeros((480, 640, 3))).shape == (427, 561, 3)


def test_rejects_wrong_shapes() -> None:
    with pytest.raises(ValueError, match="project_depth"):
        project_depth(np.zeros((240, 320), np.uint16), BLACK)
