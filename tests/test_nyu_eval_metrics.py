"""NYU metrics against DenseDepth, Hu et al. and scikit-image outputs (testvectors/nyu_eval/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from train.eval.metrics import _edge_scores, edge_f1, mssim, pooled_errors

KEYS = ("a1", "a2", "a3", "abs_rel", "rmse", "log10")


@pytest.fixture(scope="module")
def nyu_eval(testvectors: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    inputs = np.load(testvectors / "nyu_eval" / "inputs.npz")
    expected = np.load(testvectors / "nyu_eval" / "expected.npz")
    return dict(inputs), dict(expected)


@pytest.fixture()
def skimage() -> None:
    pytest.importorskip("skimage", reason="mSSIM needs scikit-image")


def _edge_pairs(inputs: dict[str, np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The rows of ``edge_f1``: pred k vs gt k, then flat 3 m, flat 0.05 m and gt 0 vs gt 0."""
    gt, pred = inputs["gt"], inputs["pred"]
    return [
        (pred[0], gt[0]),
        (pred[1], gt[1]),
        (pred[2], gt[2]),
        (np.full_like(gt[0], 3.0), gt[0]),
        (np.full_like(gt[0], 0.05), gt[0]),
        (gt[0], gt[0]),
    ]


class TestPooledErrors:
    @pytest.mark.parametrize("case", ["pooled", "pooled_valid", "pooled_image0"])
    def test_matches_reference(self, nyu_eval, case: str) -> None:
        inputs, expected = nyu_eval
        gt, pred = inputs["gt"], inputs["pred"]
        if case == "pooled_valid":
            valid = inputs["gt_sparse"] > 0
            gt, pred = gt[valid], pred[valid]
        elif case == "pooled_image0":
            gt, pred = gt[0], pred[0]
        got = pooled_errors(gt, pred)
        assert set(got) == set(KEYS)
        for key in KEYS:
            np.testing.assert_allclose(got[key], expected[f"{case}_{key}"], rtol=1e-6, err_msg=key)

    def test_ground_truth_first(self) -> None:
        gt, pred = np.array([2.0, 4.0]), np.array([1.0, 2.0])
        assert pooled_errors(gt, pred)["abs_rel"] == pytest.approx(0.5)
        assert pooled_errors(pred, gt)["abs_rel"] == pytest.approx(1.0)

    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    def test_dtypes_agree(self, dtype) -> None:
        rng = np.random.default_rng(0)
        gt = rng.uniform(0.5, 10, (4, 8, 8))
        pred = gt * rng.uniform(0.8, 1.25, gt.shape)
        ref = pooled_errors(gt, pred)
        got = pooled_errors(gt.astype(dtype), pred.astype(dtype))
        for key in ("abs_rel", "rmse", "log10"):
            assert got[key] == pytest.approx(ref[key], rel=1e-5)

    def test_rejects_mismatch_and_empty(self) -> None:
        with pytest.raises(ValueError, match="differ"):
            pooled_errors(np.ones(3), np.ones(4))
        with pytest.raises(ValueError, match="no pixels"):
            pooled_errors(np.ones(0), np.ones(0))


class TestEdgeF1:
    def test_matches_reference(self, nyu_eval) -> None:
        inputs, expected = nyu_eval
        for row, (pred, gt) in enumerate(_edge_pairs(inputs)):
            for col, threshold in enumerate(expected["edge_thresholds"]):
                got = edge_f1(pred, gt, float(threshold))
                np.testing.assert_allclose(got, expected["edge_f1"][row, col], rtol=5e-4, atol=0)

    def test_precision_recall_match_reference_printout(self, nyu_eval) -> None:
        inputs, expected = nyu_eval
        for row, (pred, gt) in enumerate(_edge_pairs(inputs)):
            for col, threshold in enumerate(expected["edge_thresholds"]):
                got = np.array(_edge_scores(pred, gt, float(threshold)))
                ref = expected["edge_f1_reference_fpr"][row, col]
                np.testing.assert_allclose(got, ref, rtol=5e-4, atol=0, equal_nan=True)

    def test_stack_is_mean_of_images(self, nyu_eval) -> None:
        inputs, expected = nyu_eval
        got = edge_f1(inputs["pred"], inputs["gt"])
        np.testing.assert_allclose(got, expected["edge_f1"][:3, 0].mean(), rtol=5e-4)

    def test_border_is_an_edge_of_a_flat_map(self) -> None:
        # Zero padding: a flat 3 m map has magnitude 3 * 4 = 12 along the border, 0 inside.
        flat = np.full((16, 20), 3.0, dtype=np.float32)
        assert edge_f1(flat, flat) == 1.0
        assert edge_f1(np.full_like(flat, 0.05), flat) == 0.0  # no edge at all -> 0

    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    def test_dtypes(self, nyu_eval, dtype) -> None:
        inputs, expected = nyu_eval
        got = edge_f1(inputs["pred"][0].astype(dtype), inputs["gt"][0].astype(dtype))
        np.testing.assert_allclose(got, expected["edge_f1"][0, 0], rtol=5e-4)

    def test_rejects_shape_mismatch(self) -> None:
        with pytest.raises(ValueError, match="one shape"):
            edge_f1(np.ones((4, 5)), np.ones((5, 4)))


@pytest.mark.usefixtures("skimage")
class TestMssim:
    def test_matches_reference(self, nyu_eval) -> None:
        inputs, expected = nyu_eval
        gt, pred = inputs["gt"], inputs["pred"]
        np.testing.assert_allclose(mssim(pred, gt), expected["mssim"], rtol=1e-6)
        np.testing.assert_allclose(mssim(pred, gt, 5.0), expected["mssim_range5"], rtol=1e-6)
        np.testing.assert_allclose(mssim(pred[0], gt[0]), expected["mssim_image0"], rtol=1e-6)
        for k, ref in enumerate(expected["ssim_per_image"]):
            np.testing.assert_allclose(mssim(pred[k], gt[k]), ref, rtol=1e-6)

    @pytest.mark.parametrize("dtype", [np.float32, np.float64])
    def test_dtypes(self, nyu_eval, dtype) -> None:
        inputs, expected = nyu_eval
        got = mssim(inputs["pred"].astype(dtype), inputs["gt"].astype(dtype))
        np.testing.assert_allclose(got, expected["mssim"], rtol=1e-6)


@pytest.mark.usefixtures("skimage")
class TestOracle:
    def test_ground_truth_against_itself(self, nyu_eval) -> None:
        gt = nyu_eval[0]["gt"]
        errors = pooled_errors(gt, gt)
        assert errors["abs_rel"] == 0 and errors["rmse"] == 0 and errors["log10"] == 0
        assert errors["a1"] == errors["a2"] == errors["a3"] == 1
        assert mssim(gt, gt) == pytest.approx(1.0, abs=1e-12)
        assert edge_f1(gt, gt) == 1.0
