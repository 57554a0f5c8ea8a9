"""SegDepth's segmentation loss (training.md section 6) and the U-Net weight map it cites.

:func:`segmentation_loss` is SegDepth's ``Trainer.get_segmentation_loss`` (a weighted
two-class cross-entropy on the U-Net's output); :func:`unet_weight_map` is Ronneberger et al.'s
border-emphasising weight map, which SegDepth's report describes but its code never computes
(there the weight is 1 everywhere): an extension, not the reference behaviour.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import Tensor


def _per_pixel(x: Tensor, b: int, h: int, w: int, what: str) -> Tensor:
    """``(B, H, W)`` or ``(B, 1, H, W)`` -> ``(B, 1, H, W)``."""
    if x.shape not in ((b, h, w), (b, 1, h, w)):
        raise ValueError(
            f"{what} must be ({b}, {h}, {w}) or ({b}, 1, {h}, {w}), got {tuple(x.shape)}"
        )
    return x.reshape(b, 1, h, w)


def segmentation_loss(output: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    """Weighted two-class cross-entropy of SegDepth (``get_segmentation_loss``).

    Log-softmax over the two channels, the log-probability of the target class per pixel,
    per image ``sum(w * log p) / sum(w)``, negated, then the mean over the batch. With
    ``weight=None`` (SegDepth's code: w = 1) it is the plain mean cross-entropy per image.

    Args:
        output: ``(B, 2, H, W)`` scores (SegDepth feeds its U-Net's sigmoid outputs; any real
            logits work); channel 1 = foreground.
        target: ``(B, H, W)`` or ``(B, 1, H, W)`` integer or bool class map in {0, 1}.
        weight: optional ``(B, H, W)`` or ``(B, 1, H, W)`` non-negative per-pixel weights
            (e.g. :func:`unet_weight_map`); 1 everywhere when None.

    Returns:
        Scalar loss (nats per pixel), the dtype of ``output``.
    """
    if output.ndim != 4 or output.shape[1] != 2:
        raise ValueError(f"output must be (B, 2, H, W), got {tuple(output.shape)}")
    b, _, h, w = output.shape
    index = _per_pixel(target, b, h, w, "target").long()
    logp = F.log_softmax(output, dim=1).gather(1, index)
    if weight is None:
        weights = torch.ones_like(logp)
    else:
        weights = _per_pixel(weight, b, h, w, "weight").to(logp.dtype)
    per_image = (logp * weights).reshape(b, -1).sum(1) / weights.reshape(b, -1).sum(1)
    return -per_image.mean()


def _weight_map_2d(mask: np.ndarray, w0: float, sigma: float) -> np.ndarray:
    """U-Net weight map of one ``(H, W)`` boolean mask, float64."""
    n = mask.size
    classes = [c for c in (False, True) if np.any(mask == c)]
    weight = np.zeros(mask.shape, dtype=np.float64)
    for c in classes:
        selected = mask == c
        weight[selected] = n / (len(classes) * np.count_nonzero(selected))
    labels, count = ndimage.label(mask)
    if count >= 2:
        distances = np.stack(
            [ndimage.distance_transform_edt(labels != k) for k in range(1, count + 1)]
        )
        distances.sort(axis=0)
        d1, d2 = distances[0], distances[1]
        border = w0 * np.exp(-((d1 + d2) ** 2) / (2 * sigma**2))
        weight += np.where(mask, 0.0, border)
    return weight


def unet_weight_map(
    target: np.ndarray | Tensor, w0: float = 10.0, sigma: float = 5.0
) -> np.ndarray | Tensor:
    """Ronneberger et al.'s U-Net weight map ``w = w_c + w0 exp(-(d1 + d2)^2 / (2 sigma^2))``.

    * ``w_c``: class balancing, ``N / (K n_c)`` for a pixel of class c (n_c pixels of that
      class, K = number of classes present, N pixels): its mean over the mask is 1.
    * ``d1``, ``d2``: Euclidean distance (pixels) from a background pixel to the nearest and
      second-nearest foreground connected component (4-connectivity, ``scipy.ndimage.label``).
      The border term is added on background pixels only and only when the mask has at least
      two components; it peaks in narrow gaps between objects.

    The U-Net paper's w0 = 10, sigma = 5 px are the defaults (SegDepth gives neither).

    Args:
        target: ``(H, W)`` or ``(B, H, W)`` mask (bool or integer, nonzero = foreground), a
            numpy array or a torch tensor.
        w0: amplitude of the border term.
        sigma: width of the border term in pixels.

    Returns:
        float32 weights of the shape of ``target``: a numpy array for a numpy input, a tensor
        on ``target``'s device for a tensor input.
    """
    is_tensor = isinstance(target, Tensor)
    mask = (target.detach().cpu().numpy() if is_tensor else np.asarray(target)) != 0
    if mask.ndim not in (2, 3):
        raise ValueError(f"target must be (H, W) or (B, H, W), got {mask.shape}")
    stack = mask[None] if mask.ndim == 2 else mask
    weights = np.stack([_weight_map_2d(m, w0, sigma) for m in stack]).astype(np.float32)
    weights = weights.reshape(mask.shape)
    if is_tensor:
        return torch.from_numpy(weights).to(target.device)
    return weights
