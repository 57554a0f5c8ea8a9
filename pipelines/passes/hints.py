"""Depth Hints: fused SGM depth hints of a rectified stereo pair (training.md section 7).

Reproduces ``precompute_depth_hints.py`` of nianticlabs/depth-hints: twelve OpenCV
``StereoSGBM`` matchers give twelve candidate depths per view; per pixel the hint is the
candidate whose warp of the other view best reconstructs the view (0.85 SSIM + 0.15 L1, the
Monodepth2 photometric error). Depth is in the training units of the stereo baseline
(``fx * baseline / disparity``, 0.1 by default), 0 = no hint.

The selection is vectorised over the candidates with torch (CPU by default); the 2 x 12 SGBM
calls run in a thread pool of ``cv2.getNumThreads()`` workers (OpenCV releases the GIL), so
``cv2.setNumThreads(1)`` makes the pass serial.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

HINT_HEIGHT = 320
HINT_WIDTH = 1024
BLOCK_SIZES = (1, 2, 3)
NUM_DISPARITIES = (64, 96, 128, 160)
#: Normalised intrinsics of the reference (``fx = 0.58 W``, ``fy = 1.92 H``, centre W/2, H/2).
_K_NORMALISED = ((0.58, 0.0, 0.5), (0.0, 1.92, 0.5))
_REFERENCE_BASELINE = 0.1
_SSIM_C1 = 0.01**2
_SSIM_C2 = 0.03**2
_SSIM_WEIGHT = 0.85
_EPS = 1e-7
_CANDIDATES_PER_CHUNK = 4


def hint_resolution_image(
    image: np.ndarray | Image.Image, height: int = HINT_HEIGHT, width: int = HINT_WIDTH
) -> np.ndarray:
    """Resize an RGB image to the hint resolution with PIL LANCZOS, as the reference does.

    Args:
        image: uint8 ``(H, W, 3)`` RGB array or a PIL image (converted to RGB).
        height, width: target size in pixels (320 x 1024 by default).

    Returns:
        uint8 ``(height, width, 3)`` RGB array.
    """
    pil = Image.fromarray(image) if isinstance(image, np.ndarray) else image
    pil = pil.convert("RGB")
    if pil.size != (width, height):
        pil = pil.resize((width, height), Image.Resampling.LANCZOS)
    return np.array(pil, dtype=np.uint8)  # a writable copy (torch.from_numpy wants one)


def stereo_matchers() -> list[cv2.StereoSGBM]:
    """The reference's 12 SGBM matchers: block size 1, 2, 3 x 64, 96, 128, 160 disparities."""
    return [
        cv2.StereoSGBM_create(
            minDisparity=0,
            numDisparities=num_disparities,
            blockSize=block_size,
            P1=3 * 3 * 4,
            P2=3 * 3 * 32,
            preFilterCap=63,
            uniquenessRatio=10,
            speckleWindowSize=100,
            speckleRange=16,
        )
        for block_size in BLOCK_SIZES
        for num_disparities in NUM_DISPARITIES
    ]


