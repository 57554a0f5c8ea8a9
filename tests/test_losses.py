"""Monodepth2 losses: known values, auto-masking, gradients and the multi-scale loss."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pipelines.loader.augment import AugmentConfig, image_pyramid
from train.geometry import (
    invert_intrinsics,
    kitti_intrinsics,
    scale_intrinsics,
    translation_matrix,
)
from train.losses import (
    Monodepth2LossConfig,
    Views,
    min_reprojection_loss,
    monodepth2_loss,
    photometric_error,
    smoothness_loss,
    ssim_loss,
)
from train.losses.photometric import tie_breaking_noise

pytestmark = pytest.mark.numerics

F64 = torch.float64


def test_ssim_of_identical_images_is_zero() -> None:
    x = torch.rand(2, 3, 10, 12)
    assert torch.allclose(ssim_loss(x, x), torch.zeros_like(x), atol=1e-6)


def test_ssim_known_value_constant_images() -> None:
    # Constant images: sigma = 0, SSIM = (2ab + C1) / (a^2 + b^2 + C1).
    a, b = 0.2, 0.7
    x, y = torch.full((1, 1, 5, 5), a, dtype=F64), torch.full((1, 1, 5, 5), b, dtype=F64)
    c1 = 0.01**2
    expected = (1 - (2 * a * b + c1) / (a * a + b * b + c1)) / 2
    assert torch.allclose(ssim_loss(x, y), torch.full_like(x, expected))
    assert ssim_loss(x, y).shape == x.shape


def test_ssim_gradcheck() -> None:
    x = torch.rand(1, 2, 4, 5, dtype=F64, requires_grad=True)
    y = torch.rand(1, 2, 4, 5, dtype=F64)
    assert torch.autograd.gradcheck(lambda x: ssim_loss(x, y), (x,))


def test_photometric_error_identical_is_zero_and_l1_mix() -> None:
    x = torch.rand(2, 3, 8, 8)
    err = photometric_error(x, x)
    assert err.shape == (2, 1, 8, 8)
    assert torch.allclose(err, torch.zeros_like(err), atol=1e-6)
    y = x + 0.1
    l1_only = photometric_error(x, y, use_ssim=False)
    assert torch.allclose(l1_only, torch.full_like(l1_only, 0.1))
    mixed = photometric_error(x, y)
    expected = 0.85 * ssim_loss(x, y).mean(1, keepdim=True) + 0.15 * 0.1
    assert torch.allclose(mixed, expected)


def test_min_reprojection_picks_smaller_error() -> None:
    reproj = torch.stack([torch.full((3, 4), 0.2), torch.full((3, 4), 0.5)]).unsqueeze(0)
    reproj[0, 1, 0, 0] = 0.1
    out = min_reprojection_loss(reproj)
    assert out.automask is None
    assert out.loss.shape == (1, 1, 3, 4)
    assert out.loss[0, 0, 0, 0] == 0.1 and out.loss[0, 0, 1, 1] == 0.2
    assert torch.allclose(
        min_reprojection_loss(reproj, average=True).loss[0, 0, 1, 1], torch.tensor(0.35)
    )


def test_automask_masks_identity_winners() -> None:
    reproj = torch.full((1, 2, 3, 4), 0.3)
    identity = torch.full((1, 2, 3, 4), 0.5)
    identity[..., 0, :] = 0.0  # a static row: the unwarped source already matches the target
    out = min_reprojection_loss(reproj, identity, generator=torch.Generator().manual_seed(0))
    assert out.automask.shape == (1, 1, 3, 4)
    assert not out.automask[0, 0, 0].any() and out.automask[0, 0, 1:].all()
    assert out.loss[0, 0, 0].abs().max() < 1e-4  # identity value plus ~1e-5 noise
    assert torch.allclose(out.loss[0, 0, 1:], torch.tensor(0.3))


def test_exact_ties_go_to_the_identity_then_the_first_source() -> None:
    reproj = torch.rand(2, 2, 5, 6)
    out = min_reprojection_loss(reproj, reproj.clone(), noise_std=0.0)
    assert not out.automask.any()
    assert torch.equal(out.loss, reproj.min(dim=1, keepdim=True).values)
    same = torch.full((1, 2, 2, 2), 0.25, requires_grad=True)
    min_reprojection_loss(same).loss.sum().backward()
    assert same.grad[0, 0].eq(1).all() and same.grad[0, 1].eq(0).all()  # the first source


def test_tie_breaking_noise_is_the_same_under_every_cpu_capability() -> None:
    """float32 ``torch.randn`` differs in the last bit between ATen's AVX2 and default kernels;
    the noise is drawn in float64 and rounded, which every capability computes alike."""
    here = tie_breaking_noise(torch.empty(2, 2, 64, 96), torch.Generator().manual_seed(8))
    code = (
        "import sys, torch; from train.losses.photometric import tie_breaking_noise; "
        "x = tie_breaking_noise(torch.empty(2, 2, 64, 96), torch.Generator().manual_seed(8)); "
        "sys.stdout.write(x.numpy().tobytes().hex())"
    )
    env = os.environ | {"ATEN_CPU_CAPABILITY": "default"}
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert bytes.fromhex(out.stdout) == here.numpy().tobytes()
    assert here.dtype == torch.float32 and abs(here.std().item() - 1) < 0.05


def test_smoothness_zero_for_constant_disparity_and_edge_aware() -> None:
    image = torch.rand(1, 3, 8, 8)
    assert smoothness_loss(torch.full((1, 1, 8, 8), 0.3), image) == 0
    disp = torch.zeros(1, 1, 8, 8)
    disp[..., 4:] = 1.0  # a disparity step between columns 3 and 4
    flat, edge = torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8)
    edge[..., 4:] = 1.0  # an image edge at the same place
    assert smoothness_loss(disp, edge) < 0.5 * smoothness_loss(disp, flat)
    # Mean-normalised: scaling the disparity does not change the loss.
    assert torch.allclose(smoothness_loss(disp * 5, flat), smoothness_loss(disp, flat))


def test_smoothness_gradcheck() -> None:
    disp = (torch.rand(1, 1, 4, 5, dtype=F64) + 0.1).requires_grad_()
    image = torch.rand(1, 3, 4, 5, dtype=F64)
    assert torch.autograd.gradcheck(lambda d: smoothness_loss(d, image), (disp,))


def test_image_pyramid_sizes() -> None:
    levels = image_pyramid(torch.rand(1, 3, 64, 96), AugmentConfig(height=64, width=96, scales=4))
    assert [tuple(x.shape[-2:]) for x in levels] == [(64, 96), (32, 48), (16, 24), (8, 12)]


def _shifted_views(h: int, w: int, depth: float, shift: int) -> tuple[Views, float]:
    """Target/source pair related by a sideways camera move giving ``shift`` pixels disparity."""
    K = scale_intrinsics(kitti_intrinsics(), h, w).unsqueeze(0)
    tx = shift * depth / K[0, 0, 0].item()
    g = torch.Generator().manual_seed(1)
    target = torch.nn.functional.avg_pool2d(torch.rand(1, 3, h + 2, w + 2, generator=g), 3, 1)
    source = torch.zeros_like(target)
    source[..., shift:] = target[..., :-shift]
    source[..., :shift] = target[..., :1]
    T = translation_matrix(torch.tensor([[tx, 0.0, 0.0]]))
    return Views(target, [source], [T], K, invert_intrinsics(K)), depth


def _disps_for_depth(depth: float, h: int, w: int, config: Monodepth2LossConfig) -> list:
    min_disp, max_disp = 1 / config.max_depth, 1 / config.min_depth
    sig = (1 / depth - min_disp) / (max_disp - min_disp)
    return [torch.full((1, 1, h // 2**s, w // 2**s), sig) for s in range(4)]


def test_monodepth2_loss_lowest_at_true_depth() -> None:
    h, w = 32, 64
    config = Monodepth2LossConfig()
    views, true_depth = _shifted_views(h, w, depth=2.0, shift=3)
    gen = torch.Generator().manual_seed(0)
    right = monodepth2_loss(_disps_for_depth(true_depth, h, w, config), views, config, gen)
    wrong = monodepth2_loss(_disps_for_depth(4 * true_depth, h, w, config), views, config, gen)
    assert right.total < 0.2 * wrong.total
    assert len(right.per_scale) == 4
    assert right.depth.shape == (1, 1, h, w)
    assert torch.allclose(right.depth, torch.full_like(right.depth, true_depth), rtol=1e-4)
    assert right.automask.shape == (1, 1, h, w) and right.automask.float().mean() > 0.8


def test_monodepth2_loss_gradients_and_smoothness_weighting() -> None:
    h, w = 32, 64
    views, _ = _shifted_views(h, w, depth=2.0, shift=2)
    disps = [torch.rand(1, 1, h // 2**s, w // 2**s, requires_grad=True) for s in range(4)]
    out = monodepth2_loss(disps, views, Monodepth2LossConfig(automask=False))
    assert out.automask is None
    out.total.backward()
    assert all(d.grad is not None and d.grad.abs().sum() > 0 for d in disps)
    assert torch.allclose(out.total, torch.stack(out.per_scale).mean())
    # With only smoothness switched on, scale s is weighted by 1e-3 / 2**s.
    no_photo = Monodepth2LossConfig(automask=False, disparity_smoothness=1.0)
    views_static = Views(views.target, [views.target], [torch.eye(4)[None]], views.K, views.inv_K)
    same = monodepth2_loss(disps, views_static, no_photo)
    pyramid = image_pyramid(views.target, AugmentConfig(height=h, width=w, scales=4))
    for s, loss_s in enumerate(same.per_scale):
        smooth = smoothness_loss(disps[s], pyramid[s]) / 2**s
        assert abs(loss_s.item() - smooth.item()) < 1e-5  # photometric part ~0: identity warp


def test_monodepth2_loss_two_sources_min() -> None:
    h, w = 32, 64
    views, depth = _shifted_views(h, w, depth=2.0, shift=3)
    noise = torch.rand_like(views.target)
    two = Views(views.target, [noise, views.sources[0]], [views.poses[0]] * 2, views.K, views.inv_K)
    config = Monodepth2LossConfig(automask=False)
    disps = _disps_for_depth(depth, h, w, config)
    one = monodepth2_loss(disps, views, config)
    both = monodepth2_loss(disps, two, config)
    assert torch.allclose(both.total, one.total, atol=1e-3)  # the good source wins everywhere


def test_monodepth2_loss_masks_source_identical_to_target() -> None:
    # A source equal to the target (camera standing still) while the pose says it moved: the
    # identity candidate wins almost everywhere, so those pixels do not train the depth.
    h, w = 32, 64
    views, depth = _shifted_views(h, w, depth=2.0, shift=3)
    static = Views(views.target, [views.target.clone()], views.poses, views.K, views.inv_K)
    config = Monodepth2LossConfig()
    out = monodepth2_loss(_disps_for_depth(depth, h, w, config), static, config)
    assert out.automask.float().mean() < 0.05
    assert out.per_scale[0] < 1e-3  # only noise and smoothness remain
