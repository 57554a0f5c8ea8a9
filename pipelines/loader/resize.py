"""Resizes and mirrors of batched images, label maps and ground truth on the device (bilinear,
antialiased when shrinking; nearest pixel centres for maps), as :mod:`pipelines.loader.augment`
and evaluation use them."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def resize_bilinear(images: Tensor, size: tuple[int, int]) -> Tensor:
    """Float ``(B, C, H, W)`` -> ``(B, C, *size)``; identity when the size already matches."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    shrink = size[0] < images.shape[-2] or size[1] < images.shape[-1]
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def resize_nearest(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """``(B, 1, H, W)`` label or depth maps -> ``(B, 1, *size)`` by nearest pixel centres."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    dtype = maps.dtype
    out = F.interpolate(maps.float(), size=size, mode="nearest-exact")
    return out.to(dtype)


def flip_images(images: Tensor, flipped: Tensor) -> Tensor:
    """Mirror left-right the images ``(B, ..., W)`` whose ``flipped`` ``(B,)`` is True."""
    mask = flipped.view(-1, *[1] * (images.dim() - 1))
    return torch.where(mask, images.flip(-1), images)


def gt_at_size(
    gt_depth: Tensor, sizes: tuple[tuple[int, int], ...] | None, size: tuple[int, int]
) -> Tensor:
    """Padded ground truth ``(B, Hg, Wg)`` -> float32 ``(B, 1, *size)``: each map's valid
    region (``sizes``, from ``gt_size``) resized by nearest pixel centres (the whole map when
    ``sizes`` is None or covers it)."""
    gt = gt_depth.float().unsqueeze(1)
    if sizes is None or all(tuple(s) == tuple(gt.shape[-2:]) for s in sizes):
        return resize_nearest(gt, size)
    maps = [resize_nearest(g[None, :, :h, :w], size) for g, (h, w) in zip(gt, sizes, strict=True)]
    return torch.cat(maps)
