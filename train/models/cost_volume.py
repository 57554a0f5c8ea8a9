"""ManyDepth's plane-sweep cost volume (modern_methods.md 2.2): depth bins, feature matching
against lookup frames, the missing-bin rule, the confidence mask and the lowest-cost disparity.

Everything here runs without gradients in float32 (the reference computes it under
``torch.no_grad``) and is vectorised over the batch, the lookup frames and the bins, so the
two-frame predictor exports with a dynamic batch. Bins are swept in chunks of
:data:`BIN_CHUNK` to bound memory (the reference loops over batch items instead).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from train.geometry import PROJECTION_EPS, pixel_grid

BINNINGS = ("linear", "inverse")
BORDER = 2  # pixels ignored at every border of the current and the lookup feature maps
BIN_CHUNK = 16  # bins sampled per grid_sample call
EMPTY_COST = 100.0  # what a pixel's all-zero costs become before the argmin


@dataclass
class CostVolume:
    """Result of :func:`match_features`.

    Attributes:
        cost: float32 ``(B, D, h, w)`` mean absolute feature difference per bin, averaged over
            the lookup frames that saw it; missing entries hold the pixel's largest cost.
        missing: bool ``(B, D, h, w)``, True where no lookup frame gave a cost (outside a lookup
            image, near a border, a skipped frame, or an exact zero difference).
    """

    cost: Tensor
    missing: Tensor


def depth_bins(
    min_depth: Tensor | float, max_depth: Tensor | float, num_bins: int, binning: str = "linear"
) -> Tensor:
    """float32 ``(num_bins,)`` ascending bin depths between ``min_depth`` and ``max_depth``.

    ``linear``: ``min + i * (max - min) / (n - 1)`` with the last bin exactly ``max`` (numpy's
    ``linspace``), in float64, then rounded to float32. ``inverse``: the reciprocals of the same
    spacing between ``1 / max`` and ``1 / min``, reversed (ascending depth). The end points may
    be 0-d tensors (the adaptive trackers): nothing is read back to the host.
    """
    if binning not in BINNINGS:
        raise ValueError(f"depth binning must be one of {BINNINGS}, not {binning!r}")
    lo = torch.as_tensor(min_depth, dtype=torch.float64)
    hi = torch.as_tensor(max_depth, dtype=torch.float64, device=lo.device)
    if binning == "inverse":
        return (1.0 / _linspace(1.0 / hi, 1.0 / lo, num_bins)).flip(0).float()
    return _linspace(lo, hi, num_bins).float()


def _linspace(start: Tensor, stop: Tensor, num: int) -> Tensor:
    """numpy's ``linspace(start, stop, num)`` for 0-d float64 tensors (same rounding)."""
    step = (stop - start) / (num - 1)
    values = torch.arange(num, dtype=torch.float64, device=start.device) * step + start
    return torch.cat([values[:-1], stop.reshape(1)])


def lookup_grid(K: Tensor, inv_K: Tensor, poses: Tensor, bins: Tensor, height: int, width: int):
    """``grid_sample`` coordinates of every pixel at every bin depth in every lookup frame.

    A pixel ``(x, y)`` (integer indices) at depth ``z`` is ``P = z * inv_K[:3, :3] @ (x, y, 1)``;
    its image in lookup frame f is ``(K @ T_f)[:3] @ (P, 1)``, divided by ``q_z + 1e-7`` and
    normalised for ``align_corners=True`` (as :func:`train.geometry.project`).

    Args:
        K, inv_K: ``(B, 4, 4)`` pixel intrinsics of the ``height x width`` feature map.
        poses: ``(B, F, 4, 4)`` current camera -> lookup camera.
        bins: ``(D,)`` bin depths.

    Returns:
        ``(B, F, D, height, width, 2)`` normalised (x, y).
    """
    b, f = poses.shape[:2]
    pix = pixel_grid(height, width, K.dtype, K.device)  # (3, hw)
    rays = inv_K[:, :3, :3] @ pix  # (B, 3, hw)
    points = bins.view(1, -1, 1, 1) * rays.unsqueeze(1)  # (B, D, 3, hw)
    points = torch.cat([points, torch.ones_like(points[:, :, :1])], dim=2)  # (B, D, 4, hw)
    P = (K.unsqueeze(1) @ poses)[:, :, :3, :]  # (B, F, 3, 4)
    q = P.unsqueeze(2) @ points.unsqueeze(1)  # (B, F, D, 3, hw)
    uv = q[:, :, :, :2] / (q[:, :, :, 2:3] + PROJECTION_EPS)
    uv = uv.reshape(b, f, -1, 2, height, width).permute(0, 1, 2, 4, 5, 3)
    size = torch.cat([uv.new_full((1,), width - 1), uv.new_full((1,), height - 1)])
    return (uv / size - 0.5) * 2


