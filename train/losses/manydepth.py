"""ManyDepth's losses and the pieces of its training step around the cost volume
(modern_methods.md 2.3, 2.4): matching augmentation, the matching (motion) mask, the adaptive
depth range, and the teacher's and the multi-frame network's per-scale losses.

Per scale s (disparities upsampled bilinearly to H x W, then depth; sources warped as
Monodepth2 does with the scale-0 intrinsics): ``reproj`` = minimum over the sources of the
SSIM + L1 error of the warped source, ``ident`` = the same of the unwarped sources.

* Teacher: ``mask = reproj <= ident + 1e-5 N(0, 1)`` (ties go to the reprojection);
  ``reproj_loss = sum(reproj * mask) / (sum(mask) + 1e-7)``: only the selected pixels, and the
  mean over those (Monodepth2 averages the minimum over all pixels).
* Multi-frame: the auto-mask is discarded; ``mask = consistency * (1 - augmentation)``, the same
  normalised ``reproj_loss``, plus ``mean(|D_multi - D_teacher| * (1 - mask))`` over all pixels
  (teacher depth detached).
* Both add ``smoothness * smooth(disp_s / mean, target_s) / 2**s``; the total is the mean of
  the per-scale sums.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from pipelines.loader import resize_bilinear
from train.geometry import disp_to_depth, warp
from train.losses.monodepth2 import Views
from train.losses.photometric import photometric_error
from train.losses.smoothness import smoothness_loss

DEPTH_FLOOR = 0.1  # the adaptive range's lowest minimum
RANGE_MOMENTUM = 0.99


@dataclass(frozen=True)
class ManyDepthLossConfig:
    """Weights of the ManyDepth losses (reference defaults)."""

    min_depth: float = 0.1
    max_depth: float = 100.0
    disparity_smoothness: float = 1e-3
    ssim_weight: float = 0.85
    identity_noise: float = 1e-5


@dataclass
class ScaleTerms:
    """Per-scale scalars of one network's loss (lists over scales)."""

    loss: list[Tensor] = field(default_factory=list)
    reproj: list[Tensor] = field(default_factory=list)
    consistency: list[Tensor] = field(default_factory=list)

    @property
    def total(self) -> Tensor:
        return torch.stack(self.loss).mean()


def matching_mask(teacher_depth: Tensor, lowest_cost: Tensor) -> Tensor:
    """bool ``(B, H, W)``: True where the matching's depth ``1 / lowest_cost`` and the teacher's
    depth ``(B, 1, H, W)`` agree within a factor of 2 (both relative differences below 1)."""
    d_t = teacher_depth[:, 0]
    d_m = 1.0 / lowest_cost
    return ((d_m - d_t) / d_t < 1) & ((d_t - d_m) / d_m < 1)


def updated_depth_range(
    min_bin: Tensor, max_bin: Tensor, teacher_depth: Tensor
) -> tuple[Tensor, Tensor]:
    """The adaptive depth range after one teacher prediction ``(B, 1, H, W)``.

    Batch means of the per-image minimum and maximum depth (float32), then ``lo = max(0.1,
    0.9 * mean_min)``, ``hi = 1.1 * mean_max`` and exponential averages with momentum 0.99 of
    ``min_bin`` / ``max_bin`` (float64 0-d tensors, returned as such; no host sync).
    """
    flat = teacher_depth.detach().float().flatten(1)
    mean_min = flat.amin(dim=1).mean().double()
    mean_max = flat.amax(dim=1).mean().double()
    lo = torch.clamp(0.9 * mean_min, min=DEPTH_FLOOR)
    hi = 1.1 * mean_max
    new_max = RANGE_MOMENTUM * max_bin + (1 - RANGE_MOMENTUM) * hi.to(max_bin.device)
    new_min = RANGE_MOMENTUM * min_bin + (1 - RANGE_MOMENTUM) * lo.to(min_bin.device)
    return new_min, new_max


def missing_frame_poses(lookups: Tensor, poses: Tensor) -> Tensor:
    """``poses`` ``(B, F, 4, 4)`` set to 0 where the lookup image ``(B, F, 3, H, W)`` is all
    zeros (a frame the dataset did not have): the matching then skips that frame."""
    present = lookups.flatten(2).abs().sum(dim=2) != 0
    return poses * present.to(poses.dtype)[..., None, None]


def matching_augmentation(
    lookups: Tensor,
    current: Tensor,
    poses: Tensor,
    draws: Tensor,
    static_prob: float = 0.25,
    zero_prob: float = 0.25,
) -> tuple[Tensor, Tensor, Tensor]:
    """Static-camera and zero-cost-volume augmentation of the matching inputs.

    Per item with draw ``r`` in [0, 1): ``r < static_prob``: every lookup becomes ``current``
    (the plain, un-jittered target), poses kept; ``static_prob <= r < static_prob +
    zero_prob``: poses times 0. Either sets the item's augmentation mask to 1.

    Args:
        lookups: ``(B, F, 3, H, W)``; current: ``(B, 3, H, W)``; poses: ``(B, F, 4, 4)``;
        draws: ``(B,)`` uniform draws.

    Returns:
        ``(lookups, poses, augmentation_mask (B, 1, 1, 1) float)``.
    """
    static = draws < static_prob
    zero = (draws >= static_prob) & (draws < static_prob + zero_prob)
    lookups = torch.where(static.view(-1, 1, 1, 1, 1), current.unsqueeze(1), lookups)
    poses = poses * (~zero).to(poses.dtype).view(-1, 1, 1, 1)
    return lookups, poses, (static | zero).to(current.dtype).view(-1, 1, 1, 1)


