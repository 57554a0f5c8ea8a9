"""Supervised depth losses (training.md sections 7 and 8): DenseDepth's loss, berHu, SILog, L1.

Every loss takes a prediction and a target of one shape ``(B, 1, H, W)`` and an optional
boolean mask of valid target pixels; :data:`SUPERVISED_LOSSES` maps a name to a function of the
common signature ``(pred, target, mask) -> Tensor`` and :func:`supervised_loss` looks one up.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

SupervisedLoss = Callable[[Tensor, Tensor, "Tensor | None"], Tensor]

_SSIM_SIZE = 11
_SSIM_SIGMA = 1.5
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03


def _tf_gaussian_window(dtype: torch.dtype, device: torch.device) -> Tensor:
    """tf.image.ssim's 11x11 window: softmax of the summed 1-D log-Gaussians, ``(1, 1, 11, 11)``."""
    coords = torch.arange(_SSIM_SIZE, dtype=dtype, device=device) - (_SSIM_SIZE - 1) / 2
    g = coords**2 * (-0.5 / _SSIM_SIGMA**2)
    g = (g[None, :] + g[:, None]).reshape(1, -1)
    return torch.softmax(g, dim=-1).reshape(1, 1, _SSIM_SIZE, _SSIM_SIZE)


def tf_ssim(x: Tensor, y: Tensor, max_val: float) -> Tensor:
    """``tf.image.ssim(x, y, max_val)`` with its defaults, per image.

    11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, statistics over valid windows
    only (no padding), the SSIM map averaged over pixels, then over channels.

    Args:
        x, y: ``(B, C, H, W)`` images, H, W >= 11.
        max_val: the dynamic range of the values.

    Returns:
        ``(B,)`` SSIM.
    """
    b, c, h, w = x.shape
    if h < _SSIM_SIZE or w < _SSIM_SIZE:
        raise ValueError(f"SSIM needs images of at least {_SSIM_SIZE}x{_SSIM_SIZE}, got {h}x{w}")
    window = _tf_gaussian_window(x.dtype, x.device)

    def reducer(t: Tensor) -> Tensor:
        return F.conv2d(t.reshape(b * c, 1, *t.shape[-2:]), window).reshape(b, c, h - 10, w - 10)

    c1 = (_SSIM_K1 * max_val) ** 2
    c2 = (_SSIM_K2 * max_val) ** 2
    mean0, mean1 = reducer(x), reducer(y)
    num0 = mean0 * mean1 * 2.0
    den0 = mean0 * mean0 + mean1 * mean1
    luminance = (num0 + c1) / (den0 + c1)
    num1 = reducer(x * y) * 2.0
    den1 = reducer(x * x + y * y)
    cs = (num1 - num0 + c2) / (den1 - den0 + c2)
    return (luminance * cs).mean(dim=(2, 3)).mean(dim=1)


def _image_gradients(x: Tensor) -> tuple[Tensor, Tensor]:
    """``tf.image.image_gradients``: forward differences ``(dy, dx)``, last row / column 0."""
    dy = F.pad(x[..., 1:, :] - x[..., :-1, :], (0, 0, 0, 1))
    dx = F.pad(x[..., :, 1:] - x[..., :, :-1], (0, 1, 0, 0))
    return dy, dx


def densedepth_loss_per_sample(
    y_true: Tensor, y_pred: Tensor, theta: float = 0.1, max_depth_val: float = 100.0
) -> Tensor:
    """DenseDepth's Keras ``depth_loss_function`` itself: one value per sample.

    ``clip((1 - SSIM(y_true, y_pred)) / 2, 0, 1)`` per sample (:func:`tf_ssim` with
    ``max_val = max_depth_val``), plus the batch mean of ``|Dy pred - Dy true| + |Dx pred - Dx
    true|`` (:func:`tf.image.image_gradients` differences, averaged over all H x W pixels),
    plus ``theta`` times the batch mean of ``|pred - true|``. Only the SSIM term differs
    between samples (the two means run over the whole batch, as in the reference).

    Args:
        y_true, y_pred: ``(B, 1, H, W)`` in DenseDepth's units ``1000 / depth_cm`` (1..100),
            H, W >= 11.
        theta: weight of the point-wise L1 term.
        max_depth_val: SSIM dynamic range (1000 / 10 = 100).

    Returns:
        ``(B,)`` losses.
    """
    if y_true.shape != y_pred.shape or y_true.ndim != 4:
        raise ValueError(
            f"need two (B, C, H, W) tensors of one shape, got {y_true.shape}, {y_pred.shape}"
        )
    l_depth = (y_pred - y_true).abs().mean()
    dy_true, dx_true = _image_gradients(y_true)
    dy_pred, dx_pred = _image_gradients(y_pred)
    l_edges = ((dy_pred - dy_true).abs() + (dx_pred - dx_true).abs()).mean()
    l_ssim = torch.clamp((1 - tf_ssim(y_true, y_pred, max_depth_val)) * 0.5, 0, 1)
    return l_ssim + l_edges + theta * l_depth


