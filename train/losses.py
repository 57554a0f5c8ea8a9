"""Monodepth2 self-supervised losses (training.md section 3).

Pure functions over tensors, plus :func:`monodepth2_loss`, which combines them over the scales
of a depth network's output given a :class:`Views` (target, sources, poses, intrinsics).
Images are float RGB in [0, 1], ``(B, 3, H, W)``; per-pixel error maps are ``(B, 1, H, W)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .geometry import backproject, disp_to_depth, project

SSIM_C1 = 0.01**2
SSIM_C2 = 0.03**2


def ssim_loss(x: Tensor, y: Tensor) -> Tensor:
    """Per-pixel, per-channel SSIM dissimilarity ``clamp((1 - SSIM) / 2, 0, 1)``.

    Local statistics come from 3x3 average pooling (stride 1) over reflection-padded images,
    ``C1 = 0.01**2``, ``C2 = 0.03**2`` (monodepth2's ``SSIM`` module). 0 for identical images.

    Args:
        x, y: ``(B, C, H, W)`` images in [0, 1].

    Returns:
        ``(B, C, H, W)`` in [0, 1].
    """
    c = x.shape[1]
    stacked = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    pooled = F.avg_pool2d(F.pad(stacked, (1, 1, 1, 1), mode="reflect"), 3, stride=1)
    mu_x, mu_y, e_xx, e_yy, e_xy = pooled.split(c, dim=1)
    sigma_x = e_xx - mu_x * mu_x
    sigma_y = e_yy - mu_y * mu_y
    sigma_xy = e_xy - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + SSIM_C1) * (2 * sigma_xy + SSIM_C2)
    denominator = (mu_x * mu_x + mu_y * mu_y + SSIM_C1) * (sigma_x + sigma_y + SSIM_C2)
    return torch.clamp((1 - numerator / denominator) / 2, 0, 1)


def photometric_error(
    pred: Tensor, target: Tensor, alpha: float = 0.85, use_ssim: bool = True
) -> Tensor:
    """``alpha * mean_c(SSIM loss) + (1 - alpha) * mean_c|target - pred|`` per pixel.

    Args:
        pred, target: ``(B, C, H, W)`` images in [0, 1].
        alpha: SSIM weight (0.85 in monodepth2).
        use_ssim: False gives the plain L1 (``--no_ssim``).

    Returns:
        ``(B, 1, H, W)`` error, 0 for identical images.
    """
    l1 = (target - pred).abs().mean(dim=1, keepdim=True)
    if not use_ssim:
        return l1
    ssim = ssim_loss(pred, target).mean(dim=1, keepdim=True)
    return alpha * ssim + (1 - alpha) * l1


@dataclass
class ReprojectionMin:
    """Result of :func:`min_reprojection_loss`.

    Attributes:
        loss: ``(B, 1, H, W)`` per-pixel minimum error (identity winners included; average it
            over all pixels as monodepth2 does).
        automask: ``(B, 1, H, W)`` bool, True where a reprojection beat every identity
            candidate (the pixels that train the depth); ``None`` without identities.
    """

    loss: Tensor
    automask: Tensor | None


def min_reprojection_loss(
    reprojection: Tensor,
    identity: Tensor | None = None,
    *,
    average: bool = False,
    noise_std: float = 1e-5,
    generator: torch.Generator | None = None,
) -> ReprojectionMin:
    """Per-pixel minimum over sources of the reprojection error, with auto-masking.

    The identity errors (unwarped source vs target) get ``noise_std * N(0, 1)`` added to break
    ties, are listed before the reprojection errors, and the per-pixel minimum is taken over all
    candidates. A pixel where an identity wins (a static scene, or an object moving with the
    camera) contributes a value that does not depend on depth, so it does not train the network.

    Args:
        reprojection: ``(B, S, H, W)`` photometric error of each warped source.
        identity: ``(B, S, H, W)`` photometric error of each unwarped source, or ``None`` to
            disable auto-masking.
        average: average over sources instead of the minimum (``--avg_reprojection``; the
            identities are averaged too).
        noise_std: standard deviation of the tie-breaking noise (1e-5).
        generator: random generator for the noise (on the tensors' device), for reproducibility.
    """
    if average:
        reprojection = reprojection.mean(dim=1, keepdim=True)
        if identity is not None:
            identity = identity.mean(dim=1, keepdim=True)
    if identity is None:
        return ReprojectionMin(loss=reprojection.min(dim=1, keepdim=True).values, automask=None)
    noise = torch.randn(
        identity.shape, generator=generator, dtype=identity.dtype, device=identity.device
    )
    candidates = torch.cat([identity + noise * noise_std, reprojection], dim=1)
    loss, index = candidates.min(dim=1, keepdim=True)
    return ReprojectionMin(loss=loss, automask=index >= identity.shape[1])


def smoothness_loss(disp: Tensor, image: Tensor, normalise: bool = True) -> Tensor:
    """Edge-aware first-order smoothness of a disparity map.

    ``mean(|dx d| exp(-mean_c|dx I|)) + mean(|dy d| exp(-mean_c|dy I|))`` with forward
    differences (x = width, y = height), where ``d = disp / (mean_hw(disp) + 1e-7)`` when
    ``normalise`` (monodepth2) or the raw disparity otherwise.

    Args:
        disp: ``(B, 1, h, w)`` disparity at its native resolution.
        image: ``(B, C, h, w)`` image of the same size, [0, 1].

    Returns:
        Scalar tensor.
    """
    if normalise:
        disp = disp / (disp.mean(dim=(2, 3), keepdim=True) + 1e-7)
    disp_dx = (disp[..., :, :-1] - disp[..., :, 1:]).abs()
    disp_dy = (disp[..., :-1, :] - disp[..., 1:, :]).abs()
    image_dx = (image[..., :, :-1] - image[..., :, 1:]).abs().mean(dim=1, keepdim=True)
    image_dy = (image[..., :-1, :] - image[..., 1:, :]).abs().mean(dim=1, keepdim=True)
    return (disp_dx * torch.exp(-image_dx)).mean() + (disp_dy * torch.exp(-image_dy)).mean()


def image_pyramid(image: Tensor, num_scales: int) -> list[Tensor]:
    """``[image, image at H//2 x W//2, ...]``, ``num_scales`` levels, each resized from the
    previous one (bilinear with antialiasing, close to the reference's PIL resize chain)."""
    levels = [image]
    h, w = image.shape[-2:]
    for s in range(1, num_scales):
        size = (h // 2**s, w // 2**s)
        levels.append(
            F.interpolate(
                levels[-1], size=size, mode="bilinear", align_corners=False, antialias=True
            )
        )
    return levels


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
            the smoothness term; built with :func:`image_pyramid` when ``None``.
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
    """

    total: Tensor
    per_scale: list[Tensor]
    depth: Tensor
    automask: Tensor | None


def monodepth2_loss(
    disps: Sequence[Tensor],
    views: Views,
    config: Monodepth2LossConfig = Monodepth2LossConfig(),
    generator: torch.Generator | None = None,
) -> Monodepth2LossOutput:
    """Full-resolution multi-scale Monodepth2 loss.

    For each scale s: upsample ``disps[s]`` bilinearly to H x W, convert to depth, warp every
    source into the target view with the scale-0 intrinsics, take the per-pixel minimum
    photometric error over sources (and, with auto-masking, the unwarped sources), and add
    ``disparity_smoothness * smoothness(disps[s], target at scale s) / 2**s``. The total is the
    mean over scales. Computed in float32 with autocast disabled, whatever the inputs' dtype.

    Args:
        disps: sigmoid disparities, ``disps[s]`` of shape ``(B, 1, H / 2**s, W / 2**s)``.
        views: target, sources, poses and intrinsics (:class:`Views`).
        config: loss weights and switches.
        generator: random generator for the auto-mask tie-breaking noise.
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
        pyramid = views.target_pyramid or image_pyramid(target, len(disps))

        per_scale: list[Tensor] = []
        depth0, automask0 = target.new_empty(0), None
        for scale, disp in enumerate(disps):
            disp = disp.float()
            full = F.interpolate(disp, (height, width), mode="bilinear", align_corners=False)
            _, depth = disp_to_depth(full, config.min_depth, config.max_depth)
            points = backproject(depth, inv_K).repeat(n_src, 1, 1)
            grid = project(points, K, poses, height, width)
            warped = F.grid_sample(
                sources, grid, mode="bilinear", padding_mode="border", align_corners=True
            )
            best = min_reprojection_loss(
                per_source(error(warped)),
                identity,
                average=config.avg_reprojection,
                noise_std=config.identity_noise,
                generator=generator,
            )
            smooth = smoothness_loss(disp, pyramid[scale].float())
            per_scale.append(best.loss.mean() + config.disparity_smoothness * smooth / 2**scale)
            if scale == 0:
                depth0, automask0 = depth, best.automask
        total = torch.stack(per_scale).mean()
    return Monodepth2LossOutput(total=total, per_scale=per_scale, depth=depth0, automask=automask0)
