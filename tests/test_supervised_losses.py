"""Supervised losses: DenseDepth's Keras loss against its outputs (testvectors/densedepth/),
berHu, SILog, L1 and the name registry."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from train.losses.supervised import (
    SUPERVISED_LOSSES,
    berhu_loss,
    densedepth_loss,
    densedepth_loss_per_sample,
    l1_loss,
    silog_loss,
    supervised_loss,
    tf_ssim,
)

pytestmark = pytest.mark.numerics

F32, F64 = torch.float32, torch.float64
RTOL = 1e-5


def _cases(testvectors: Path):
    inputs = np.load(testvectors / "densedepth" / "loss_inputs.npz")
    expected = np.load(testvectors / "densedepth" / "loss_expected.npz")
    for name, index, theta, max_val in zip(
        inputs["case_names"],
        inputs["case_index"],
        inputs["case_theta"],
        inputs["case_max_depth_val"],
        strict=True,
    ):
        rows = index[index >= 0]
        yield (
            str(name),
            inputs["y_true"][rows],
            inputs["y_pred"][rows],
            float(theta),
            float(max_val),
            float(expected[name]),
            expected[f"{name}_per_sample"],
        )


class TestDensedepthLoss:
    @pytest.mark.parametrize("dtype", [F32, F64])
    def test_matches_reference(self, testvectors: Path, dtype) -> None:
        for name, y_true, y_pred, theta, max_val, loss, per_sample in _cases(testvectors):
            yt, yp = torch.from_numpy(y_true).to(dtype), torch.from_numpy(y_pred).to(dtype)
            got = densedepth_loss(yt, yp, theta=theta, max_depth_val=max_val)
            assert got.dtype == dtype and got.ndim == 0
            np.testing.assert_allclose(got.item(), loss, rtol=RTOL, err_msg=name)
            got = densedepth_loss_per_sample(yt, yp, theta=theta, max_depth_val=max_val)
            np.testing.assert_allclose(got.numpy(), per_sample, rtol=RTOL, err_msg=name)

    def test_identical_maps_cost_nothing(self) -> None:
        y = torch.rand(2, 1, 16, 20, dtype=F64) * 99 + 1
        assert densedepth_loss(y, y).item() == pytest.approx(0.0, abs=1e-12)

    def test_gradcheck(self) -> None:
        torch.manual_seed(0)
        y_true = torch.rand(1, 1, 12, 13, dtype=F64) * 10 + 1
        y_pred = (torch.rand(1, 1, 12, 13, dtype=F64) * 10 + 1).requires_grad_()
        assert torch.autograd.gradcheck(lambda p: densedepth_loss(y_true, p), (y_pred,))

    def test_window_is_normalised_gaussian(self) -> None:
        # Constant images: SSIM = luminance only, which needs a window summing to 1.
        x = torch.full((1, 1, 11, 11), 5.0, dtype=F64)
        assert tf_ssim(x, x, 100.0).item() == pytest.approx(1.0)
        y = x + 1.0  # luminance only: (2 * 5 * 6 + c1) / (25 + 36 + c1)
        c1 = 1.0
        assert tf_ssim(x, y, 100.0).item() == pytest.approx((60 + c1) / (61 + c1))

    def test_rejects_small_images(self) -> None:
        with pytest.raises(ValueError, match="11x11"):
            densedepth_loss(torch.ones(1, 1, 10, 20), torch.ones(1, 1, 10, 20))


class TestBerhuLoss:
    def test_known_values(self) -> None:
        pred = torch.tensor([1.0, 2.0, 11.0], dtype=F64).reshape(1, 1, 1, 3)
        target = torch.zeros_like(pred)
        c = 0.2 * 11.0
        expected = (1.0 + 2.0 + (121.0 + c * c) / (2 * c)) / 3  # |r| <= c for 1 and 2
        assert berhu_loss(pred, target).item() == pytest.approx(expected)

    def test_mask_selects_pixels_and_threshold(self) -> None:
        pred = torch.tensor([1.0, 2.0, 100.0], dtype=F64).reshape(1, 1, 1, 3)
        mask = torch.tensor([True, True, False]).reshape(1, 1, 1, 3)
        c = 0.2 * 2.0  # the masked-out residual does not set c
        expected = ((1.0 + c * c) / (2 * c) + (4.0 + c * c) / (2 * c)) / 2
        assert berhu_loss(pred, torch.zeros_like(pred), mask).item() == pytest.approx(expected)

    def test_zero_residual_is_zero_with_finite_gradient(self) -> None:
        pred = torch.ones(1, 1, 3, 3, dtype=F64, requires_grad=True)
        loss = berhu_loss(pred, torch.ones_like(pred))
        loss.backward()
        assert loss.item() == 0.0 and torch.isfinite(pred.grad).all()

    def test_gradcheck(self) -> None:
        # c is a constant for the gradient: keep the largest residual (which sets c) fixed.
        torch.manual_seed(1)
        free = torch.rand(1, 1, 1, 11, dtype=F64, requires_grad=True)
        target = torch.zeros(1, 1, 1, 12, dtype=F64)
        fixed = torch.full((1, 1, 1, 1), 3.0, dtype=F64)  # c = 0.6: both branches occur

        def fn(p: torch.Tensor) -> torch.Tensor:
            return berhu_loss(torch.cat([fixed, p], dim=-1), target)

        assert torch.autograd.gradcheck(fn, (free,))

    @pytest.mark.parametrize("dtype", [F32, F64])
    def test_dtype(self, dtype) -> None:
        pred, target = torch.rand(2, 1, 4, 4, dtype=dtype), torch.rand(2, 1, 4, 4, dtype=dtype)
        assert berhu_loss(pred, target).dtype == dtype


class TestSilogLoss:
    def test_constant_ratio(self) -> None:
        target = torch.rand(2, 1, 4, 4, dtype=F64) + 0.5
        got = silog_loss(2 * target, target)
        assert got.item() == pytest.approx(10 * math.sqrt(1 - 0.85) * math.log(2))
        assert silog_loss(2 * target, target, variance_focus=1.0).item() == pytest.approx(
            0.0, abs=1e-6
        )

    def test_mask_excludes_missing_depth(self) -> None:
        target = torch.tensor([1.0, 2.0, 0.0], dtype=F64).reshape(1, 1, 1, 3)
        pred = torch.tensor([1.0, 2.0, 5.0], dtype=F64).reshape(1, 1, 1, 3)
        assert silog_loss(pred, target, target > 0).item() == pytest.approx(0.0, abs=1e-12)

    def test_gradcheck(self) -> None:
        torch.manual_seed(2)
        pred = (torch.rand(1, 1, 4, 5, dtype=F64) + 0.5).requires_grad_()
        target = torch.rand(1, 1, 4, 5, dtype=F64) + 0.5
        assert torch.autograd.gradcheck(lambda p: silog_loss(p, target), (pred,))

    @pytest.mark.parametrize("dtype", [F32, F64])
    def test_dtype(self, dtype) -> None:
        pred, target = (
            torch.rand(2, 1, 4, 4, dtype=dtype) + 1,
            torch.rand(2, 1, 4, 4, dtype=dtype) + 1,
        )
        assert silog_loss(pred, target).dtype == dtype


class TestL1Loss:
    def test_masked_mean(self) -> None:
        pred = torch.tensor([1.0, 4.0, 9.0]).reshape(1, 1, 1, 3)
        target = torch.tensor([0.0, 2.0, 0.0]).reshape(1, 1, 1, 3)
        assert l1_loss(pred, target).item() == pytest.approx(4.0)
        assert l1_loss(pred, target, target > 0).item() == pytest.approx(2.0)

    def test_empty_mask_gives_zero(self) -> None:
        pred = torch.rand(1, 1, 2, 2, requires_grad=True)
        loss = l1_loss(pred, pred.detach(), torch.zeros(1, 1, 2, 2, dtype=torch.bool))
        loss.backward()
        assert loss.item() == 0.0

    def test_gradcheck(self) -> None:
        torch.manual_seed(3)
        pred = torch.rand(1, 1, 3, 4, dtype=F64, requires_grad=True)
        target = torch.rand(1, 1, 3, 4, dtype=F64)
        assert torch.autograd.gradcheck(lambda p: l1_loss(p, target), (pred,))

    def test_rejects_shape_mismatch(self) -> None:
        with pytest.raises(ValueError, match="differ"):
            l1_loss(torch.rand(1, 1, 2, 2), torch.rand(1, 1, 2, 3))


class TestRegistry:
    def test_names(self) -> None:
        assert set(SUPERVISED_LOSSES) == {"densedepth", "berhu", "silog", "l1"}
        assert supervised_loss("berhu") is berhu_loss

    def test_common_signature(self) -> None:
        torch.manual_seed(4)
        target = torch.rand(2, 1, 16, 16) * 9 + 1
        pred = torch.rand(2, 1, 16, 16) * 9 + 1
        mask = torch.ones_like(target, dtype=torch.bool)
        for name, fn in SUPERVISED_LOSSES.items():
            loss = fn(pred, target, mask)
            assert loss.ndim == 0 and torch.isfinite(loss), name
            assert fn(pred, target, None).item() == pytest.approx(loss.item()), name
        # densedepth's wrapper puts the target first for the Keras order.
        ref = densedepth_loss(target, pred)
        assert supervised_loss("densedepth")(pred, target, None).item() == ref.item()

    def test_densedepth_refuses_sparse_mask(self) -> None:
        target = torch.rand(1, 1, 12, 12) + 1
        mask = torch.ones_like(target, dtype=torch.bool)
        mask[0, 0, 0, 0] = False
        with pytest.raises(ValueError, match="dense"):
            supervised_loss("densedepth")(target, target, mask)

    def test_unknown_name(self) -> None:
        with pytest.raises(ValueError, match=r"unknown loss 'huber'; choose from berhu, "):
            supervised_loss("huber")
