"""Camera geometry: known values, gradients, and warping with true depth and pose."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from train.geometry import (
    backproject,
    disp_to_depth,
    invert_intrinsics,
    kitti_intrinsics,
    normalise_intrinsics,
    pixel_grid,
    project,
    rot_from_axisangle,
    scale_intrinsics,
    stereo_transform,
    transformation_from_parameters,
    translation_matrix,
    warp,
)

pytestmark = pytest.mark.numerics

F64 = torch.float64


def test_disp_to_depth_endpoints() -> None:
    scaled, depth = disp_to_depth(torch.tensor([0.0, 1.0, 0.5]), 0.1, 100.0)
    assert torch.allclose(scaled[:2], torch.tensor([0.01, 10.0]))
    assert torch.allclose(depth[:2], torch.tensor([100.0, 0.1]))
    assert torch.allclose(scaled * depth, torch.ones(3))


def test_rotation_pi_over_2_about_z() -> None:
    R = rot_from_axisangle(torch.tensor([[[0.0, 0.0, math.pi / 2]]], dtype=F64))
    expected = torch.eye(4, dtype=F64)
    expected[:2, :2] = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=F64)
    assert R.shape == (1, 4, 4)
    assert torch.allclose(R[0], expected, atol=1e-6)


def test_zero_axisangle_is_identity() -> None:
    M = transformation_from_parameters(torch.zeros(3, 1, 3), torch.zeros(3, 1, 3))
    assert torch.equal(M, torch.eye(4).expand(3, 4, 4))


def test_rotation_is_orthonormal() -> None:
    # Orthonormal up to the 1e-7 that the reference adds to the angle before normalising.
    R = rot_from_axisangle(torch.randn(5, 3, dtype=F64))[:, :3, :3]
    eye = torch.eye(3, dtype=F64).expand(5, 3, 3)
    assert torch.allclose(R @ R.transpose(1, 2), eye, atol=1e-6)
    assert torch.allclose(torch.linalg.det(R), torch.ones(5, dtype=F64), atol=1e-6)


def test_translation_matrix() -> None:
    M = translation_matrix(torch.tensor([[1.0, 2.0, 3.0]]))
    assert torch.equal(M[0, :3, 3], torch.tensor([1.0, 2.0, 3.0]))
    assert torch.equal(M[0, :3, :3], torch.eye(3))
    assert torch.equal(M[0, 3], torch.tensor([0.0, 0.0, 0.0, 1.0]))


def test_inverted_transform_is_exact_inverse() -> None:
    torch.manual_seed(0)
    v, t = torch.randn(4, 1, 3, dtype=F64), torch.randn(4, 1, 3, dtype=F64)
    M = transformation_from_parameters(v, t)
    M_inv = transformation_from_parameters(v, t, invert=True)
    assert torch.allclose(M @ M_inv, torch.eye(4, dtype=F64).expand(4, 4, 4), atol=1e-6)
    assert torch.allclose(M_inv, torch.linalg.inv(M), atol=1e-6)
    assert torch.allclose(M[:, :3, 3], t[:, 0])  # [R | t]


def test_rot_from_axisangle_gradcheck() -> None:
    v = torch.tensor([[0.3, -0.2, 0.5], [1.0, 0.1, -0.4]], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(rot_from_axisangle, (v,))


def test_kitti_intrinsics_scaled_to_640x192() -> None:
    K = scale_intrinsics(kitti_intrinsics(), 192, 640)
    assert torch.allclose(K[0, 0], torch.tensor(371.2))
    assert torch.allclose(K[1, 1], torch.tensor(368.64))
    assert (K[0, 2].item(), K[1, 2].item()) == (320.0, 96.0)
    assert torch.allclose(invert_intrinsics(K) @ K, torch.eye(4), atol=1e-5)


def test_normalise_intrinsics_roundtrip() -> None:
    K3 = torch.tensor([[[518.9, 0.0, 325.6], [0.0, 519.5, 253.7], [0.0, 0.0, 1.0]]])
    K_norm = normalise_intrinsics(K3, 480, 640)
    assert K_norm.shape == (1, 4, 4) and K_norm[0, 3, 3] == 1
    assert torch.allclose(scale_intrinsics(K_norm, 480, 640)[..., :3, :3], K3)
    half = scale_intrinsics(K_norm, 240, 320)
    assert torch.allclose(half[0, :2, :3], K3[0, :2] / 2)


def test_stereo_transform_signs() -> None:
    assert stereo_transform(-1.0)[0, 3].item() == pytest.approx(-0.1)
    assert stereo_transform(-1.0, -1.0)[0, 3].item() == pytest.approx(0.1)
    T = stereo_transform(torch.tensor([-1.0, 1.0]), torch.tensor([1.0, 1.0]), baseline=0.015)
    assert T.shape == (2, 4, 4)
    assert torch.allclose(T[:, 0, 3], torch.tensor([-0.015, 0.015]))
    assert torch.equal(T[:, :3, :3], torch.eye(3).expand(2, 3, 3))


def _camera(h: int, w: int, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, ...]:
    K = scale_intrinsics(kitti_intrinsics(dtype), h, w).unsqueeze(0)
    return K, invert_intrinsics(K)


def test_backproject_project_identity_roundtrip() -> None:
    h, w = 6, 8
    K, inv_K = _camera(h, w, F64)
    depth = torch.rand(1, 1, h, w, dtype=F64) + 1.0
    points = backproject(depth, inv_K)
    assert points.shape == (1, 4, h * w)
    assert torch.allclose(points[:, 2], depth.reshape(1, -1))
    grid = project(points, K, torch.eye(4, dtype=F64).unsqueeze(0), h, w)
    assert grid.shape == (1, h, w, 2)
    # Identity transform lands every pixel on itself: corners at -1 and +1.
    pix = pixel_grid(h, w, F64, torch.device("cpu"))[:2].T.reshape(h, w, 2)
    expected = (pix / torch.tensor([w - 1, h - 1], dtype=F64) - 0.5) * 2
    assert torch.allclose(grid[0], expected, atol=1e-6)


def test_backproject_project_gradcheck() -> None:
    h, w = 3, 4
    K, inv_K = _camera(h, w, F64)
    depth = (torch.rand(1, 1, h, w, dtype=F64) + 1).requires_grad_()
    T = transformation_from_parameters(
        torch.tensor([[0.01, 0.02, -0.01]], dtype=F64), torch.tensor([[0.1, 0.0, 0.05]], dtype=F64)
    ).requires_grad_()

    def fn(d: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
        return project(backproject(d, inv_K), K, T, h, w)

    assert torch.autograd.gradcheck(fn, (depth, T))


def _texture(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Smooth RGB texture on the plane, coordinates in metres: (3, ...) in [0, 1]."""
    return torch.stack(
        [
            0.5 + 0.4 * torch.sin(3.0 * x) * torch.cos(2.0 * y),
            0.5 + 0.4 * torch.cos(2.5 * x + 1.0),
            0.5 + 0.4 * torch.sin(4.0 * y - 0.5 * x),
        ]
    )


