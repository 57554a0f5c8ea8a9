"""Photometric errors (training.md section 3): SSIM, the SSIM + L1 mix, and the per-pixel
minimum over sources with auto-masking. Images are float RGB in [0, 1], ``(B, C, H, W)``."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

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


def tie_breaking_noise(like: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """``N(0, 1)`` draws of ``like``'s shape, dtype and device, the same on every CPU kernel.

    Drawn in float64 and rounded: on the CPU, float32 ``torch.randn`` takes an AVX2
    Box-Muller kernel whose last bit differs from the scalar one that
    ``ATEN_CPU_CAPABILITY=default`` runs (measured with torch 2.14.1), while the float64 draws
    come from the same scalar code under every capability. The values are what monodepth2 adds
    (times 1e-5) to the identity errors; only their last bit is made machine-independent.
    """
    noise = torch.randn(like.shape, generator=generator, dtype=torch.float64, device=like.device)
    return noise.to(like.dtype)


def min_reprojection_loss(
    reprojection: Tensor,
    identity: Tensor | None = None,
    *,
    average: bool = False,
    noise_std: float = 1e-5,
    generator: torch.Generator | None = None,
) -> ReprojectionMin:
    """Per-pixel minimum over sources of the reprojection error, with auto-masking.

    The identity errors (unwarped source vs target) get ``noise_std * N(0, 1)`` added
    (:func:`tie_breaking_noise`), are listed before the reprojection errors, and the per-pixel
    minimum is taken over all candidates. A pixel where an identity wins (a static scene, or an
    object moving with the camera) contributes a value that does not depend on depth, so it does
    not train the network.

    Tie rule: the first minimal candidate wins (``torch.min``'s documented rule), so an exact
    tie goes to the identity (and among sources to the first). Near ties are another matter, and
    no tie rule removes them: a choice made on float32 errors flips wherever two candidates lie
    within the kernels' rounding of each other, and the depth gradient of that pixel appears or
    vanishes (the loss is continuous there). On the golden batch of ``tests/test_golden.py``
    (monodepth2-m, 49 152 choices over 4 scales), moving the disparities by 1 ulp flips 0 to 2
    of them and the depth gradient norm by up to 2e-5; the golden batch has no exact tie. The
    0.6 % jumps of -s / -ms across machines came from the warp (:func:`train.geometry.warp`).

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
    noise = tie_breaking_noise(identity, generator)
    candidates = torch.cat([identity + noise * noise_std, reprojection], dim=1)
    loss, index = candidates.min(dim=1, keepdim=True)
    return ReprojectionMin(loss=loss, automask=index >= identity.shape[1])
