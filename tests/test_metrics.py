"""train.eval.metrics: KITTI (monodepth2) and NYU (P2Net) evaluation protocols in numpy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from train.eval.metrics import (
    EIGEN_METRIC_NAMES,
    compute_errors,
    eigen_metrics,
    format_metrics,
    garg_crop_mask,
    nyu_metrics,
    post_process_disparity,
)


@pytest.mark.parametrize("mode", ["mono", "stereo"])
def test_eigen_reference_values(testvectors: Path, mode: str) -> None:
    inputs = np.load(testvectors / "kitti" / "metrics_inputs.npz")
    expected = np.load(testvectors / "kitti" / "metrics_expected.npz")
    assert list(expected["order"]) == list(EIGEN_METRIC_NAMES)
    gts = [inputs[f"gt_{i}"] for i in range(3)]
    metrics = eigen_metrics(gts, inputs["pred_disp"], stereo=mode == "stereo")
    got = [metrics[name] for name in EIGEN_METRIC_NAMES]
    np.testing.assert_allclose(got, expected[mode], rtol=1e-5)
    assert ("ratio_median" in metrics) == (mode == "mono")


def test_known_values_nyu() -> None:
    """spec nyuv2.md 9.14."""
    gt = np.full((2, 480, 640), 2.0)
    metrics = nyu_metrics(gt, np.full_like(gt, 2.5), median_scaling=False)
    expected = {
        "abs_rel": 0.25,
        "sq_rel": 0.125,
        "rmse": 0.5,
        "rmse_log": 0.2231436,
        "log10": 0.0969100,
        "a1": 0.0,
        "a2": 1.0,
        "a3": 1.0,
    }
    for name, value in expected.items():
        assert metrics[name] == pytest.approx(value, abs=1e-7), name
    scaled = nyu_metrics(gt, gt / 2, median_scaling=True)
    assert scaled["ratio_median"] == 2.0
    for name in ("abs_rel", "sq_rel", "rmse", "rmse_log", "log10"):
        assert scaled[name] == 0.0
    assert scaled["a1"] == 1.0


def test_nyu_crop_mask_and_clip() -> None:
    gt = np.zeros((480, 640))
    gt[44:471, 40:601] = 3.0
    gt[100, 100] = 0.0  # invalid pixel, ignored
    pred = np.full((480, 640), 50.0)  # clipped to 10 m
    pred[:44] = 3.0
    metrics = nyu_metrics(gt, pred, median_scaling=False)
    assert metrics["abs_rel"] == pytest.approx(7 / 3)
    cropped = nyu_metrics(gt, pred[44:471, 40:601], median_scaling=False)
    assert cropped == metrics
    with pytest.raises(ValueError, match="prediction size"):
        nyu_metrics(gt, pred[:10], median_scaling=False)


def test_compute_errors_identity() -> None:
    gt = np.array([1.0, 2.0, 40.0], dtype=np.float32)
    errors = compute_errors(gt, gt.copy())
    assert errors["abs_rel"] == 0 and errors["rmse"] == 0 and errors["a1"] == 1.0


def test_garg_crop() -> None:
    mask = garg_crop_mask(375, 1242)
    rows, cols = np.nonzero(mask)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (153, 370, 44, 1196)


def test_eigen_benchmark_protocol() -> None:
    gt = np.zeros((375, 1242), dtype=np.float32)
    gt[0, 0], gt[200, 600] = 100.0, 10.0  # outside the Garg crop and over 80 m: still counted
    disp = np.full((1, 192, 640), 0.1, dtype=np.float32)  # depth 10 everywhere
    bench = eigen_metrics([gt], disp, stereo=False, protocol="eigen_benchmark")
    eigen = eigen_metrics([gt], disp, stereo=False, protocol="eigen")
    assert eigen["abs_rel"] == pytest.approx(0.0, abs=1e-6)
    assert bench["abs_rel"] > 0.1 and bench["ratio_median"] == pytest.approx(5.5)
    with pytest.raises(ValueError, match="protocol"):
        eigen_metrics([gt], disp, stereo=False, protocol="kitti")
    with pytest.raises(ValueError, match="no valid"):
        eigen_metrics([np.zeros_like(gt)], disp, stereo=True)


def test_post_process() -> None:
    w = 40
    plain = np.ones((2, 3, w), dtype=np.float32)
    flipped = np.full((2, 3, w), 3.0, dtype=np.float32)
    out = post_process_disparity(plain, flipped)
    assert out.shape == plain.shape
    np.testing.assert_allclose(out[..., 0], 3.0)  # left border from the flipped prediction
    np.testing.assert_allclose(out[..., -1], 1.0)  # right border from the plain one
    np.testing.assert_allclose(out[..., w // 2], 2.0)  # centre: the mean
    np.testing.assert_allclose(post_process_disparity(plain, plain), plain)


def test_format_metrics() -> None:
    table = format_metrics(dict.fromkeys(EIGEN_METRIC_NAMES, 0.12345))
    assert table.splitlines()[0].split(" | ")[0].strip() == "abs_rel"
    assert "0.123" in table


def test_import_is_torch_free() -> None:
    code = "import sys, train.eval.metrics, kitti; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])
