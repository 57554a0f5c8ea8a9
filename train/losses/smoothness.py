"""Edge-aware disparity smoothness (training.md section 3)."""

from __future__ import annotations

import torch
from torch import Tensor


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