def _render_plane(K: torch.Tensor, T: torch.Tensor, h: int, w: int, z: float) -> torch.Tensor:
    """Image seen by a camera at ``T`` (target -> camera) of the textured plane z = ``z`` (target
    frame), by ray casting each pixel: returns ``(1, 3, h, w)``."""
    R, t = T[:3, :3], T[:3, 3]
    rays = torch.linalg.inv(K[:3, :3]) @ pixel_grid(h, w, K.dtype, K.device)  # camera frame
    rays_t = R.T @ rays  # directions in the target frame
    origin = -R.T @ t  # camera centre in the target frame
    lam = (z - origin[2]) / rays_t[2]
    points = origin[:, None] + lam * rays_t
    return _texture(points[0], points[1]).reshape(1, 3, h, w)


def test_warp_with_true_depth_and_pose_reproduces_target() -> None:
    h, w, z = 64, 96, 4.0
    K, inv_K = _camera(h, w, F64)
    T = transformation_from_parameters(
        torch.tensor([[0.0, 0.03, 0.01]], dtype=F64), torch.tensor([[0.2, -0.05, 0.3]], dtype=F64)
    )
    target = _render_plane(K[0], torch.eye(4, dtype=F64), h, w, z)
    source = _render_plane(K[0], T[0], h, w, z)
    depth = torch.full((1, 1, h, w), z, dtype=F64)
    warped = warp(source, depth, K, inv_K, T)
    grid = project(backproject(depth, inv_K), K, T, h, w)
    valid = (grid.abs() < 1).all(dim=-1)[:, None].expand_as(target)
    assert valid.float().mean() > 0.6
    error = (warped - target).abs()[valid]
    assert error.mean() < 2e-3 and error.max() < 2e-2
    # A wrong depth does not reproduce the target.
    wrong = warp(source, depth * 2, K, inv_K, T)
    assert (wrong - target).abs()[valid].mean() > 10 * error.mean()


def test_warp_integer_shift_uses_corner_aligned_convention() -> None:
    h, w, z, shift = 16, 24, 2.0, 3
    K, inv_K = _camera(h, w)
    tx = shift * z / K[0, 0, 0].item()  # baseline giving a disparity of exactly 3 pixels
    T = translation_matrix(torch.tensor([[tx, 0.0, 0.0]]))
    target = torch.rand(1, 3, h, w)
    source = torch.zeros_like(target)
    source[..., shift:] = target[..., :-shift]  # a point at target column u is at u + 3
    warped = warp(source, torch.full((1, 1, h, w), z), K, inv_K, T)
    assert torch.allclose(warped[..., : w - shift], target[..., : w - shift], atol=1e-4)
    # Half-pixel (align_corners=False) sampling would blur the copy.
    blurred = F.grid_sample(
        source,
        project(backproject(torch.full((1, 1, h, w), z), inv_K), K, T, h, w),
        padding_mode="border",
        align_corners=False,
    )
    assert not torch.allclose(blurred[..., : w - shift], target[..., : w - shift], atol=1e-2)