def sgbm_disparities(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Disparities of the 12 matchers for both views.

    The right view's maps are computed on both images mirrored, then mirrored back.

    Args:
        left, right: uint8 ``(H, W, 3)`` RGB, rectified.

    Returns:
        ``(left, right)``, each float32 ``(12, H, W)`` disparity in pixels (SGBM output / 16;
        values <= 0 mean no match), in :func:`stereo_matchers` order.
    """
    left = np.ascontiguousarray(left)
    right = np.ascontiguousarray(right)
    left_mirrored = np.ascontiguousarray(left[:, ::-1])
    right_mirrored = np.ascontiguousarray(right[:, ::-1])
    matchers = stereo_matchers()
    jobs = [(m, left, right, False) for m in matchers]
    jobs += [(m, right_mirrored, left_mirrored, True) for m in matchers]

    def run(job: tuple[cv2.StereoSGBM, np.ndarray, np.ndarray, bool]) -> np.ndarray:
        matcher, a, b, mirrored = job
        disp = matcher.compute(a, b)
        if mirrored:
            disp = disp[:, ::-1]
        return disp.astype(np.float32) / 16

    workers = max(1, min(cv2.getNumThreads(), len(jobs)))
    if workers == 1:
        maps = [run(job) for job in jobs]
    else:
        with ThreadPoolExecutor(workers) as pool:
            maps = list(pool.map(run, jobs))
    n = len(matchers)
    return np.stack(maps[:n]), np.stack(maps[n:])


def candidate_depths(disp: np.ndarray, fx: float, baseline: float) -> np.ndarray:
    """Depth of SGBM disparities, as the reference computes it (float32 throughout).

    Args:
        disp: float32 disparities in pixels, any shape; <= 0 = no match.
        fx: focal length in pixels.
        baseline: stereo baseline in output depth units.

    Returns:
        float32, the shape of ``disp``: ``fx * baseline / (disp + 1e-7)`` where ``disp > 0``,
        else 0.
    """
    depth = np.float32(fx * baseline) / (disp + np.float32(_EPS))
    return np.where(disp > 0, depth, np.float32(0)).astype(np.float32)


def _intrinsics(height: int, width: int) -> tuple[Tensor, Tensor]:
    """The reference's 4x4 ``K`` scaled to the image size and its pseudo-inverse (float32)."""
    k = np.eye(4, dtype=np.float32)
    k[:2, :3] = np.asarray(_K_NORMALISED, dtype=np.float32)
    k[0] *= width
    k[1] *= height
    return torch.from_numpy(k), torch.from_numpy(np.linalg.pinv(k))


def _warp(source: Tensor, depth: Tensor, tx: float) -> Tensor:
    """Warp ``source`` into the view whose candidate depths are ``depth``.

    Backprojection with the pixel grid (x, y, 1), the pose a translation of ``tx`` along x,
    projection with eps 1e-7, normalisation ``(u / (W - 1) - 0.5) * 2`` and bilinear
    ``grid_sample`` with border padding and ``align_corners=True`` (monodepth2's warp).

    Args:
        source: ``(1, 3, H, W)`` float image.
        depth: ``(N, H, W)`` candidate depths (0 = none: such a pixel samples a corner).
        tx: x translation in depth units.

    Returns:
        ``(N, 3, H, W)`` warped images.
    """
    n, h, w = depth.shape
    k, inv_k = (m.to(source.device) for m in _intrinsics(h, w))
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float32, device=source.device),
        torch.arange(w, dtype=torch.float32, device=source.device),
        indexing="ij",
    )
    pix = torch.stack([xs.reshape(-1), ys.reshape(-1), torch.ones_like(xs).reshape(-1)])
    rays = inv_k[:3, :3] @ pix  # (3, HW)
    cam = depth.reshape(n, 1, h * w) * rays
    cam = torch.cat([cam, torch.ones_like(cam[:, :1])], dim=1)  # (N, 4, HW)
    pose = torch.eye(4, device=source.device)
    pose[0, 3] = tx
    proj = (k @ pose)[:3]
    q = proj @ cam  # (N, 3, HW)
    uv = q[:, :2] / (q[:, 2:3] + _EPS)
    uv = uv.reshape(n, 2, h, w).permute(0, 2, 3, 1)
    scale = torch.tensor([w - 1, h - 1], dtype=uv.dtype, device=uv.device)
    grid = (uv / scale - 0.5) * 2
    return F.grid_sample(
        source.expand(n, -1, -1, -1),
        grid,
        mode="bilinear",
        padding_mode="border",
        align_corners=True,
    )


def _pool3(x: Tensor) -> Tensor:
    return F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), 3, stride=1)


def _photometric_errors(warped: Tensor, target: Tensor) -> Tensor:
    """``0.85 * mean_c clamp((1 - SSIM) / 2, 0, 1) + 0.15 * mean_c |target - warped|``.

    SSIM on 3x3 average pools after reflection padding, C1 = 0.01², C2 = 0.03²; the target's
    own statistics are pooled once for all candidates.

    Args:
        warped: ``(N, 3, H, W)`` candidate reconstructions.
        target: ``(1, 3, H, W)`` the view itself.

    Returns:
        ``(N, H, W)`` errors.
    """
    mu_y = _pool3(target)
    sigma_y = _pool3(target * target) - mu_y * mu_y
    mu_x = _pool3(warped)
    sigma_x = _pool3(warped * warped) - mu_x * mu_x
    sigma_xy = _pool3(warped * target) - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + _SSIM_C1) * (2 * sigma_xy + _SSIM_C2)
    denominator = (mu_x * mu_x + mu_y * mu_y + _SSIM_C1) * (sigma_x + sigma_y + _SSIM_C2)
    ssim = torch.clamp((1 - numerator / denominator) / 2, 0, 1).mean(dim=1)
    l1 = (target - warped).abs().mean(dim=1)
    return _SSIM_WEIGHT * ssim + (1 - _SSIM_WEIGHT) * l1


