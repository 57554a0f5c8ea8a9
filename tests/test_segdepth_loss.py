"""SegDepth's segmentation loss against its own code (testvectors/segdepth/), U-Net weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from train.losses.segdepth import segmentation_loss, unet_weight_map

pytestmark = pytest.mark.numerics

F32, F64 = torch.float32, torch.float64
RTOL = 1e-5


@pytest.fixture(scope="module")
def segdepth(testvectors: Path) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    inputs = np.load(testvectors / "segdepth" / "inputs.npz")
    expected = np.load(testvectors / "segdepth" / "expected.npz")
    tensors = {k: torch.from_numpy(inputs[k]) for k in inputs.files}
    return tensors, {k: float(expected[k]) for k in expected.files}


def _two_blobs() -> np.ndarray:
    mask = np.zeros((40, 60), dtype=np.uint8)
    mask[15:26, 10:25] = 1
    mask[15:26, 28:43] = 1  # a 3-pixel gap at columns 25..27
    return mask


class TestSegmentationLoss:
    def test_matches_reference(self, segdepth) -> None:
        x, expected = segdepth
        got = segmentation_loss(x["logits"], x["target"])
        assert got.dtype == F32 and got.ndim == 0
        np.testing.assert_allclose(got.item(), expected["loss_f32"], rtol=RTOL)
        got = segmentation_loss(x["logits"][:1], x["target"][:1])
        np.testing.assert_allclose(got.item(), expected["loss_first_image_f32"], rtol=RTOL)

    def test_float64(self, segdepth) -> None:
        x, expected = segdepth
        got = segmentation_loss(x["logits"].double(), x["target"])
        assert got.dtype == F64
        np.testing.assert_allclose(got.item(), expected["loss_f64"], rtol=RTOL)

    def test_weighted_matches_reference(self, segdepth) -> None:
        x, expected = segdepth
        for weight in (x["weight"], x["weight"][:, None]):
            got = segmentation_loss(x["logits"], x["target"], weight)
            np.testing.assert_allclose(got.item(), expected["loss_weighted_f32"], rtol=RTOL)

    def test_target_layouts_agree(self, segdepth) -> None:
        x, _ = segdepth
        a = segmentation_loss(x["logits"], x["target"])
        b = segmentation_loss(x["logits"], x["target"][:, None].long())
        c = segmentation_loss(x["logits"], x["target"].bool())
        assert a.item() == b.item() == c.item()

    def test_unweighted_is_mean_cross_entropy(self) -> None:
        torch.manual_seed(0)
        logits = torch.randn(2, 2, 6, 7, dtype=F64)
        target = torch.randint(0, 2, (2, 6, 7))
        ref = F.cross_entropy(logits, target)  # same pixel count per image: equal means
        assert segmentation_loss(logits, target).item() == pytest.approx(ref.item(), rel=1e-12)

    def test_gradcheck(self) -> None:
        torch.manual_seed(1)
        logits = torch.randn(2, 2, 3, 4, dtype=F64, requires_grad=True)
        target = torch.randint(0, 2, (2, 3, 4))
        weight = torch.rand(2, 3, 4, dtype=F64) + 0.1
        assert torch.autograd.gradcheck(lambda o: segmentation_loss(o, target, weight), (logits,))

    def test_rejects_bad_shapes(self) -> None:
        with pytest.raises(ValueError, match="output"):
            segmentation_loss(torch.rand(1, 3, 4, 4), torch.zeros(1, 4, 4))
        with pytest.raises(ValueError, match="target"):
            segmentation_loss(torch.rand(1, 2, 4, 4), torch.zeros(1, 4, 5))


class TestUnetWeightMap:
    def test_peaks_between_two_blobs(self) -> None:
        mask = _two_blobs()
        weight = unet_weight_map(mask)
        assert weight.dtype == np.float32 and weight.shape == mask.shape
        row, col = np.unravel_index(np.argmax(weight), weight.shape)
        assert 15 <= row < 26 and 25 <= col < 28  # inside the gap
        gap = weight[15:26, 25:28]
        outside = weight.copy()
        outside[15:26, 25:28] = 0
        assert gap.min() > outside.max()

    def test_class_balance_far_from_objects(self) -> None:
        mask = _two_blobs()
        n, n_fg = mask.size, int(mask.sum())
        weight = unet_weight_map(mask)
        np.testing.assert_allclose(weight[0, 59], n / (2 * (n - n_fg)), rtol=1e-6)  # far corner
        np.testing.assert_allclose(weight[20, 15], n / (2 * n_fg), rtol=1e-6)  # inside a blob
        # 15 rows above the gap: d1 + d2 ~ 30 px, the border term is ~1e-7.
        np.testing.assert_allclose(weight[0, 26], n / (2 * (n - n_fg)), rtol=1e-5)

    def test_single_component_has_no_border_term(self) -> None:
        mask = np.zeros((10, 10), dtype=bool)
        mask[3:6, 3:6] = True
        weight = unet_weight_map(mask)
        np.testing.assert_allclose(np.unique(weight), [100 / 182, 100 / 18], rtol=1e-6)

    def test_torch_batch_in_torch_out(self) -> None:
        mask = torch.from_numpy(np.stack([_two_blobs(), np.zeros((40, 60), np.uint8)]))
        weight = unet_weight_map(mask)
        assert isinstance(weight, torch.Tensor) and weight.dtype == F32
        assert weight.shape == mask.shape
        np.testing.assert_array_equal(weight[0].numpy(), unet_weight_map(_two_blobs()))
        assert torch.all(weight[1] == 1)  # one class only: balanced weight 1

    def test_feeds_the_loss(self) -> None:
        mask = torch.from_numpy(_two_blobs())[None]
        logits = torch.randn(1, 2, 40, 60)
        loss = segmentation_loss(logits, mask, unet_weight_map(mask))
        assert torch.isfinite(loss)
