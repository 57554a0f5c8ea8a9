"""FeatDepth losses (training.md section 5): the auto-encoder objective of stage 1, and the
feature-metric and smoothness terms of stage 2.

Plain functions of tensors, equal to FeatDepth's own ``compute_losses`` / ``get_smooth_loss``
(sconlyshootery/FeatDepth). Images are float RGB in [0, 1], ``(B, 3, H, W)``; differences are
forward differences ``Dx G = G[..., 1:] - G[..., :-1]`` along the width and ``Dy`` along the
height, second order by applying them again (xx, xy from Dx; yx, yy from Dy).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from train.geometry import disp_to_depth, warp
from train.losses.photometric import min_reprojection_loss, ssim_loss

#: The smallest image side for which every encoder level (H/32 at level 4) keeps >= 3 pixels.
FEATDEPTH_MIN_SIZE = 96
_MIN_FEATURE_SIDE = 3
_ROBUST_EPS2 = 1e-6  # FeatDepth's robust L1: sqrt(d^2 + (1e-3)^2)
_SSIM_WEIGHT = 0.85


def check_featdepth_size(height: int, width: int) -> None:
    """Raise ValueError unless both sides are at least 96 pixels.

    FeatDepth's auto-encoder loss takes second-order differences of every encoder level; the
    coarsest level is 1/32 of the image and needs 3 pixels per side, otherwise the loss is nan.

    Args:
        height, width: training image size in pixels.
    """
    if height < FEATDEPTH_MIN_SIZE or width < FEATDEPTH_MIN_SIZE:
        raise ValueError(
            f"FeatDepth needs images of at least {FEATDEPTH_MIN_SIZE}x{FEATDEPTH_MIN_SIZE} "
            f"pixels (its 1/32 feature level needs 3 px per side), got {height}x{width}"
        )


def _gradient(x: Tensor) -> tuple[Tensor, Tensor]:
    """Forward differences ``(Dx, Dy)``: width ``(.., h, w-1)``, height ``(.., h-1, w)``."""
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def _edge_aware_orders(x: Tensor, image: Tensor, alpha: float) -> tuple[Tensor, Tensor]:
    """First- and second-order edge-aware smoothness of ``x`` against an image of its size.

    ``S1 = mean(|Dx x| e^{-alpha mean_c|Dx I|}) + mean(|Dy x| e^{-alpha mean_c|Dy I|})`` and
    ``S2`` the same sum over Dxx, Dxy, Dyx, Dyy; means over batch, channels and pixels.

    Args:
        x: ``(B, C, h, w)`` map (disparity or features), h, w >= 3.
        image: ``(B, 3, H, W)`` image; area-resized to ``(h, w)``.
        alpha: weight of the image gradient in the exponent.

    Returns:
        ``(S1, S2)`` scalars.
    """
    image = F.interpolate(image, size=x.shape[-2:], mode="area")
    x_dx, x_dy = _gradient(x)
    i_dx, i_dy = _gradient(image)
    x_dxx, x_dxy = _gradient(x_dx)
    x_dyx, x_dyy = _gradient(x_dy)
    i_dxx, i_dxy = _gradient(i_dx)
    i_dyx, i_dyy = _gradient(i_dy)

    def term(d: Tensor, i: Tensor) -> Tensor:
        return torch.mean(d.abs() * torch.exp(-alpha * i.abs().mean(dim=1, keepdim=True)))

    first = term(x_dx, i_dx) + term(x_dy, i_dy)
    second = term(x_dxx, i_dxx) + term(x_dxy, i_dxy) + term(x_dyx, i_dyx) + term(x_dyy, i_dyy)
    return first, second


def robust_l1(pred: Tensor, target: Tensor) -> Tensor:
    """FeatDepth's robust L1 ``sqrt((target - pred)^2 + 1e-6)``, elementwise (same shape)."""
    return torch.sqrt((target - pred) ** 2 + _ROBUST_EPS2)


