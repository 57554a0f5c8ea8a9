"""Batched augmentation on the training device: uint8 batch in, float pyramids out.

:class:`Augment` turns a :class:`pipelines.loader.batch.Batch` (moved to the device) into an
:class:`Augmented`: images as float in [0, 1] resized to the model input, a colour-jittered copy
(one draw per sample shared by all its frames and scales, probability 0.5, kitti.md section 8;
``jitter_draws="frame"``: each frame and scale its own draw, :class:`FrameJitter`),
a horizontal flip (probability 0.5 per sample) applied to every image, ``seg``, ``depth``,
``hint_depth`` (of a flipped sample: ``hint_depth_flipped`` when there), the intrinsics and
the stereo sign, and the scale pyramid (scale s = ``(h // 2**s, w // 2**s)``, each made from
scale s - 1 as monodepth2 chains it). All random draws come from one ``torch.Generator`` (use a
CPU one: results are then deterministic and the same on every device).

Intrinsics convention: pixel ``(x, y)`` are integer column and row indices with pixel centres at
integers, as in ``train.geometry``. Then

* resizing W -> w (bilinear, ``align_corners=False``) maps ``x`` to ``(x + 0.5) * w / W - 0.5``,
  so ``fx' = fx * w / W`` and ``cx' = (cx + 0.5) * w / W - 0.5`` (same for y);
* mirroring maps ``x`` to ``w - 1 - x``, so ``cx' = w - 1 - cx`` (``fx`` unchanged): a point
  ``(X, Y, Z)`` seen at ``x`` in the original is seen at ``w - 1 - x`` in the mirrored image when
  the scene is mirrored too (``X -> -X``), which is what a flipped training sample is.

With ``AugmentConfig.normalised_K`` set (monodepth2's fixed normalised matrix, kitti.md section
5) the store intrinsics are ignored: ``K_s`` = row 0 times ``w_s``, row 1 times ``h_s``, and flips
leave it unchanged (valid because its cx is exactly centred in that convention).

Stereo (kitti.md section 6): ``side_sign`` = -1 for view 0 (left), +1 for view 1; ``flip_sign`` =
-1 for flipped samples; ``stereo_T`` = identity with ``T[0, 3] = side_sign * flip_sign *
stereo_baseline``.

Colour-channel permutation (DenseDepth, training.md section 8; off unless
``AugmentConfig.channel_swap_prob`` > 0, so methods that do not ask for it draw exactly the same
random numbers as before): per sample, with that probability, the RGB channels of the network
inputs (``color_aug``) are reordered by one of the five non-identity permutations, chosen
uniformly. The paper states p = 0.25; the Keras code picks one of seven options (the identity
and the six orderings of ``itertools.permutations``, identity included) and keeps the choice with
p = 0.5 (non-identity in 0.5 x 5/7 = 36 % of samples); the PyTorch port uses p = 0.5 over the
six orderings.

Ground truth (``gt_depth``, un-padded with ``gt_size``) is resized to the model input by nearest
pixel centres and flipped with its image, like ``depth`` (``Augmented.gt``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from pipelines.loader.batch import Batch
from pipelines.loader.colour import (  # the channel permutations moved there
    CHANNEL_PERMUTATIONS,  # noqa: F401
    FrameJitter,
    JitterGroups,
    JitterParams,
    color_jitter,
    draw_channel_permutations,
    jitter_groups,
    permute_channels,
)
from pipelines.loader.resize import (  # noqa: F401 - re-exported
    flip_images,
    gt_at_size,
    resize_bilinear,
    resize_nearest,
)

FRAME_NAMES = ("target", "prev", "next", "stereo")


@dataclass(frozen=True)
class AugmentConfig:
    """Model input size, pyramid depth, probabilities and jitter ranges.

    ``stereo_baseline``: 0.1 (monodepth2) or 0.015 (FeatDepth). ``normalised_K``: None uses the
    store's pixel intrinsics; a 3x3 or 4x4 nested tuple uses that fixed normalised matrix.
    ``channel_swap_prob``: per-sample probability of a colour-channel permutation of the network
    inputs (0 = off, no random draw; DenseDepth's paper uses 0.25). ``jitter_draws``: ``"item"``
    (one draw per sample) or ``"frame"`` (:class:`~pipelines.loader.colour.FrameJitter`).
    """

    height: int = 192
    width: int = 640
    scales: int = 4
    jitter_prob: float = 0.5
    flip_prob: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.1
    stereo_baseline: float = 0.1
    normalised_K: tuple[tuple[float, ...], ...] | None = None
    channel_swap_prob: float = 0.0
    jitter_draws: str = "item"

    def __post_init__(self) -> None:
        if self.jitter_draws not in ("item", "frame"):
            raise ValueError(f"jitter_draws must be item or frame, not {self.jitter_draws!r}")

    def size(self, scale: int) -> tuple[int, int]:
        """(height, width) of pyramid ``scale``."""
        return self.height // 2**scale, self.width // 2**scale


@dataclass
class Augmented:
    """The trainer's view of a batch, on the device.

    Attributes:
        color, color_aug: frame name (``"target"``, ``"prev"``, ``"next"``, ``"stereo"``; only
            those the batch has) -> list over scales of float32 ``(B, 3, h_s, w_s)`` in [0, 1].
            ``color`` is plain (losses), ``color_aug`` jittered (networks); both possibly flipped.
        K, inv_K: list over scales of float32 ``(B, 4, 4)`` pixel intrinsics and inverses.
        flipped, jittered: bool ``(B,)``.
        side_sign, flip_sign: float32 ``(B,)`` in {-1, +1}.
        stereo_T: float32 ``(B, 4, 4)`` target-to-stereo-camera transform, or None without stereo.
        has_prev, has_next: bool ``(B,)`` or None.
        seg: uint8 ``(B, h, w)`` (nearest, flipped) or None.
        depth: float32 ``(B, 1, h, w)`` metric depth (nearest, flipped), 0 = none, or None.
        hint_depth: float32 ``(B, 1, h, w)`` depth hint (nearest, flipped), 0 = none, or None.
        gt: float32 ``(B, 1, h, w)`` ground-truth depth (``gt_depth`` inside ``gt_size``;
            nearest, flipped), 0 = none, or None.
        channel_perm: int64 ``(B, 3)`` channel order applied to ``color_aug`` (identity rows
            where not permuted), or None when channel permutation is off.
        baseline: float32 ``(B,)`` metric stereo baseline from the store.
        jitter: the colour-jitter draw.
    """

    color: dict[str, list[Tensor]]
    color_aug: dict[str, list[Tensor]]
    K: list[Tensor]
    inv_K: list[Tensor]
    flipped: Tensor
    jittered: Tensor
    side_sign: Tensor
    flip_sign: Tensor
    baseline: Tensor
    jitter: JitterParams
    stereo_T: Tensor | None = None
    has_prev: Tensor | None = None
    has_next: Tensor | None = None
    seg: Tensor | None = None
    depth: Tensor | None = None
    hint_depth: Tensor | None = None
    gt: Tensor | None = None
    channel_perm: Tensor | None = None
    frames: tuple[str, ...] = field(default=())


@dataclass
class AugmentDraw:
    """The random draws and per-sample geometry of one batch (see :meth:`Augment.draw`).

    Attributes:
        jitter: the colour-jitter draw; ``groups``: its host-side index groups.
        flipped: bool ``(B,)``. K, inv_K: per scale, float32 ``(B, 4, 4)``.
        side_sign, flip_sign: float32 ``(B,)``. stereo_T: ``(B, 4, 4)`` or None.
        channel_perm: int64 ``(B, 3)`` channel orders, or None (channel permutation off).
        frame_jitter: per-frame-and-scale draws (``jitter_draws="frame"``) or None.
        gt_sizes: the valid (height, width) of each ``gt_depth`` map, read on the host (None
            without ground truth).
    """

    jitter: JitterParams
    groups: JitterGroups
    flipped: Tensor
    K: list[Tensor]
    inv_K: list[Tensor]
    side_sign: Tensor
    flip_sign: Tensor
    stereo_T: Tensor | None = None
    channel_perm: Tensor | None = None
    gt_sizes: tuple[tuple[int, int], ...] | None = None
    frame_jitter: FrameJitter | None = None

    def to(self, device: torch.device | str, non_blocking: bool = True) -> AugmentDraw:
        """A copy on ``device`` (non-blocking copies from pinned or pageable host memory)."""

        def move(t: Tensor) -> Tensor:
            return t.to(device, non_blocking=non_blocking)

        return AugmentDraw(
            jitter=JitterParams(**{k: move(v) for k, v in self.jitter.__dict__.items()}),
            groups=self.groups.to(device),
            flipped=move(self.flipped),
            K=[move(k) for k in self.K],
            inv_K=[move(k) for k in self.inv_K],
            side_sign=move(self.side_sign),
            flip_sign=move(self.flip_sign),
            stereo_T=None if self.stereo_T is None else move(self.stereo_T),
            channel_perm=None if self.channel_perm is None else move(self.channel_perm),
            gt_sizes=self.gt_sizes,
            frame_jitter=None if self.frame_jitter is None else self.frame_jitter.to(device),
        )


class Augment(nn.Module):
    """Batched on-device augmentation (no parameters); ``forward(batch, generator, train)``."""

    def __init__(self, config: AugmentConfig | None = None) -> None:
        super().__init__()
        self.config = config or AugmentConfig()
        if self.config.height % 2 ** (self.config.scales - 1) or self.config.scales < 1:
            raise ValueError(
                f"height {self.config.height} does not halve {self.config.scales} times"
            )

    def draw(
        self, batch: Batch, generator: torch.Generator | None = None, train: bool = True
    ) -> AugmentDraw:
        """Every random draw and geometric parameter of ``batch``, on ``batch``'s device.

        Call it on the host batch (before the copy to the GPU) with a CPU generator: the
        jitter groups, flips, intrinsics and their inverses are then computed without making the
        CPU wait for the GPU, and :meth:`AugmentDraw.to` moves them in non-blocking copies.
        ``train=False``: no jitter, no flip.
        """
        cfg = self.config
        n = len(batch)
        jitter = JitterParams.draw(
            n,
            prob=cfg.jitter_prob if train else 0.0,
            brightness=cfg.brightness,
            contrast=cfg.contrast,
            saturation=cfg.saturation,
            hue=cfg.hue,
            generator=generator,
        )
        gen_device = generator.device if generator is not None else None
        flip_draw = torch.rand(n, generator=generator, device=gen_device) < cfg.flip_prob
        device = batch.target.device
        flipped = (flip_draw & train).to(device)
        jitter = jitter.to(device)
        perm = None
        if cfg.channel_swap_prob > 0:  # no draw when off: other methods' streams stay as they were
            perm = draw_channel_permutations(n, cfg.channel_swap_prob if train else 0.0, generator)
            perm = perm.to(device)
        frames = tuple(f for f in FRAME_NAMES if getattr(batch, f) is not None)
        in_size = tuple(batch.target.shape[-2:])
        K = [
            self._intrinsics(batch.K.to(device), in_size, cfg.size(s), flipped)
            for s in range(cfg.scales)
        ]
        side_sign = torch.where(batch.side.to(device) == 0, -1.0, 1.0)
        flip_sign = torch.where(flipped, -1.0, 1.0)
        stereo_T = None
        if "stereo" in frames:
            stereo_T = stereo_transform(side_sign * flip_sign * cfg.stereo_baseline)
        shared = jitter.repeat(len(frames))
        frame_jitter = None  # drawn last: with "item" the draws are those of before
        if cfg.jitter_draws == "frame":
            frame_jitter = FrameJitter.draw(shared.apply, cfg, generator).to(device)
        return AugmentDraw(
            jitter=jitter,
            groups=jitter_groups(shared),
            flipped=flipped,
            K=K,
            inv_K=[torch.linalg.inv(k) for k in K],
            side_sign=side_sign,
            flip_sign=flip_sign,
            stereo_T=stereo_T,
            channel_perm=perm,
            gt_sizes=None if batch.gt_size is None else tuple(map(tuple, batch.gt_size.tolist())),
            frame_jitter=frame_jitter,
        )

    def forward(
        self,
        batch: Batch,
        generator: torch.Generator | None = None,
        train: bool = True,
        draw: AugmentDraw | None = None,
    ) -> Augmented:
        """Augment ``batch`` (already on the device) with ``draw`` (:meth:`draw`, moved to the
        device), or with a draw made here from ``generator`` and ``train``."""
        cfg = self.config
        if draw is None:
            draw = self.draw(batch, generator, train)
        jitter, flipped = draw.jitter, draw.flipped
        frames = tuple(f for f in FRAME_NAMES if getattr(batch, f) is not None)
        stacked = torch.cat([getattr(batch, f) for f in frames]).float().div_(255.0)
        pyramid = image_pyramid(stacked, cfg)
        flip_all = flipped.repeat(len(frames))
        pyramid = [flip_images(x, flip_all) for x in pyramid]
        if draw.frame_jitter is not None:
            jittered = draw.frame_jitter.apply(pyramid)
        else:
            shared = jitter.repeat(len(frames))
            jittered = [color_jitter(x, shared, draw.groups) for x in pyramid]
        if draw.channel_perm is not None:
            perm_all = draw.channel_perm.repeat(len(frames), 1)
            jittered = [permute_channels(x, perm_all) for x in jittered]
        color = {f: [x.chunk(len(frames))[i] for x in pyramid] for i, f in enumerate(frames)}
        color_aug = {f: [x.chunk(len(frames))[i] for x in jittered] for i, f in enumerate(frames)}
        out = Augmented(
            color=color,
            color_aug=color_aug,
            K=draw.K,
            inv_K=draw.inv_K,
            flipped=flipped,
            jittered=jitter.apply,
            side_sign=draw.side_sign,
            flip_sign=draw.flip_sign,
            baseline=batch.baseline.to(flipped.device),
            jitter=jitter,
            stereo_T=draw.stereo_T,
            has_prev=batch.has_prev,
            has_next=batch.has_next,
            channel_perm=draw.channel_perm,
            frames=frames,
        )
        size = cfg.size(0)
        if batch.seg is not None:
            seg = resize_nearest(batch.seg.unsqueeze(1), size)
            out.seg = flip_images(seg, flipped).squeeze(1)
        if batch.depth is not None:
            depth = resize_nearest(batch.depth.unsqueeze(1).float(), size)
            out.depth = flip_images(depth, flipped)
        if batch.hint_depth is not None:
            hint = batch.hint_depth.unsqueeze(1).float()
            if (alt := batch.hint_depth_flipped) is not None:  # depth-hints flips, then resizes
                hint = torch.where(flipped.view(-1, 1, 1, 1), alt.unsqueeze(1).float(), hint)
            out.hint_depth = flip_images(resize_nearest(hint, size), flipped)
        if batch.gt_depth is not None:
            out.gt = flip_images(gt_at_size(batch.gt_depth, draw.gt_sizes, size), flipped)
        return out

    def _intrinsics(
        self, K: Tensor, in_size: tuple[int, int], size: tuple[int, int], flipped: Tensor
    ) -> Tensor:
        if self.config.normalised_K is not None:
            k = torch.eye(4, dtype=torch.float32, device=K.device)
            given = torch.tensor(self.config.normalised_K, dtype=torch.float32, device=K.device)
            k[:3, :3] = given[:3, :3]
            k = k.expand(K.shape[0], 4, 4).clone()
            k[:, 0] *= size[1]
            k[:, 1] *= size[0]
            return k
        return pixel_intrinsics(K, in_size, size, flipped)


def image_pyramid(images: Tensor, config: AugmentConfig) -> list[Tensor]:
    """Scales 0..S-1 of float ``(B, 3, H, W)``: scale 0 resized from the input, scale s from s-1.

    Bilinear (``align_corners=False``), antialiased when shrinking.
    """
    out = [resize_bilinear(images, config.size(0))]
    for s in range(1, config.scales):
        out.append(resize_bilinear(out[-1], config.size(s)))
    return out


def pixel_intrinsics(
    K: Tensor, in_size: tuple[int, int], size: tuple[int, int], flipped: Tensor
) -> Tensor:
    """4x4 pixel intrinsics of an image resized from ``in_size`` to ``size`` (H, W), then flipped.

    Args:
        K: float ``(B, 3, 3)`` pixel intrinsics at ``in_size``.
        flipped: bool ``(B,)``; for those ``cx' = w - 1 - cx``.

    Returns:
        float32 ``(B, 4, 4)`` (pixel centres at integers, see the module docstring).
    """
    sy, sx = size[0] / in_size[0], size[1] / in_size[1]
    out = torch.zeros(K.shape[0], 4, 4, dtype=torch.float32, device=K.device)
    out[:, :3, :3] = K.float()
    out[:, 3, 3] = 1.0
    out[:, 0, :2] *= sx  # fx (and skew)
    out[:, 1, :2] *= sy
    out[:, 0, 2] = (out[:, 0, 2] + 0.5) * sx - 0.5
    out[:, 1, 2] = (out[:, 1, 2] + 0.5) * sy - 0.5
    mirrored = out.clone()
    mirrored[:, 0, 2] = size[1] - 1 - out[:, 0, 2]
    mirrored[:, 0, 1] = -out[:, 0, 1]  # skew changes sign with x
    return torch.where(flipped.view(-1, 1, 1), mirrored, out)


def stereo_transform(shift: Tensor) -> Tensor:
    """``(B, 4, 4)`` identity with ``T[:, 0, 3] = shift`` (``(B,)``, in training units)."""
    T = torch.eye(4, dtype=torch.float32, device=shift.device).repeat(shift.shape[0], 1, 1)
    T[:, 0, 3] = shift
    return T
