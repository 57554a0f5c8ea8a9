"""Batched colour jitter with one draw per sample (monodepth2 style, spec kitti.md section 8), or
one per frame and scale (:class:`FrameJitter`, Lite-Mono's), and colour-channel permutations.

torchvision's ``adjust_*`` functions take one factor per call; here every image of a batch has its
own factors and its own order of the four operations, all in vectorised tensor math on whatever
device the images are on. The operations follow torchvision's definitions on float images in
[0, 1] (results clamped to [0, 1] after each step):

* brightness ``b``: ``x * b``;
* contrast ``c``: blend with the mean of the image's greyscale, ``c * x + (1 - c) * mean``;
* saturation ``s``: blend with the greyscale image, ``s * x + (1 - s) * grey``;
* hue ``h``: RGB -> HSV, ``hue = (hue + h) mod 1``, HSV -> RGB (fused, see :func:`adjust_hue`).

Greyscale is ``0.2989 R + 0.587 G + 0.114 B``. monodepth2 jitters uint8 PIL images (rounding after
every step); this float version differs from it by those roundings only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

GREY_WEIGHTS = (0.2989, 0.587, 0.114)
#: The five non-identity orderings of the RGB channels.
CHANNEL_PERMUTATIONS = ((0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))
BRIGHTNESS, CONTRAST, SATURATION, HUE = range(4)


@dataclass
class JitterParams:
    """One colour-jitter draw per sample.

    Attributes:
        apply: bool ``(B,)``, False leaves the sample unchanged.
        order: int64 ``(B, 4)``, a permutation of (brightness, contrast, saturation, hue) = 0..3.
        brightness, contrast, saturation: float32 ``(B,)`` multiplicative factors.
        hue: float32 ``(B,)`` hue shift in turns (-0.5..0.5).
    """

    apply: Tensor
    order: Tensor
    brightness: Tensor
    contrast: Tensor
    saturation: Tensor
    hue: Tensor

    @staticmethod
    def draw(
        n: int,
        *,
        prob: float = 0.5,
        brightness: float = 0.2,
        contrast: float = 0.2,
        saturation: float = 0.2,
        hue: float = 0.1,
        generator: torch.Generator | None = None,
    ) -> JitterParams:
        """Draw ``n`` samples' parameters on the generator's device (CPU without one): factors
        ``U(1 - x, 1 + x)``, hue ``U(-h, h)``, a random order, applied with probability ``prob``."""
        device = generator.device if generator is not None else None

        def rand(*shape: int) -> Tensor:
            return torch.rand(*shape, generator=generator, device=device)

        def uniform(lo: float, hi: float) -> Tensor:
            return lo + (hi - lo) * rand(n)

        return JitterParams(
            apply=rand(n) < prob,
            order=torch.argsort(rand(n, 4), dim=1),
            brightness=uniform(1 - brightness, 1 + brightness),
            contrast=uniform(1 - contrast, 1 + contrast),
            saturation=uniform(1 - saturation, 1 + saturation),
            hue=uniform(-hue, hue),
        )

    def to(self, device: torch.device | str) -> JitterParams:
        return JitterParams(**{k: v.to(device) for k, v in self.__dict__.items()})

    def repeat(self, times: int) -> JitterParams:
        """The parameters for ``times`` stacked copies of the batch (frames share a draw)."""
        return JitterParams(
            **{k: v.repeat(times, *[1] * (v.dim() - 1)) for k, v in self.__dict__.items()}
        )


def grey(images: Tensor) -> Tensor:
    """``(..., 3, H, W)`` RGB -> ``(..., 1, H, W)`` luma."""
    r, g, b = images.unbind(-3)
    return (GREY_WEIGHTS[0] * r + GREY_WEIGHTS[1] * g + GREY_WEIGHTS[2] * b).unsqueeze(-3)


def adjust_brightness(images: Tensor, factor: Tensor) -> Tensor:
    """``(B, 3, H, W)`` in [0, 1] times per-image ``factor`` ``(B,)``, clamped."""
    return (images * factor.view(-1, 1, 1, 1)).clamp_(0, 1)


def adjust_contrast(images: Tensor, factor: Tensor) -> Tensor:
    """Blend each image with its mean grey level by ``factor`` ``(B,)``, clamped."""
    mean = grey(images).mean(dim=(-3, -2, -1), keepdim=True)
    return _blend(images, mean, factor)


def adjust_saturation(images: Tensor, factor: Tensor) -> Tensor:
    """Blend each image with its greyscale version by ``factor`` ``(B,)``, clamped."""
    return _blend(images, grey(images), factor)


def adjust_hue(images: Tensor, shift: Tensor) -> Tensor:
    """Rotate the hue of each image by ``shift`` ``(B,)`` turns (RGB -> HSV -> RGB, fused).

    With ``v = max(R, G, B)`` and chroma ``c = v - min(R, G, B)`` (= ``v * s``), the hue in
    sixths is ``h6 = (G - B) / c`` where R is the maximum, ``2 + (B - R) / c`` where G is, else
    ``4 + (R - G) / c``; after the shift, channel (R, G, B) =
    ``v - c * clamp(min(k, 4 - k), 0, 1)`` with ``k = (n + h6 + 6 * shift) mod 6``, ``n = (5, 3,
    1)`` (the branch-free six-sector HSV -> RGB formula). Grey pixels (c = 0) stay unchanged.
    """
    r, g, b = images.unbind(-3)
    v = images.amax(dim=-3)
    c = v - images.amin(dim=-3)
    is_r = v == r
    is_g = (v == g) & ~is_r
    num = torch.where(is_r, g - b, torch.where(is_g, b - r, r - g))
    offset = torch.where(is_r, 0.0, torch.where(is_g, 2.0, 4.0))
    h6 = num / torch.where(c == 0, torch.ones_like(c), c) + offset
    h6 = h6 + 6.0 * shift.view(-1, 1, 1).to(images.dtype)
    # (5, 3, 1) without a host-to-device copy
    n = torch.arange(5.0, 0.0, -2.0, dtype=images.dtype, device=images.device).view(3, 1, 1)
    k = torch.remainder(n + h6.unsqueeze(-3), 6.0)
    ramp = torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)
    return v.unsqueeze(-3) - c.unsqueeze(-3) * ramp


_OPS = {
    BRIGHTNESS: ("brightness", adjust_brightness),
    CONTRAST: ("contrast", adjust_contrast),
    SATURATION: ("saturation", adjust_saturation),
    HUE: ("hue", adjust_hue),
}


@dataclass
class JitterGroups:
    """Which rows of a batch each jitter step applies each operation to, as index tensors.

    Computed on the host from host-side parameters (:func:`jitter_groups`), so applying the
    jitter on a GPU never asks the GPU which rows are selected (no ``nonzero`` synchronisation).

    Attributes:
        chosen: int64 ``(n,)`` rows jittered at all.
        steps: per step 0..3, ``{op: rows}`` with ``rows`` int64 indices into ``chosen``
            (operations no row uses at that step are left out).
    """

    chosen: Tensor
    steps: list[dict[int, Tensor]]

    def to(self, device: torch.device | str) -> JitterGroups:
        def move(t: Tensor) -> Tensor:
            return t.to(device, non_blocking=True)

        return JitterGroups(
            move(self.chosen), [{op: move(r) for op, r in s.items()} for s in self.steps]
        )


def jitter_groups(params: JitterParams) -> JitterGroups:
    """The :class:`JitterGroups` of ``params`` (read back to the host if they are elsewhere)."""
    apply = params.apply.cpu().numpy()
    chosen = np.flatnonzero(apply)
    order = params.order.cpu().numpy()[chosen]
    steps = []
    for step in range(4):
        groups = {}
        for op in _OPS:
            rows = np.flatnonzero(order[:, step] == op)
            if rows.size:
                groups[op] = torch.from_numpy(rows)
        steps.append(groups)
    return JitterGroups(torch.from_numpy(chosen), steps)


def color_jitter(
    images: Tensor, params: JitterParams, groups: JitterGroups | None = None
) -> Tensor:
    """Jitter ``(B, 3, H, W)`` float images in [0, 1] with per-image ``params`` (B draws).

    Images whose ``params.apply`` is False are returned unchanged. ``groups`` (on the images'
    device; :func:`jitter_groups` when None) says which rows each step changes. Returns a new
    tensor.
    """
    if groups is None:
        groups = jitter_groups(params).to(images.device)
    out = images.clone()
    if groups.chosen.numel() == 0:
        return out
    x = images[groups.chosen]
    for step in groups.steps:
        for op, rows in step.items():
            name, fn = _OPS[op]
            factor = getattr(params, name)[groups.chosen][rows]
            x[rows] = fn(x[rows], factor)
    out[groups.chosen] = x
    return out


def _blend(images: Tensor, other: Tensor, factor: Tensor) -> Tensor:
    f = factor.view(-1, 1, 1, 1)
    return (f * images + (1 - f) * other).clamp_(0, 1)


def draw_channel_permutations(
    n: int, prob: float, generator: torch.Generator | None = None
) -> Tensor:
    """int64 ``(n, 3)`` channel orders: with probability ``prob`` one of
    :data:`CHANNEL_PERMUTATIONS` (uniform), else the identity. Two draws from ``generator``."""
    gen_device = generator.device if generator is not None else None
    swap = torch.rand(n, generator=generator, device=gen_device) < prob
    choice = torch.randint(len(CHANNEL_PERMUTATIONS), (n,), generator=generator, device=gen_device)
    table = torch.tensor(CHANNEL_PERMUTATIONS, dtype=torch.int64, device=gen_device)
    identity = torch.arange(3, device=gen_device).expand(n, 3)
    return torch.where(swap[:, None], table[choice], identity).cpu()


def permute_channels(images: Tensor, perm: Tensor) -> Tensor:
    """``images`` ``(B, 3, H, W)`` with sample b's channels in the order ``perm[b]`` ``(B, 3)``."""
    index = perm.to(images.device).view(-1, 3, 1, 1).expand_as(images)
    return torch.gather(images, 1, index)


