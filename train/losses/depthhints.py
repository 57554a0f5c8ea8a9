"""Depth Hints (training.md section 7): proxy supervision from fused-SGM hints, as a term any
stereo method adds to its photometric loss.

At scale 0 the stereo image is warped with the hint depth; its photometric error (plus 1000
where there is no hint) competes per pixel with the reprojections and, with auto-masking, the
identities (:func:`hint_selection`). The photometric term becomes the mean of the minimum
reprojection over the pixels where an identity did not win (a masked mean, unlike Monodepth2's
plain mean); where the hint won, the depth is pulled towards it (:func:`hint_term`: log(1 + |D - h|)
on valid hints, or berHu as an option).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from train.geometry import warp
from train.losses.photometric import photometric_error, tie_breaking_noise
from train.losses.supervised import berhu_loss

HINT_LOSSES = ("log", "berhu")
NO_HINT_PENALTY = 1000.0
_EPS = 1e-7


@dataclass
class HintViews:
    """What the hint term needs besides the Monodepth2 views.

    Attributes:
        depth: ``(B, 1, H, W)`` hint depth at the loss resolution, in the depth network's
            training units (Monodepth2 stereo: baseline 0.1), 0 = no hint.
        source: ``(B, 3, H, W)`` the plain (un-jittered) other stereo image.
        pose: ``(B, 4, 4)`` target camera -> stereo camera (the stereo transform).
        loss: ``"log"`` (the released code: log(1 + |D - h|)) or ``"berhu"`` (the paper's
            alternative, c = 0.2 max|r|).
    """

    depth: Tensor
    source: Tensor
    pose: Tensor
    loss: str = "log"

    def __post_init__(self) -> None:
        if self.loss not in HINT_LOSSES:
            raise ValueError(f"hint_loss must be one of {HINT_LOSSES}, not {self.loss!r}")


@dataclass
class HintSelection:
    """Result of :func:`hint_selection`.

    Attributes:
        photometric: scalar, ``sum(rep * m_rep) / (sum(m_rep) + 1e-7)``.
        reprojection_mask: bool ``(B, 1, H, W)``, True where an identity did not win.
        hint_mask: bool ``(B, 1, H, W)``, True where the hint's reprojection won.
    """

    photometric: Tensor
    reprojection_mask: Tensor
    hint_mask: Tensor


def hint_reprojection_error(
    target: Tensor,
    hints: HintViews,
    K: Tensor,
    inv_K: Tensor,
    ssim_weight: float = 0.85,
    use_ssim: bool = True,
) -> Tensor:
    """``pe(stereo warped with the hint, target) + 1000 * (1 - valid)``, ``(B, 1, H, W)``.

    Args:
        target: ``(B, 3, H, W)`` plain target image.
        K, inv_K: ``(B, 4, 4)`` (or broadcastable) intrinsics of the H x W images.
    """
    batch = target.shape[0]
    valid = (hints.depth > 0).to(target.dtype)
    warped = warp(
        hints.source.float(),
        hints.depth.float(),
        K.float().expand(batch, 4, 4),
        inv_K.float().expand(batch, 4, 4),
        hints.pose.float().expand(batch, 4, 4),
    )
    error = photometric_error(warped, target, ssim_weight, use_ssim)
    return error + NO_HINT_PENALTY * (1 - valid)


def hint_selection(
    reprojection: Tensor,
    identity: Tensor | None,
    hint_error: Tensor,
    *,
    average: bool = False,
    noise_std: float = 1e-5,
    generator: torch.Generator | None = None,
) -> HintSelection:
    """Depth Hints' per-pixel choice between reprojection, identity and hint.

    ``rep`` = minimum (or mean with ``average``) over sources of the reprojection errors,
    ``idn`` = the same over the identity errors plus ``noise_std * N(0, 1)`` (drawn per source,
    as :func:`train.losses.photometric.min_reprojection_loss` draws it); ``idx = argmin(rep,
    idn, hint)``; ``m_rep = idx != 1``, ``m_hint = idx == 2``. Without identities (no
    auto-masking) ``m_rep = 1`` and ``m_hint = argmin(rep, hint) == 1``.

    Tie rule: ``argmin`` returns the first minimum, so in the reference's order an exact tie
    goes to the reprojection, then the identity, then the hint (near ties flip with the
    kernels' rounding, as in :func:`train.losses.photometric.min_reprojection_loss`).

    Args:
        reprojection: ``(B, S, H, W)`` errors of the warped sources.
        identity: ``(B, S, H, W)`` errors of the unwarped sources, or None.
        hint_error: ``(B, 1, H, W)`` from :func:`hint_reprojection_error`.
    """
    if average:
        rep = reprojection.mean(dim=1, keepdim=True)
    else:
        rep = reprojection.min(dim=1, keepdim=True).values
    if identity is None:
        hint_mask = torch.argmin(torch.cat([rep, hint_error], dim=1), dim=1, keepdim=True) == 1
        reprojection_mask = torch.ones_like(hint_mask)
    else:
        noisy = identity + tie_breaking_noise(identity, generator) * noise_std
        idn = noisy.mean(dim=1, keepdim=True) if average else noisy.min(dim=1, keepdim=True).values
        index = torch.argmin(torch.cat([rep, idn, hint_error], dim=1), dim=1, keepdim=True)
        reprojection_mask, hint_mask = index != 1, index == 2
    weight = reprojection_mask.to(rep.dtype)
    photometric = (rep * weight).sum() / (weight.sum() + _EPS)
    return HintSelection(photometric, reprojection_mask, hint_mask)


def hint_term(depth: Tensor, hint: Tensor, hint_mask: Tensor, loss: str = "log") -> Tensor:
    """The supervised term where the hint won.

    ``"log"``: ``sum(log(1 + |D - h|) * valid * m_hint) / (sum(m_hint) + 1e-7)`` (valid = h > 0);
    ``"berhu"``: :func:`train.losses.supervised.berhu_loss` over the pixels ``m_hint & valid``
    (c = 0.2 max|r| over them, the mean over them).

    Args:
        depth: ``(B, 1, H, W)`` predicted depth (from the upsampled disparity of one scale).
        hint: ``(B, 1, H, W)`` hint depth, same units, 0 = none.
        hint_mask: bool ``(B, 1, H, W)`` from :func:`hint_selection`.
    """
    valid = hint > 0
    if loss == "berhu":
        return berhu_loss(depth, hint, hint_mask & valid)
    if loss != "log":
        raise ValueError(f"hint loss must be one of {HINT_LOSSES}, not {loss!r}")
    selected = (hint_mask & valid).to(depth.dtype)
    value = torch.log1p((depth - hint).abs()) * selected
    return value.sum() / (hint_mask.to(depth.dtype).sum() + _EPS)