def valid_mask(grid: Tensor, height: int, width: int) -> Tensor:
    """float ``(..., h, w)``: 1 where the sampling position lies at least :data:`BORDER` pixels
    inside the lookup map (positions read back from the normalised grid) and the current pixel
    is at least :data:`BORDER` pixels from every border."""
    x = (grid[..., 0] / 2 + 0.5) * (width - 1)
    y = (grid[..., 1] / 2 + 0.5) * (height - 1)
    inside = (x >= BORDER) & (x <= width - BORDER) & (y >= BORDER) & (y <= height - BORDER)
    rows = torch.arange(height, device=grid.device)
    cols = torch.arange(width, device=grid.device)
    current = ((rows >= BORDER) & (rows < height - BORDER)).unsqueeze(1) & (
        (cols >= BORDER) & (cols < width - BORDER)
    ).unsqueeze(0)
    return (inside & current).to(grid.dtype)


@torch.no_grad()
def match_features(
    current: Tensor,
    lookups: Tensor,
    poses: Tensor,
    K: Tensor,
    inv_K: Tensor,
    bins: Tensor,
) -> CostVolume:
    """The cost volume of ``current`` features against the ``lookups`` features.

    Per bin and lookup frame: sample the lookup features at the pixel's reprojection (bilinear,
    zero padding, ``align_corners=True``), take the channel mean of ``|warped - current|`` times
    :func:`valid_mask`; sum over frames and divide by the number of frames with a non-zero
    difference (``+ 1e-7``). A frame whose 4x4 pose sums to exactly 0 is skipped (a missing
    frame). Zero costs are missing and take the pixel's largest cost over the bins.

    Args:
        current: ``(B, C, h, w)`` features of the current image.
        lookups: ``(B, F, C, h, w)`` features of the lookup images.
        poses: ``(B, F, 4, 4)`` current camera -> lookup camera.
        K, inv_K: ``(B, 4, 4)`` pixel intrinsics of the h x w maps.
        bins: ``(D,)`` bin depths.
    """
    with torch.autocast(current.device.type, enabled=False):
        current, lookups = current.float(), lookups.float()
        b, f, c, h, w = lookups.shape
        grid = lookup_grid(K.float(), inv_K.float(), poses.float(), bins.float(), h, w)
        used = (poses.float().sum(dim=(-2, -1)) != 0).float().view(b, f, 1, 1, 1)
        source = lookups.reshape(b * f, c, h, w)
        total, count = [], []
        for start in range(0, bins.shape[0], BIN_CHUNK):
            g = grid[:, :, start : start + BIN_CHUNK]  # (B, F, d, h, w, 2)
            d = g.shape[2]
            warped = F.grid_sample(
                source,
                g.reshape(b * f, d * h, w, 2),
                mode="bilinear",
                padding_mode="zeros",
                align_corners=True,
            ).view(b, f, c, d, h, w)
            diff = (warped - current.view(b, 1, c, 1, h, w)).abs().mean(dim=2)
            diff = diff * valid_mask(g, h, w) * used  # (B, F, d, h, w)
            total.append(diff.sum(dim=1))
            count.append((diff > 0).float().sum(dim=1))
        cost = torch.cat(total, dim=1) / (torch.cat(count, dim=1) + 1e-7)
        missing = cost == 0
        cost = torch.where(missing, cost.amax(dim=1, keepdim=True), cost)
    return CostVolume(cost, missing)


def confidence_mask(missing: Tensor) -> Tensor:
    """float ``(B, h, w)``: 1 where every bin of the pixel was observed, else 0."""
    return (~missing).all(dim=1).float()


def lowest_cost_disparity(cost: Tensor, bins: Tensor) -> Tensor:
    """``(B, h, w)`` ``1 / bins[argmin]`` of each pixel's costs (zero costs count as
    :data:`EMPTY_COST`; the first bin wins ties): the matching's own disparity."""
    filled = torch.where(cost == 0, torch.full_like(cost, EMPTY_COST), cost)
    return 1.0 / bins[filled.argmin(dim=1)]
