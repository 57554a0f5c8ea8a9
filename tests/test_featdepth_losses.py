"""FeatDepth losses against FeatDepth's own code (testvectors/featdepth/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from train.losses.featdepth import (
    autoencoder_loss,
    check_featdepth_size,
    feature_metric_loss,
    smoothness_loss,
)

pytestmark = pytest.mark.numerics

F32, F64 = torch.float32, torch.float64
DTYPES = [(F32, "f32"), (F64, "f64")]
RTOL = 1e-5


def _load(testvectors: Path, name: str) -> dict[str, np.ndarray]:
    return dict(np.load(testvectors / "featdepth" / f"{name}.npz"))


def _t(array: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    return torch.from_numpy(array).to(dtype)


def _autoencoder_inputs(testvectors: Path, dtype: torch.dtype):
    inputs = _load(testvectors, "autoencoder_inputs")
    image = _t(inputs["image"], dtype)
    recons = [_t(inputs[f"reconstruction_{s}"], dtype) for s in range(4)]
    feats = [_t(inputs[f"feature_{i}"], dtype) for i in range(5)]
    return image, recons, feats


def _assert_close(got: torch.Tensor, expected: np.ndarray) -> None:
    assert got.ndim == 0
    np.testing.assert_allclose(got.item(), float(expected), rtol=RTOL, atol=0)


class TestAutoencoderLoss:
    @pytest.mark.parametrize(("dtype", "suffix"), DTYPES)
    def test_matches_reference(self, testvectors: Path, dtype, suffix: str) -> None:
        expected = _load(testvectors, "autoencoder_expected")
        image, recons, feats = _autoencoder_inputs(testvectors, dtype)
        got = autoencoder_loss(image, recons, feats)
        assert got.dtype == dtype
        _assert_close(got, expected[f"loss_{suffix}"])
        got = autoencoder_loss(image, recons, feats, dis=2e-3, cvt=5e-4)
        _assert_close(got, expected[f"loss_dis2e-3_cvt5e-4_{suffix}"])

    def test_reconstruction_terms_alone(self, testvectors: Path) -> None:
        # Without the feature weights only the chained-target reconstruction terms remain.
        expected = _load(testvectors, "autoencoder_expected")
        image, recons, feats = _autoencoder_inputs(testvectors, F64)
        got = autoencoder_loss(image, recons, feats, dis=0.0, cvt=0.0)
        ref = sum(float(expected[f"term_reconstruct_{s}_f64"]) for s in range(4))
        np.testing.assert_allclose(got.item(), ref, rtol=RTOL)

    def test_gradcheck(self) -> None:
        torch.manual_seed(0)
        image = torch.rand(1, 3, 8, 8, dtype=F64)
        recons = [torch.rand(1, 3, n, n, dtype=F64, requires_grad=True) for n in (8, 4, 2)]
        feats = [torch.rand(1, 2, n, n, dtype=F64, requires_grad=True) for n in (4, 3, 3)]

        def fn(*tensors: torch.Tensor) -> torch.Tensor:
            return autoencoder_loss(image, list(tensors[:3]), list(tensors[3:]), dis=0.1, cvt=0.1)

        assert torch.autograd.gradcheck(fn, (*recons, *feats))

    def test_small_feature_level_is_refused(self) -> None:
        image = torch.rand(1, 3, 64, 64)
        feats = [torch.rand(1, 4, 64 >> (i + 1), 64 >> (i + 1)) for i in range(5)]  # last: 2x2
        with pytest.raises(ValueError, match="feature level 4"):
            autoencoder_loss(image, [image], feats)


class TestCheckFeatdepthSize:
    def test_accepts_96(self) -> None:
        check_featdepth_size(96, 96)
        check_featdepth_size(320, 1024)

    @pytest.mark.parametrize(("h", "w"), [(95, 320), (192, 64)])
    def test_refuses_small(self, h: int, w: int) -> None:
        with pytest.raises(ValueError, match=f"at least 96x96.*got {h}x{w}"):
            check_featdepth_size(h, w)


class TestFeatureMetricLoss:
    @pytest.mark.parametrize(("dtype", "suffix"), DTYPES)
    @pytest.mark.parametrize("n", [3, 2, 1])
    def test_matches_reference(self, testvectors: Path, dtype, suffix: str, n: int) -> None:
        inputs = _load(testvectors, "feature_metric_inputs")
        expected = _load(testvectors, "feature_metric_expected")
        target, sources = _t(inputs["target"], dtype), _t(inputs["sources"], dtype)
        got = feature_metric_loss(target, sources[:n])
        assert got.dtype == dtype
        _assert_close(got, expected[f"loss_{n}src_{suffix}"])
        _assert_close(
            feature_metric_loss(target, list(sources[:n])), expected[f"loss_{n}src_{suffix}"]
        )

    def test_identical_source_gives_the_floor(self) -> None:
        target = torch.rand(2, 4, 5, 6, dtype=F64)
        got = feature_metric_loss(target, [target + 1, target])
        assert got.item() == pytest.approx(1e-3)  # sqrt(0 + 1e-6)

    def test_gradcheck(self) -> None:
        torch.manual_seed(1)
        target = torch.rand(1, 3, 4, 5, dtype=F64, requires_grad=True)
        sources = torch.rand(2, 1, 3, 4, 5, dtype=F64, requires_grad=True)
        assert torch.autograd.gradcheck(feature_metric_loss, (target, sources))

    def test_needs_a_source(self) -> None:
        with pytest.raises(ValueError, match="at least one"):
            feature_metric_loss(torch.rand(1, 2, 3, 3), [])


class TestSmoothnessLoss:
    @pytest.mark.parametrize(("dtype", "suffix"), DTYPES)
    @pytest.mark.parametrize("key", ["0", "1", "2", "3", "odd"])
    def test_matches_reference(self, testvectors: Path, dtype, suffix: str, key: str) -> None:
        inputs = _load(testvectors, "smoothness_inputs")
        expected = _load(testvectors, "smoothness_expected")
        got = smoothness_loss(_t(inputs[f"disp_{key}"], dtype), _t(inputs["image"], dtype))
        assert got.dtype == dtype
        _assert_close(got, expected[f"loss_{key}_{suffix}"])

    def test_constant_disparity_is_smooth(self) -> None:
        disp = torch.full((2, 1, 6, 8), 0.3)
        assert smoothness_loss(disp, torch.rand(2, 3, 12, 16)).item() == 0.0

    def test_gradcheck(self) -> None:
        torch.manual_seed(2)
        disp = torch.rand(1, 1, 5, 6, dtype=F64, requires_grad=True)
        image = torch.rand(1, 3, 10, 12, dtype=F64)
        assert torch.autograd.gradcheck(lambda d: smoothness_loss(d, image), (disp,))