def _to_tensor(image: np.ndarray, device: torch.device) -> Tensor:
    """uint8 ``(H, W, 3)`` -> float32 ``(1, 3, H, W)`` in [0, 1] (x / 255, as ToTensor)."""
    t = torch.from_numpy(np.ascontiguousarray(image)).to(device)
    return t.permute(2, 0, 1)[None].float().div(255)


def select_hints(
    candidates: np.ndarray, target: Tensor, source: Tensor, tx: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, the first candidate with the lowest photometric error of its warp.

    Args:
        candidates: float32 ``(N, H, W)`` candidate depths in the reference units
            (``0.58 W * 0.1 / disparity``), 0 = none (still a candidate).
        target: ``(1, 3, H, W)`` float image of the view.
        source: ``(1, 3, H, W)`` float image of the other view.
        tx: x translation from the view to the other one (-0.1 for left, +0.1 for right).

    Returns:
        ``(index, errors)``: int64 ``(H, W)`` winning candidate and float32 ``(N, H, W)`` errors.
    """
    depth = torch.from_numpy(candidates).to(target.device)
    # A few candidates at a time: the same numbers, a fraction of the memory traffic.
    errors = torch.cat(
        [
            _photometric_errors(_warp(source, chunk, tx), target)
            for chunk in depth.split(_CANDIDATES_PER_CHUNK)
        ]
    )
    index = torch.argmin(errors, dim=0)
    return index.cpu().numpy(), errors.cpu().numpy()


def _first_distinct(maps: np.ndarray) -> np.ndarray:
    """Indices of the maps of ``(N, H, W)`` that equal no earlier map, in order."""
    keep: list[int] = []
    for i, m in enumerate(maps):
        if not any(np.array_equal(m, maps[k]) for k in keep):
            keep.append(i)
    return np.asarray(keep)


def fused_sgm_hints(
    left: np.ndarray,
    right: np.ndarray,
    fx: float | None = None,
    baseline: float = 0.1,
    *,
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Fused SGM depth hints of a rectified pair (Depth Hints' ``precompute_depth_hints.py``).

    The candidates are chosen with the reference's camera (``fx = 0.58 W``, baseline 0.1, the
    left view warping the right one with x = -0.1, the right view the left one with +0.1); since
    the warp of ``fx * b / d`` shifts by ``d`` pixels whatever fx and b, the choice does not
    depend on them, and the result is the chosen disparity turned into ``fx * baseline / d``.

    Args:
        left, right: uint8 ``(H, W, 3)`` RGB at the hint resolution (see
            :func:`hint_resolution_image`; 320 x 1024 in the reference).
        fx: focal length in pixels of these images; ``None`` = ``0.58 * W`` (KITTI's mean).
        baseline: stereo baseline in output units (0.1 = Monodepth2's training units; KITTI's
            0.54 m gives metres).
        device: torch device for the selection.

    Returns:
        ``(left_hint, right_hint)``: float32 ``(H, W)`` depth, ``fx * baseline / disparity``;
        0 = no hint (no matcher found a disparity, or a disparity-less candidate won).
    """
    if left.shape != right.shape or left.ndim != 3 or left.shape[2] != 3:
        raise ValueError(
            f"need two (H, W, 3) images of one size, got {left.shape} and {right.shape}"
        )
    if left.dtype != np.uint8 or right.dtype != np.uint8:
        raise ValueError(f"need uint8 images, got {left.dtype} and {right.dtype}")
    h, w = left.shape[:2]
    ref_fx = _K_NORMALISED[0][0] * w
    disp_left, disp_right = sgbm_disparities(left, right)
    dev = torch.device(device)
    tl, tr = _to_tensor(left, dev), _to_tensor(right, dev)
    hints = []
    for disp, target, source, tx in (
        (disp_left, tl, tr, -_REFERENCE_BASELINE),
        (disp_right, tr, tl, _REFERENCE_BASELINE),
    ):
        candidates = candidate_depths(disp, ref_fx, _REFERENCE_BASELINE)
        # A candidate equal to an earlier one ties with it everywhere and never wins the
        # first-lowest choice: drop it (OpenCV's SGBM halves the block size, so 2 and 3 agree).
        keep = _first_distinct(candidates)
        index, _ = select_hints(candidates[keep], target, source, tx)
        index = keep[index]
        if fx is None and baseline == _REFERENCE_BASELINE:
            chosen = candidates
        else:
            chosen = candidate_depths(disp, ref_fx if fx is None else fx, baseline)
        hints.append(np.take_along_axis(chosen, index[None], axis=0)[0])
    return hints[0], hints[1]