def robust_photometric_error(pred: Tensor, target: Tensor) -> Tensor:
    """``0.85 * mean_c(SSIM loss) + 0.15 * mean_c(robust L1)`` per pixel.

    Args:
        pred, target: ``(B, C, H, W)`` images in [0, 1], H, W >= 2.

    Returns:
        ``(B, 1, H, W)`` error.
    """
    l1 = robust_l1(pred, target).mean(dim=1, keepdim=True)
    ssim = ssim_loss(pred, target).mean(dim=1, keepdim=True)
    return _SSIM_WEIGHT * ssim + (1 - _SSIM_WEIGHT) * l1


def autoencoder_loss(
    image: Tensor,
    reconstructions: Sequence[Tensor],
    features: Sequence[Tensor],
    dis: float = 1e-3,
    cvt: float = 1e-3,
) -> Tensor:
    """FeatDepth stage 1: the sum of every term of the auto-encoder objective.

    * Reconstruction, per scale s of S: ``mean(0.85 SSIM + 0.15 robust L1) / S`` against the
      target ``T_s``, with ``T_0 = image`` and ``T_s`` = ``T_{s-1}`` resized bilinearly
      (``align_corners=False``) to the size of ``reconstructions[s]`` (chained, not from the
      full image).
    * Feature regularisation, per level i of 5: ``(-dis * S1_i + cvt * S2_i) / 2^i / 5`` with
      ``S1`` / ``S2`` the first- / second-order differences of all channels of ``features[i]``
      weighted by ``exp(-mean_c |D I|)`` of the image area-resized to the level's size: the
      discriminative term rewards feature gradients, the convergent term penalises their
      curvature.

    Args:
        image: ``(B, 3, H, W)`` input image in [0, 1] (the reconstruction target).
        reconstructions: ``reconstructions[s]`` ``(B, 3, H / 2^s, W / 2^s)``, finest first
            (FeatDepth: s = 0..3).
        features: the encoder levels, finest first, ``(B, C_i, h_i, w_i)`` with h_i, w_i >= 3
            (ResNet: 5 levels at H/2 .. H/32; any channel count).
        dis: weight of the discriminative (first-order) term.
        cvt: weight of the convergent (second-order) term.

    Returns:
        Scalar loss.

    Raises:
        ValueError: a feature level with fewer than 3 rows or columns (the reference gives nan;
            see :func:`check_featdepth_size`).
    """
    for level, f in enumerate(features):
        if min(f.shape[-2:]) < _MIN_FEATURE_SIDE:
            raise ValueError(
                f"feature level {level} is {tuple(f.shape[-2:])}: second-order smoothness needs "
                f">= {_MIN_FEATURE_SIDE} px per side (images of >= {FEATDEPTH_MIN_SIZE} px)"
            )
    total = image.new_zeros(())
    n_levels = len(features)
    for level, f in enumerate(features):
        first, second = _edge_aware_orders(f, image, alpha=1.0)
        total = total + (-dis * first + cvt * second) / 2**level / n_levels
    target = image
    n_scales = len(reconstructions)
    for recon in reconstructions:
        if target.shape[-2:] != recon.shape[-2:]:
            target = F.interpolate(
                target, size=recon.shape[-2:], mode="bilinear", align_corners=False
            )
        total = total + robust_photometric_error(recon, target).mean() / n_scales
    return total


def feature_metric_loss(target: Tensor, warped_sources: Sequence[Tensor] | Tensor) -> Tensor:
    """FeatDepth stage 2's feature-metric term, before its weight and its division by scales.

    Per pixel the minimum over sources of ``mean_c sqrt((t - s)^2 + 1e-6)``, then the mean over
    batch and pixels (no identity candidate, no weight).

    Args:
        target: ``(B, C, h, w)`` features of the target image.
        warped_sources: the source features warped into the target view, each
            ``(B, C, h, w)``: a sequence, or a tensor ``(S, B, C, h, w)``.

    Returns:
        Scalar loss.
    """
    errors = [robust_l1(src, target).mean(dim=1, keepdim=True) for src in warped_sources]
    if not errors:
        raise ValueError("feature_metric_loss needs at least one warped source")
    return torch.cat(errors, dim=1).min(dim=1).values.mean()


