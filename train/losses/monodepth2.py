"""The Monodepth2 self-supervised loss over scales (training.md section 3).

:func:`monodepth2_loss` combines the photometric terms (:mod:`train.losses.photometric`) and the
smoothness term (:mod:`train.losses.smoothness`) over the scales of a depth network's output,
given a :class:`Views` (target, sources, poses, intrinsics); sources are warped with
:func:`train.geometry.warp`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from pipelines.loader import resize_bilinear
from train.geometry import disp_to_depth, warp
from train.losses.depthhints import (
    HintViews,
    hint_reprojection_error,
    hint_selection,
    hint_term,
)
from train.losses.photometric import min_reprojection_loss, photometric_error
from train.losses.smoothness import smoothness_loss


@dataclass
class Views:
    """What the photometric loss needs besides the predicted disparities (one device, float).

    Attributes:
        target: ``(B, 3, H, W)`` plain (un-jittered) target frame at full resolution.
        sources: one ``(B, 3, H, W)`` plain image per source frame (temporal neighbours and/or
            the other stereo camera), full resolution.
        poses: one ``(B, 4, 4)`` ``cam_T_cam`` per source, target camera -> source camera (a
            predicted pose, or :func:`train.geometry.stereo_transform` for the stereo source);
            ``(4, 4)`` or ``(1, 4, 4)`` is broadcast over the batch.
        K, inv_K: ``(B, 4, 4)`` (or broadcastable) pixel intrinsics of the H x W images and
            their inverse.
        target_pyramid: optional plain target per scale, ``(B, 3, H // 2**s, W // 2**s)``, for
            the smoothness term; built by repeated antialiased
            halving (:func:`pipelines.loader.resize_bilinear`) when ``None``.
    """

    target: Tensor
    sources: list[Tensor]
    poses: list[Tensor]
    K: Tensor
    inv_K: Tensor
    target_pyramid: list[Tensor] | None = None


@dataclass(frozen=True)
class Monodepth2LossConfig:
    """Weights and switches of the Monodepth2 loss (reference defaults)."""

    min_depth: float = 0.1
    max_depth: float = 100.0
    disparity_smoothness: float = 1e-3
    ssim_weight: float = 0.85
    use_ssim: bool = True
    automask: bool = True
    avg_reprojection: bool = False
    identity_noise: float = 1e-5


@dataclass
class Monodepth2LossOutput:
    """Result of :func:`monodepth2_loss`.

    Attributes:
        total: scalar loss to minimise (mean over scales of ``loss_s``).
        per_scale: scalar ``loss_s`` per scale.
        depth: ``(B, 1, H, W)`` depth from the upsampled scale-0 disparity (training units).
        automask: ``(B, 1, H, W)`` bool at scale 0, True where a reprojection won (``None``
            without auto-masking).
        hint_mask: with hints, ``(B, 1, H, W)`` bool at scale 0, True where the hint won.
    """

    total: Tensor
    per_scale: list[Tensor]
    depth: Tensor
    automask: Tensor | None
    hint_mask: Tensor | None = None


def monodepth2_loss(
    disps: Sequence[Tensor],
    views: Views,
    config: Monodepth2LossConfig = Monodepth2LossConfig(),
    generator: torch.Generator | None = None,
    hints: HintViews | None = None,
) -> Monodepth2LossOutput:
    """Full-resolution multi-scale Monodepth2 loss.

    For each scale s: upsample ``disps[s]`` bilinearly to H x W, convert to depth, warp every
    source into the target view with the scale-0 intrinsics, take the per-pixel minimum
    photometric error over sources (and, with auto-masking, the unwarped sources), and add
    ``disparity_smoothness * smoothness(disps[s], target at scale s) / 2**s``. The total is the
    mean over scales. Computed in float32 with autocast disabled, whatever the inputs' dtype.

    With ``hints`` (Depth Hints, :mod:`train.losses.depthhints`) the hint's reprojection joins
    the per-pixel choice; each scale's loss is then the masked-mean photometric term plus the
    hint term (on that scale's upsampled depth) plus the smoothness term.

    Args:
        disps: sigmoid disparities, ``disps[s]`` of shape ``(B, 1, H / 2**s, W / 2**s)``.
        views: target, sources, poses and intrinsics (:class:`Views`).
        config: loss weights and switches.
        generator: random generator for the auto-mask tie-breaking noise.
        hints: the hint depth, stereo image and stereo pose, or None (plain Monodepth2).
    """
    target = views.target.float()
    with torch.autocast(device_type=target.device.type, enabled=False):
        height, width = target.shape[-2:]
        n_src, batch = len(views.sources), target.shape[0]
        sources = torch.cat([s.float() for s in views.sources], dim=0)  # (S*B, 3, H, W)
        poses = torch.cat([p.float().expand(batch, 4, 4) for p in views.poses], dim=0)
        K = views.K.float().expand(batch, 4, 4).repeat(n_src, 1, 1)  # (S*B, 4, 4)
        inv_K = views.inv_K.float().expand(batch, 4, 4)
        targets = target.repeat(n_src, 1, 1, 1)

        def per_source(errors: Tensor) -> Tensor:  # (S*B, 1, H, W) -> (B, S, H, W)
            return errors.reshape(n_src, batch, height, width).transpose(0, 1)

        def error(pred: Tensor) -> Tensor:
            return photometric_error(pred, targets, config.ssim_weight, config.use_ssim)

        identity = per_source(error(sources)) if config.automask else None
        pyramid = views.target_pyramid or _pyramid(target, len(disps))
        hint_error = hint_mask0 = None
        if hints is not None:  # scale 0 only: the hint and the images are full resolution
            hint_error = hint_reprojection_error(
                target, hints, views.K, views.inv_K, config.ssim_weight, config.use_ssim
            )

        per_scale: list[Tensor] = []
        depth0, automask0 = target.new_empty(0), None
        for scale, disp in enumerate(disps):
            disp = disp.float()
            full = F.interpolate(disp, (height, width), mode="bilinear", align_corners=False)
            _, depth = disp_to_depth(full, config.min_depth, config.max_depth)
            warped = warp(sources, depth, K, inv_K, poses)
            smooth = smoothness_loss(disp, pyramid[scale].float())
            smooth_term = config.disparity_smoothness * smooth / 2**scale
            if hints is not None and hint_error is not None:
                chosen = hint_selection(
                    per_source(error(warped)),
                    identity,
                    hint_error,
                    average=config.avg_reprojection,
                    noise_std=config.identity_noise,
                    generator=generator,
                )
                hint = hint_term(depth, hints.depth.float(), chosen.hint_mask, hints.loss)
                per_scale.append(chosen.photometric + hint + smooth_term)
                automask = chosen.reprojection_mask if identity is not None else None
                if scale == 0:
                    depth0, automask0, hint_mask0 = depth, automask, chosen.hint_mask
                continue
            best = min_reprojection_loss(
                per_source(error(warped)),
                identity,
                average=config.avg_reprojection,
                noise_std=config.identity_noise,
                generator=generator,
            )
            per_scale.append(best.loss.mean() + smooth_term)
            if scale == 0:
                depth0, automask0 = depth, best.automask
        total = torch.stack(per_scale).mean()
    return Monodepth2LossOutput(total, per_scale, depth0, automask0, hint_mask0)


def _pyramid(image: Tensor, num_scales: int) -> list[Tensor]:
    """``[image, image at H//2 x W//2, ...]``, each level resized from the previous one."""
    h, w = image.shape[-2:]
    levels = [image]
    for s in range(1, num_scales):
        levels.append(resize_bilinear(levels[-1], (h // 2**s, w // 2**s)))
    return levels