def densedepth_loss(
    y_true: Tensor, y_pred: Tensor, theta: float = 0.1, max_depth_val: float = 100.0
) -> Tensor:
    """DenseDepth's loss as Keras reports it: the batch mean of :func:`densedepth_loss_per_sample`.

    ``L = mean_b clip((1 - SSIM_b) / 2, 0, 1) + mean|D pred - D true| + theta * mean|pred -
    true|``, on ``(B, 1, H, W)`` tensors in ``1000 / depth_cm`` units (see
    :func:`densedepth_loss_per_sample`). Note the argument order: target first, as Keras.

    Returns:
        Scalar loss.
    """
    return densedepth_loss_per_sample(y_true, y_pred, theta, max_depth_val).mean()


def _valid(pred: Tensor, target: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
    """The valid pixels of ``pred`` and ``target`` as 1-D tensors (all pixels when no mask)."""
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target differ in shape: {tuple(pred.shape)}, {tuple(target.shape)}"
        )
    if mask is None:
        return pred.reshape(-1), target.reshape(-1)
    if mask.shape != pred.shape:
        raise ValueError(f"mask must have the shape {tuple(pred.shape)}, got {tuple(mask.shape)}")
    mask = mask.bool()
    return pred[mask], target[mask]


def l1_loss(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean ``|pred - target|`` over the valid pixels.

    Args:
        pred, target: ``(B, 1, H, W)`` depth (any unit, the same for both).
        mask: optional bool ``(B, 1, H, W)``, True = valid target.

    Returns:
        Scalar loss; 0 (still attached to ``pred``) when no pixel is valid.
    """
    p, t = _valid(pred, target, mask)
    if p.numel() == 0:
        return pred.sum() * 0
    return (p - t).abs().mean()


def berhu_loss(
    pred: Tensor, target: Tensor, mask: Tensor | None = None, c_fraction: float = 0.2
) -> Tensor:
    """Reverse Huber (berHu) loss, mean over the valid pixels.

    ``r = pred - target``, ``c = c_fraction * max|r|`` over the valid pixels of the batch
    (detached: a constant for the gradient); ``B(r) = |r|`` if ``|r| <= c`` else
    ``(r^2 + c^2) / (2c)`` (Depth Hints' berHu alternative, training.md section 7).

    Args:
        pred, target: ``(B, 1, H, W)`` depth (the same unit).
        mask: optional bool ``(B, 1, H, W)``, True = valid target.
        c_fraction: the threshold as a fraction of the largest residual.

    Returns:
        Scalar loss; 0 (still attached to ``pred``) when no pixel is valid.
    """
    p, t = _valid(pred, target, mask)
    if p.numel() == 0:
        return pred.sum() * 0
    r = p - t
    a = r.abs()
    c = (c_fraction * a.max()).detach()
    # c = 0 only when every residual is 0, where the |r| branch is taken: keep the other finite.
    quadratic = (r * r + c * c) / (2 * c).clamp_min(torch.finfo(r.dtype).tiny)
    return torch.where(a <= c, a, quadratic).mean()


def silog_loss(
    pred: Tensor, target: Tensor, mask: Tensor | None = None, variance_focus: float = 0.85
) -> Tensor:
    """Scale-invariant log loss in BTS's form, ``10 * sqrt(mean(d^2) - lambda * mean(d)^2)``.

    ``d = log pred - log target`` over the valid pixels, ``lambda = variance_focus`` (BTS trains
    with 0.85; AdaBins' ``10 sqrt(var(d) + 0.15 mean(d)^2)`` is the same up to its unbiased
    variance). The factor 10 is BTS's (the spec gives no SILog loss, only the metric
    ``100 * sqrt(mean(e^2) - mean(e)^2)``). The radicand is clamped at 0.

    Args:
        pred, target: ``(B, 1, H, W)`` positive depth on the valid pixels.
        mask: optional bool ``(B, 1, H, W)``, True = valid target (use it to exclude 0 depth).
        variance_focus: lambda in [0, 1]; 1 gives a fully scale-invariant loss.

    Returns:
        Scalar loss; 0 (still attached to ``pred``) when no pixel is valid.
    """
    p, t = _valid(pred, target, mask)
    if p.numel() == 0:
        return pred.sum() * 0
    d = torch.log(p) - torch.log(t)
    # Clamped at 0: with variance_focus = 1 rounding can take a zero variance below 0.
    return torch.sqrt(torch.clamp((d * d).mean() - variance_focus * d.mean() ** 2, min=0)) * 10.0


def _densedepth_common(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """:func:`densedepth_loss` in the common ``(pred, target, mask)`` order.

    DenseDepth's loss has no mask (its targets are dense): a given mask must select every pixel.
    """
    if mask is not None and not bool(mask.all()):
        raise ValueError("the densedepth loss needs dense targets: it takes no mask")
    return densedepth_loss(target, pred)


SUPERVISED_LOSSES: dict[str, SupervisedLoss] = {
    "densedepth": _densedepth_common,
    "berhu": berhu_loss,
    "silog": silog_loss,
    "l1": l1_loss,
}


def supervised_loss(name: str) -> SupervisedLoss:
    """The loss called ``name`` in :data:`SUPERVISED_LOSSES`, ``(pred, target, mask) -> Tensor``.

    Raises:
        ValueError: unknown name.
    """
    try:
        return SUPERVISED_LOSSES[name]
    except KeyError:
        choices = ", ".join(sorted(SUPERVISED_LOSSES))
        raise ValueError(f"unknown loss {name!r}; choose from {choices}") from None