def warp_errors(disp: Tensor, views: Views, config: ManyDepthLossConfig) -> tuple[Tensor, Tensor]:
    """``(depth (B, 1, H, W), reproj (B, 1, H, W))``: the depth of ``disp`` upsampled to the
    target's size and the minimum over sources of the warped sources' photometric error."""
    target = views.target.float()
    height, width = target.shape[-2:]
    full = F.interpolate(disp.float(), (height, width), mode="bilinear", align_corners=False)
    _, depth = disp_to_depth(full, config.min_depth, config.max_depth)
    n_src, batch = len(views.sources), target.shape[0]
    sources = torch.cat([s.float() for s in views.sources])
    poses = torch.cat([p.float().expand(batch, 4, 4) for p in views.poses])
    K = views.K.float().expand(batch, 4, 4).repeat(n_src, 1, 1)
    warped = warp(sources, depth, K, views.inv_K.float().expand(batch, 4, 4), poses)
    error = photometric_error(warped, target.repeat(n_src, 1, 1, 1), config.ssim_weight)
    return depth, error.view(n_src, batch, 1, height, width).amin(dim=0)


def identity_error(views: Views, config: ManyDepthLossConfig) -> Tensor:
    """``(B, 1, H, W)`` minimum over sources of the unwarped sources' photometric error."""
    target = views.target.float()
    errors = [photometric_error(s.float(), target, config.ssim_weight) for s in views.sources]
    return torch.stack(errors).amin(dim=0)


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """``sum(values * mask) / (sum(mask) + 1e-7)``."""
    return (values * mask).sum() / (mask.sum() + 1e-7)


def teacher_loss(
    disps: Sequence[Tensor],
    views: Views,
    config: ManyDepthLossConfig = ManyDepthLossConfig(),
    noise: Sequence[Tensor] | None = None,
    generator: torch.Generator | None = None,
) -> tuple[ScaleTerms, Tensor]:
    """The single-frame teacher's loss (module docstring) and its scale-0 depth.

    ``noise``: the N(0, 1) tie-breaking draws per scale, ``(B, 1, H, W)`` (drawn from
    ``generator`` when None).
    """
    with torch.autocast(views.target.device.type, enabled=False):
        ident = identity_error(views, config)
        pyramid = views.target_pyramid or pyramid_of(views.target.float(), len(disps))
        terms, depth0 = ScaleTerms(), ident
        for scale, disp in enumerate(disps):
            depth, reproj = warp_errors(disp, views, config)
            draw = noise[scale] if noise is not None else _randn(ident, generator)
            chosen = (reproj <= ident + draw.to(ident) * config.identity_noise).float()
            reproj_loss = masked_mean(reproj, chosen)
            smooth = smoothness_loss(disp.float(), pyramid[scale].float())
            terms.reproj.append(reproj_loss)
            terms.loss.append(reproj_loss + config.disparity_smoothness * smooth / 2**scale)
            if scale == 0:
                depth0 = depth
    return terms, depth0


def multi_frame_loss(
    disps: Sequence[Tensor],
    teacher_disps: Sequence[Tensor],
    views: Views,
    mask: Tensor,
    config: ManyDepthLossConfig = ManyDepthLossConfig(),
) -> ScaleTerms:
    """The multi-frame network's loss (module docstring).

    Args:
        disps, teacher_disps: sigmoid disparities per scale of both networks (the teacher's are
            detached here).
        views: the plain images, the (detached) poses and the scale-0 intrinsics.
        mask: ``(B, 1, H, W)`` pixels whose reprojection trains the network:
            ``consistency_mask * (1 - augmentation_mask)``; the others follow the teacher.
    """
    with torch.autocast(views.target.device.type, enabled=False):
        pyramid = views.target_pyramid or pyramid_of(views.target.float(), len(disps))
        size = views.target.shape[-2:]
        terms = ScaleTerms()
        for scale, disp in enumerate(disps):
            depth, reproj = warp_errors(disp, views, config)
            reproj_loss = masked_mean(reproj, mask)
            t_full = F.interpolate(
                teacher_disps[scale].detach().float(), size, mode="bilinear", align_corners=False
            )
            _, t_depth = disp_to_depth(t_full, config.min_depth, config.max_depth)
            consistency = ((depth - t_depth).abs() * (1 - mask)).mean()
            smooth = smoothness_loss(disp.float(), pyramid[scale].float())
            smooth_term = config.disparity_smoothness * smooth / 2**scale
            terms.reproj.append(reproj_loss)
            terms.consistency.append(consistency)
            terms.loss.append(reproj_loss + consistency + smooth_term)
    return terms


def pyramid_of(image: Tensor, num_scales: int) -> list[Tensor]:
    """``[image, image at H//2 x W//2, ...]``, each level resized from the previous one."""
    h, w = image.shape[-2:]
    levels = [image]
    for s in range(1, num_scales):
        levels.append(resize_bilinear(levels[-1], (h // 2**s, w // 2**s)))
    return levels


def _randn(like: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.randn(like.shape, generator=generator, dtype=like.dtype, device=like.device)
