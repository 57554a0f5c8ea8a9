"""Colorization in-painting against the toolbox (spec nyuv2.md 5, 8 and 9.11)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse.linalg as spla

from nyutools import fill_depth, rgb_to_gray
from nyutools.fill import colorization_matrix, neighbour_weights
from nyutools.fill_solver import solve_colorization


@pytest.fixture(scope="module")
def filled(testvectors: Path) -> tuple[np.ndarray, np.ndarray]:
    """(ours, toolbox) in-painting of reference frame 0, computed once."""
    projected = np.load(testvectors / "nyu" / "project_expected.npz")
    expected = np.load(testvectors / "nyu" / "fill_expected.npz")["filled_0"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the fast iterative path must converge, no fallback
        ours = fill_depth(projected["rgb_undistorted_0"] / 255, projected["depth_0"], 1.0)
    return ours, expected


def test_matches_toolbox_reference(filled: tuple[np.ndarray, np.ndarray]) -> None:
    ours, expected = filled
    assert ours.dtype == np.float64 and ours.shape == (480, 640)
    assert np.abs(ours - expected).max() < 1e-4


def small_scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (30, 40, 3)).astype(np.uint8)
    depth = rng.uniform(0.5, 9.0, (30, 40))
    depth[5:20, 8:30] = 0.0  # a big hole
    depth[rng.random((30, 40)) < 0.1] = 10.0  # saturated pixels are unknown too
    return rgb, depth


@pytest.mark.parametrize("alpha", [1.0, 0.3])
def test_constant_known_depth_gives_constant_output(alpha: float) -> None:
    rgb, depth = small_scene()
    depth[(depth != 0) & (depth != 10)] = 2.5
    out = fill_depth(rgb / 255, depth, alpha)
    np.testing.assert_allclose(out, 2.5, atol=1e-8)


def test_weight_example_from_spec() -> None:
    gray = np.array([[0.2, 0.4, 0.4], [0.4, 0.4, 0.4], [0.4, 0.4, 0.9]])
    weights = neighbour_weights(gray)
    assert weights.shape == (8, 3, 3)
    centre = weights[:, 1, 1]
    # Offsets are column-major: (-1,-1) first = gray[0,0] = 0.2, (1,1) last = gray[2,2] = 0.9.
    np.testing.assert_allclose(centre[0], 0.019177, atol=2e-6)  # spec quotes it truncated
    np.testing.assert_allclose(centre[-1], 2.5e-7, atol=1e-8)
    np.testing.assert_allclose(centre[1:-1], 0.163470, atol=1e-6)
    corner = weights[:, 0, 0]
    np.testing.assert_allclose(np.sort(corner)[-3:], 1 / 3, atol=1e-12)
    assert np.count_nonzero(corner) == 3
    np.testing.assert_allclose(weights.sum(axis=0), 1.0, atol=1e-12)


def test_gray_conversion_follows_matlab() -> None:
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]], np.uint8)
    gray_u8 = rgb_to_gray(rgb)
    assert gray_u8.tolist() == [[76, 150, 29, 18]]  # rounded like MATLAB's uint8 result
    gray_f = rgb_to_gray(rgb / 255)
    np.testing.assert_allclose(gray_f[0, 0], 0.298936021293775, atol=1e-15)
    out = fill_depth(*small_scene())
    assert out.shape == (30, 40) and np.all(np.isfinite(out))


def test_iterative_solver_matches_direct_solve() -> None:
    rgb, depth = small_scene(1)
    known = (depth != 0) & (depth != 10)
    matrix = colorization_matrix(rgb_to_gray(rgb / 255), known, 1.0)
    rhs = (known * depth / depth[known].max()).T.ravel()
    direct = spla.spsolve(matrix.tocsc(), rhs)
    np.testing.assert_allclose(solve_colorization(matrix, rhs, known.T.ravel()), direct, atol=1e-9)


def test_bad_input() -> None:
    rgb, depth = small_scene()
    with pytest.raises(ValueError, match="no known depth"):
        fill_depth(rgb, np.zeros_like(depth))
    with pytest.raises(ValueError, match="does not match"):
        fill_depth(rgb[:10], depth)


def test_column_selection_helper() -> None:
    from scipy import sparse

    from nyutools.fill_solver import _select_columns

    rng = np.random.default_rng(2)
    dense = rng.random((7, 9)) * (rng.random((7, 9)) < 0.4)
    dense[3] = 0.0  # an empty row
    cols = rng.random(9) < 0.5
    got = _select_columns(sparse.csr_matrix(dense), cols).toarray()
    assert np.array_equal(got, dense[:, cols])
