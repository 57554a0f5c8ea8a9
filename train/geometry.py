"""Camera geometry for self-supervised depth (training.md 1.5 and 2, kitti.md 5 and 6).

Conventions: pinhole cameras with 4x4 homogeneous matrices, batched as ``(B, 4, 4)``; pixel
``(x, y)`` = (column, row) integer indices (no half-pixel offset); camera frame x right, y down,
z forward. ``cam_T_cam`` from the target camera to a source camera maps points expressed in the
target camera into the source camera. Depth is in "training units" (metres up to a scale for
mono, units of a 0.1 baseline for stereo). Functions keep the input dtype; run them in float32 or
float64 (outside autocast) because bf16 matrix products are too coarse for projection.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from pipelines.loader import stereo_transform as shift_transform
from pipelines.store.constants import KITTI_NORMALISED_INTRINSICS

PROJECTION_EPS = 1e-7
AXISANGLE_EPS = 1e-7


def kitti_intrinsics(
    dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> Tensor:
    """:data:`KITTI_NORMALISED_INTRINSICS` as a ``(4, 4)`` tensor (normalised, not pixels)."""
    return torch.tensor(KITTI_NORMALISED_INTRINSICS, dtype=dtype, device=device)


def scale_intrinsics(K_norm: Tensor, height: int, width: int) -> Tensor:
    """Pixel intrinsics of an image of ``height x width`` from normalised ones.

    Args:
        K_norm: ``(..., 4, 4)`` normalised intrinsics (row 0 divided by width, row 1 by height).
        height, width: image size in pixels; for scale s of an H x W input monodepth2 uses
            ``H // 2**s`` and ``W // 2**s``.

    Returns:
        ``(..., 4, 4)`` with row 0 multiplied by ``width`` and row 1 by ``height``.
    """
    factors = K_norm.new_tensor([width, height, 1.0, 1.0]).unsqueeze(-1)
    return K_norm * factors


def normalise_intrinsics(K: Tensor, height: int, width: int) -> Tensor:
    """Normalised 4x4 intrinsics from pixel intrinsics of a ``height x width`` image.

    Args:
        K: ``(..., 3, 3)`` or ``(..., 4, 4)`` pixel intrinsics (e.g. the store's ``intrinsics``).

    Returns:
        ``(..., 4, 4)`` with row 0 divided by ``width`` and row 1 by ``height``; the inverse of
        :func:`scale_intrinsics` (resizing is a plain rescale, as in monodepth2).
    """
    if K.shape[-2:] == (3, 3):
        K4 = torch.zeros(*K.shape[:-2], 4, 4, dtype=K.dtype, device=K.device)
        K4[..., :3, :3] = K
        K4[..., 3, 3] = 1.0
        K = K4
    factors = K.new_tensor([1.0 / width, 1.0 / height, 1.0, 1.0]).unsqueeze(-1)
    return K * factors


def invert_intrinsics(K: Tensor) -> Tensor:
    """``(..., 4, 4)`` Moore-Penrose pseudo-inverse of 4x4 intrinsics (what monodepth2 uses)."""
    return torch.linalg.pinv(K)


def disp_to_depth(
    disp: Tensor, min_depth: float = 0.1, max_depth: float = 100.0
) -> tuple[Tensor, Tensor]:
    """Map a sigmoid output to a bounded disparity and depth.

    ``scaled = 1 / max_depth + (1 / min_depth - 1 / max_depth) * disp``; ``depth = 1 / scaled``.

    Args:
        disp: any shape, values in [0, 1] (sigmoid output of the depth decoder).

    Returns:
        ``(scaled_disp, depth)``, both shaped like ``disp``; depth in [min_depth, max_depth]
        training units, scaled_disp in [1 / max_depth, 1 / min_depth].
    """
    min_disp = 1.0 / max_depth
    max_disp = 1.0 / min_depth
    scaled = min_disp + (max_disp - min_disp) * disp
    return scaled, 1.0 / scaled


def rot_from_axisangle(axisangle: Tensor) -> Tensor:
    """Rotation matrices from axis-angle vectors (Rodrigues).

    ``angle = ||v||``, ``axis = v / (angle + 1e-7)``,
    ``R = cos(a) I + (1 - cos(a)) k k^T + sin(a) [k]_x``.

    Args:
        axisangle: ``(B, 3)`` or ``(B, 1, 3)``, radians (direction = axis, norm = angle).

    Returns:
        ``(B, 4, 4)`` homogeneous rotation (zero translation, ``[3, 3] = 1``).
    """
    v = axisangle.reshape(axisangle.shape[0], 3)
    angle = torch.linalg.vector_norm(v, dim=1, keepdim=True)  # (B, 1)
    k = v / (angle + AXISANGLE_EPS)
    cos = torch.cos(angle).unsqueeze(-1)  # (B, 1, 1)
    sin = torch.sin(angle).unsqueeze(-1)
    kx, ky, kz = k.unbind(dim=1)
    zero = torch.zeros_like(kx)
    skew = torch.stack([zero, -kz, ky, kz, zero, -kx, -ky, kx, zero], dim=1).view(-1, 3, 3)
    eye = torch.eye(3, dtype=v.dtype, device=v.device)
    R = cos * eye + (1 - cos) * (k.unsqueeze(2) * k.unsqueeze(1)) + sin * skew
    return _embed(R, torch.zeros_like(v))


def translation_matrix(translation: Tensor) -> Tensor:
    """``(B, 3)`` or ``(B, 1, 3)`` translations to ``(B, 4, 4)`` matrices ``[I | t]``."""
    t = translation.reshape(translation.shape[0], 3)
    eye = torch.eye(3, dtype=t.dtype, device=t.device).expand(t.shape[0], 3, 3)
    return _embed(eye, t)


def transformation_from_parameters(
    axisangle: Tensor, translation: Tensor, invert: bool = False
) -> Tensor:
    """4x4 rigid transform from a pose-network prediction.

    Args:
        axisangle: ``(B, 3)`` or ``(B, 1, 3)`` radians.
        translation: ``(B, 3)`` or ``(B, 1, 3)`` training units.
        invert: False gives ``[R | t]``; True gives its exact inverse ``[R^T | -R^T t]``.
            monodepth2 inverts exactly when the source frame precedes the target (id < 0).

    Returns:
        ``(B, 4, 4)`` ``cam_T_cam`` (target camera -> source camera when used as monodepth2 does).
    """
    R = rot_from_axisangle(axisangle)
    t = translation.reshape(translation.shape[0], 3)
    if invert:
        R = R.transpose(1, 2)
        return R @ translation_matrix(-t)
    return translation_matrix(t) @ R


def stereo_transform(
    side_sign: float | Tensor,
    flip_sign: float | Tensor = 1.0,
    baseline: float = 0.1,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """``cam_T_cam`` from the target camera to the other stereo camera (kitti.md section 6).

    Identity with ``T[0, 3] = side_sign * flip_sign * baseline`` (the augmentation's
    :func:`pipelines.loader.stereo_transform`, from the signs).

    Args:
        side_sign: -1 when the target is the left camera (store view 0), +1 for the right (view
            1); a float or a ``(B,)`` tensor.
        flip_sign: -1 when the sample was mirrored left-right, else +1; float or ``(B,)``.
        baseline: nominal baseline in training units (0.1 for monodepth2, 0.015 for FeatDepth).

    Returns:
        ``(4, 4)`` for float signs, ``(B, 4, 4)`` when a sign is a ``(B,)`` tensor.
    """
    shift = torch.as_tensor(side_sign, dtype=torch.float32, device=device) * flip_sign * baseline
    return shift_transform(shift.reshape(-1)).reshape(*shift.shape, 4, 4).to(dtype)


def pixel_grid(height: int, width: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Homogeneous pixel coordinates ``(3, height * width)``: rows x, y, 1, row-major order."""
    y, x = torch.meshgrid(
        torch.arange(height, dtype=dtype, device=device),
        torch.arange(width, dtype=dtype, device=device),
        indexing="ij",
    )
    return torch.stack([x.reshape(-1), y.reshape(-1), torch.ones_like(x).reshape(-1)])


def backproject(depth: Tensor, inv_K: Tensor) -> Tensor:
    """Lift every pixel to a 3D point in its camera.

    ``P = depth * (inv_K[:3, :3] @ (x, y, 1))`` with a row of ones appended.

    Args:
        depth: ``(B, 1, H, W)`` training units.
        inv_K: ``(B, 4, 4)`` inverse pixel intrinsics of the H x W image.

    Returns:
        ``(B, 4, H * W)`` homogeneous camera points, pixels in row-major order.
    """
    b, _, h, w = depth.shape
    pix = pixel_grid(h, w, depth.dtype, depth.device)
    rays = inv_K[:, :3, :3] @ pix  # (B, 3, HW)
    points = depth.reshape(b, 1, h * w) * rays
    return torch.cat([points, torch.ones_like(points[:, :1])], dim=1)


def project(points: Tensor, K: Tensor, T: Tensor, height: int, width: int) -> Tensor:
    """Project camera points through a rigid transform into ``grid_sample`` coordinates.

    ``q = (K @ T)[:3] @ P``; ``u = q_x / (q_z + 1e-7)``, ``v = q_y / (q_z + 1e-7)`` (pixels);
    then ``u_n = 2 (u / (W - 1) - 0.5)``, ``v_n = 2 (v / (H - 1) - 0.5)``, the convention of
    ``F.grid_sample(..., align_corners=True)`` (-1 and +1 are the centres of the corner pixels).

    Args:
        points: ``(B, 4, H * W)`` homogeneous points from :func:`backproject`.
        K: ``(B, 4, 4)`` pixel intrinsics of the camera projected into.
        T: ``(B, 4, 4)`` ``cam_T_cam`` from the points' camera to that camera.
        height, width: the H x W the points came from.

    Returns:
        ``(B, H, W, 2)`` normalised (x, y) sampling coordinates.
    """
    P = (K @ T)[:, :3, :]
    q = P @ points  # (B, 3, HW)
    pix = q[:, :2] / (q[:, 2:3] + PROJECTION_EPS)
    pix = pix.reshape(points.shape[0], 2, height, width).permute(0, 2, 3, 1)
    # (W - 1, H - 1), filled on the device: no host-to-device copy
    size = torch.cat([pix.new_full((1,), width - 1), pix.new_full((1,), height - 1)])
    return (pix / size - 0.5) * 2


def warp(image: Tensor, depth: Tensor, K: Tensor, inv_K: Tensor, T: Tensor) -> Tensor:
    """Synthesise the target view by sampling a source image at the target's reprojection.

    Bilinear ``grid_sample`` with ``padding_mode="border"`` and ``align_corners=True`` (what
    monodepth2 got from PyTorch 0.4.1). Pixels that project outside the source take border values.
    Several sources of one target are warped in one call by stacking them source-major on the
    batch axis (``S * B``): the target's depth is back-projected once and shared.

    Bilinear sampling is continuous, its gradient with respect to the sampling position is not:
    at an integer position it switches from the left to the right image difference (at the
    border clamp, to 0). When another CPU kernel (oneDNN or not, AVX2 or AVX-512) rounds a
    coordinate to the other side of an integer, the loss moves by rounding only, but that
    pixel's depth gradient jumps by the image's second difference there. This was the 0.6 % move
    of the -s / -ms depth gradient norms across machines (issue 19): on the former white-noise
    golden images every pixel's term has a random sign and a jump as large as itself, and a
    1-ulp change of the disparities moved one or two coordinates across an integer and the norm
    by up to 0.56 % (keeping those on the reference side: 4e-6). No tie rule removes it; the
    golden batch (``tests/golden_monodepth2.py``) is smooth now, so that such jumps are small.

    Args:
        image: ``(S * B, C, H, W)`` source images (or feature maps) at the depth's resolution,
            source-major (all B samples of source 0 first); S = 1 for a single source.
        depth: ``(B, 1, H, W)`` target depth, training units.
        K: ``(S * B, 4, 4)`` pixel intrinsics of the sources for H x W.
        inv_K: ``(B, 4, 4)`` inverse pixel intrinsics of the target.
        T: ``(S * B, 4, 4)`` ``cam_T_cam`` from the target camera to each source camera.

    Returns:
        ``(S * B, C, H, W)`` the sources resampled into the target view, dtype of ``image`` (the
        sampling itself runs in the dtype of ``depth``).
    """
    h, w = depth.shape[-2:]
    sources, rem = divmod(image.shape[0], depth.shape[0])
    if rem:
        raise ValueError(f"{image.shape[0]} source images for {depth.shape[0]} depth maps")
    points = backproject(depth, inv_K)
    if sources > 1:
        points = points.repeat(sources, 1, 1)
    grid = project(points, K, T, h, w)
    # Sample in the coordinates' precision: bf16/fp16 grids would be off by up to half a pixel.
    warped = F.grid_sample(
        image.to(grid.dtype), grid, mode="bilinear", padding_mode="border", align_corners=True
    )
    return warped.to(image.dtype)


def _embed(R: Tensor, t: Tensor) -> Tensor:
    """``(B, 3, 3)`` rotation and ``(B, 3)`` translation into ``(B, 4, 4)`` ``[R | t; 0 0 0 1]``."""
    top = torch.cat([R, t.unsqueeze(2)], dim=2)
    bottom = torch.zeros_like(top[:, :1])
    bottom = torch.cat([bottom[:, :, :3], torch.ones_like(bottom[:, :, 3:])], dim=2)
    return torch.cat([top, bottom], dim=1)