@dataclass
class FrameJitter:
    """Colour jitter with its own draw for every frame and every scale of a sample (Lite-Mono's
    loader builds a ``ColorJitter`` transform and calls it per image, modern_methods.md 1.7);
    whether a sample is jittered at all is still decided once per sample.

    Attributes:
        params, groups: per scale, the draw of every stacked frame (frame-major, ``F * B`` rows)
            and its index groups.
    """

    params: list[JitterParams]
    groups: list[JitterGroups]

    @staticmethod
    def draw(apply: Tensor, config: Any, generator: torch.Generator | None = None) -> FrameJitter:
        """Draws for ``apply.shape[0]`` stacked frames at ``config.scales`` scales (ranges from
        ``config``, an :class:`~pipelines.loader.augment.AugmentConfig`); ``apply`` (bool per
        stacked frame) is the sample's decision, repeated over its frames."""
        params = []
        for _ in range(config.scales):
            p = JitterParams.draw(
                apply.shape[0],
                prob=1.0,
                brightness=config.brightness,
                contrast=config.contrast,
                saturation=config.saturation,
                hue=config.hue,
                generator=generator,
            )
            p.apply = apply.to(p.apply.device)
            params.append(p)
        return FrameJitter(params, [jitter_groups(p) for p in params])

    def to(self, device: torch.device | str) -> FrameJitter:
        return FrameJitter([p.to(device) for p in self.params], [g.to(device) for g in self.groups])

    def apply(self, pyramid: list[Tensor]) -> list[Tensor]:
        """The jittered copy of every scale of the stacked frames ``(F * B, 3, h_s, w_s)``."""
        return [
            color_jitter(x, p, g) for x, p, g in zip(pyramid, self.params, self.groups, strict=True)
        ]