def smoothness_loss(disp: Tensor, image: Tensor) -> Tensor:
    """FeatDepth stage 2's edge-aware smoothness of one disparity map, unweighted.

    First- plus second-order forward differences of the disparity, weighted by
    ``exp(-0.5 * mean_c |D I|)`` of the same-order differences of the image area-resized to
    the disparity's size (adaptive average pooling when the size is no integer fraction).
    FeatDepth weights it 1e-3 / 2^s / 4 at scale s; normalise ``disp`` by its mean first if
    ``disp_norm`` is on.

    Args:
        disp: ``(B, 1, h, w)`` disparity at its native size, h, w >= 3.
        image: ``(B, 3, H, W)`` image in [0, 1].

    Returns:
        Scalar loss.
    """
    first, second = _edge_aware_orders(disp, image, alpha=0.5)
    return first + second


@dataclass(frozen=True)
class FeatDepthLossConfig:
    """Depth range (``disp_to_depth``), auto-masking, disparity normalisation and the smoothness
    weight of FeatDepth's depth stage."""

    min_depth: float = 0.1
    max_depth: float = 100.0
    automask: bool = True
    disp_norm: bool = True
    smoothness: float = 1e-3


def featdepth_photometric(
    disps: Sequence[Tensor],
    target: Tensor,
    sources: Sequence[Tensor],
    poses: Sequence[Tensor],
    K: Tensor,
    inv_K: Tensor,
    config: FeatDepthLossConfig = FeatDepthLossConfig(),
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """FeatDepth's photometric and smoothness terms over its S scales (training.md 5.2).

    Per scale s: upsample ``disps[s]`` to H x W, warp the full-resolution sources with it, take
    the per-pixel minimum robust error (identities first with auto-masking) and add its mean / S;
    smoothness of ``disps[s]`` (divided by its mean with ``disp_norm``) against the target,
    ``smoothness / 2^s / S``. Float32 with autocast off.

    Args:
        disps: ``(B, 1, h_s, w_s)`` sigmoid disparities, finest first.
        target: ``(B, 3, H, W)`` plain target; sources: ``(B, 3, H, W)`` each.
        poses: ``(B, 4, 4)`` target-to-source transforms (or broadcastable), one per source.
        K, inv_K: ``(B, 4, 4)`` pixel intrinsics of H x W and their inverse.

    Returns:
        ``(photometric, smoothness)`` scalars.
    """
    with torch.autocast(device_type=target.device.type, enabled=False):
        batch, (height, width) = target.shape[0], target.shape[-2:]
        n_src, n_scales = len(sources), len(disps)
        stacked = torch.cat([s.float() for s in sources], dim=0)
        T = torch.cat([t.float().expand(batch, 4, 4) for t in poses], dim=0)
        K = K.float().expand(batch, 4, 4).repeat(n_src, 1, 1)
        inv_K = inv_K.float().expand(batch, 4, 4)
        targets = target.float().repeat(n_src, 1, 1, 1)

        def per_source(errors: Tensor) -> Tensor:  # (S*B, 1, H, W) -> (B, S, H, W)
            return errors.reshape(n_src, batch, height, width).transpose(0, 1)

        identity = None
        if config.automask:
            identity = per_source(robust_photometric_error(stacked, targets))
        photometric = smooth = target.new_zeros((), dtype=torch.float32)
        for scale, disp in enumerate(disps):
            disp = disp.float()
            full = F.interpolate(disp, (height, width), mode="bilinear", align_corners=False)
            _, depth = disp_to_depth(full, config.min_depth, config.max_depth)
            errors = per_source(
                robust_photometric_error(warp(stacked, depth, K, inv_K, T), targets)
            )
            best = min_reprojection_loss(errors, identity, generator=generator)
            photometric = photometric + best.loss.mean() / n_scales
            if config.disp_norm:
                disp = disp / (disp.mean(dim=(2, 3), keepdim=True) + 1e-7)
            smoothness = smoothness_loss(disp, target.float())
            smooth = smooth + config.smoothness * smoothness / 2**scale / n_scales
    return photometric, smooth
