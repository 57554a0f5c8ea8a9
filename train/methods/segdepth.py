"""SegDepth (training.md section 6): Monodepth2 guided by a segmentation U-Net on its disparity.

Monodepth2 unchanged (this class is :class:`~train.methods.monodepth2.Monodepth2` with one more
network and one more term): a U-Net (``segdepth_unet``: EfficientNet-B3 encoder, smp decoder, a
sigmoid head with 2 channels) reads the full-resolution disparity and predicts background /
foreground, supervised by the store's DeepLabv3 masks (foreground = VOC class > 0, ``seg``
filled by ``cli.py masks``). Total loss = Monodepth2's + ``segmentation_term`` (5e-4) times
:func:`train.losses.segdepth.segmentation_loss`; the segmentation term also trains the depth
network, through the disparity it feeds the U-Net.

Two things the reference got wrong are fixed by default, each with a switch that reproduces it:

* ``reference_zero_unet_grads``: SegDepth's loop zeroes the U-Net's gradients immediately before
  the U-Net's optimiser step, so the U-Net never changes (only its BatchNorm statistics do) and
  the segmentation loss acts on the depth net through a fixed random (or ImageNet) U-Net. Here
  the U-Net trains with its own Adam (``unet_lr`` 1e-3); ``true`` reproduces the reference.
* ``reference_unflipped_masks``: the reference's loader flips the image but not its mask, so half
  of the training targets are mirrored relative to the disparity. Here the masks flip with the
  image (:mod:`pipelines.loader.augment`); ``true`` reproduces the reference.

Remaining differences from the reference for a given store and run (the masks' recipe, the
U-Net's ImageNet weights) are listed by :func:`segdepth_deviations` for the training header.

``weight_map`` (an extension; the report describes it but the code never computes it): Ronneberger
et al.'s U-Net weight map (:func:`train.losses.segdepth.unet_weight_map`, w0 = 10, sigma = 5 px,
class-balanced) instead of weight 1.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import torch
from torch import Tensor

from pipelines.loader import Augmented, flip_images
from pipelines.store import Store
from pipelines.store.passrecord import pass_refusal
from train.engine.config import TrainConfig
from train.losses.segdepth import segmentation_loss, unet_weight_map
from train.methods.base import (
    Forward,
    LoaderRequest,
    LossOutput,
    Networks,
    OptimiserSpec,
    Reference,
)
from train.methods.monodepth2 import Monodepth2, Monodepth2Params
from train.methods.registry import register_method, register_preset
from train.models import build_network


@dataclass(frozen=True)
class SegDepthParams(Monodepth2Params):
    """Monodepth2's settings plus SegDepth's (reference defaults; see the module docstring).

    ``segmentation_term``: alpha of ``L = mean_s loss_s + alpha * Lb``. ``unet_lr``: the U-Net's
    Adam learning rate (its step decay follows the run's ``scheduler_step`` / ``scheduler_gamma``,
    or ``unet_scheduler_step``). ``unet_weights``: encoder weights of the U-Net (an
    ``EfficientNet_B3_Weights`` name or a file; None = ImageNet when ``pretrained``, random
    otherwise). ``weight_map`` (extension) with ``weight_w0`` / ``weight_sigma``.
    ``reference_zero_unet_grads`` / ``reference_unflipped_masks``: reproduce the reference's bugs.
    """

    segmentation_term: float = 5e-4
    unet_lr: float = 1e-3
    unet_scheduler_step: int | None = None
    unet_weights: str | None = None
    weight_map: bool = False
    weight_w0: float = 10.0
    weight_sigma: float = 5.0
    reference_zero_unet_grads: bool = False
    reference_unflipped_masks: bool = False


class _StepWithoutGradients(torch.optim.Adam):
    """The reference's U-Net step: its gradients are zeroed just before, so nothing moves."""

    def step(self, closure: Any = None) -> Any:
        self.zero_grad(set_to_none=True)
        return super().step(closure)


@register_method
class SegDepth(Monodepth2):
    """SegDepth: Monodepth2 + a U-Net on the disparity, supervised by foreground masks."""

    name = "segdepth"

    def reference(self) -> Reference | None:
        """SegDepth's ``train.py``: monodepth2's loop on PNGs (``--png`` defaults to true), the
        eigen_zhou subset split of the report."""
        if self.config.dataset != "kitti-raw":
            return None
        return Reference(
            "SegDepth's train.py",
            images="png",
            resize="lanczos",
            split="eigen_zhou_subset",
            notes=(
                ()
                if self.params.unet_weights is not None
                else (
                    "U-Net encoder from torchvision's EfficientNet-B3 ImageNet weights "
                    "(reference: efficientnet-b3-5fb5a3c3.pth of EfficientNet-PyTorch)",
                )
            ),
        )

    def store_deviations(self, store: Store) -> list[str]:
        """Masks made by another recipe than SegDepth's create_segmentation_masks.py."""
        out = super().store_deviations(store)
        recipe = (store.attrs.get("masks") or {}).get("recipe", "default")
        if self.config.dataset == "kitti-raw" and recipe != "segdepth":
            out.append(
                f"masks from the {recipe} recipe (reference: create_segmentation_masks.py; "
                "cli.py masks STORE --recipe segdepth --kitti-root ROOT)"
            )
        return out

    Params = SegDepthParams
    datasets = ("kitti-raw", "nyu-raw")

    def build_networks(self, device: torch.device | str = "cpu") -> Networks:
        nets = super().build_networks(device)  # seeds torch, then depth (+ pose)
        p, c = self.params, self.config
        weights = p.unet_weights or ("IMAGENET1K_V1" if c.pretrained else None)
        nets.modules["unet"] = build_network("segdepth_unet", weights=weights).to(device)
        return nets

    def loader_request(self) -> LoaderRequest:
        base = super().loader_request()
        return LoaderRequest(frames=base.frames, extras=("seg", *base.extras))

    def optimisers(self, nets: Networks) -> list[OptimiserSpec]:
        """Adam ``lr`` over depth (+ pose), and the U-Net's own Adam ``unet_lr``; both with the
        step decay of the run (the U-Net's every ``unet_scheduler_step`` epochs when set)."""
        c, p = self.config, self.params
        others = [m.parameters() for k, m in nets.trainable().items() if k != "unet"]
        main = torch.optim.Adam(itertools.chain(*others), lr=c.lr)
        adam = _StepWithoutGradients if p.reference_zero_unet_grads else torch.optim.Adam
        unet = adam(nets["unet"].parameters(), lr=p.unet_lr)
        gamma = c.scheduler_gamma
        specs = []
        for name, optimiser, step in (
            ("main", main, c.scheduler_step),
            ("unet", unet, p.unet_scheduler_step or c.scheduler_step),
        ):
            schedule = torch.optim.lr_scheduler.LambdaLR(
                optimiser, lambda e, step=step: gamma ** (e // step)
            )
            specs.append(OptimiserSpec(optimiser, schedule, name=name))
        return specs

    def loss(
        self, run: Forward, aug: Augmented, generator: torch.Generator | None = None
    ) -> LossOutput:
        p = self.params
        disps, views = self.disparities_and_views(run, aug)
        out = self.photometric_loss(disps, views, aug, generator)
        target = self.foreground(aug)
        with run.autocast():
            scores = run.nets["unet"](run.prepare(disps[0]))
        weight = None
        if p.weight_map:
            weight = unet_weight_map(target, p.weight_w0, p.weight_sigma)
        seg = segmentation_loss(scores.float(), target, weight)
        out.total = out.total + p.segmentation_term * seg
        out.scalars["segmentation_loss"] = seg.detach()
        out.images["foreground"] = scores[:, 1:2].detach().float()
        return out

    def foreground(self, aug: Augmented) -> Tensor:
        """``(B, H, W)`` long target: 1 where the (flipped) mask holds a VOC class > 0.

        With ``reference_unflipped_masks`` the flip is undone: the mask of the unflipped image
        against the flipped disparity, as the reference trains.
        """
        if aug.seg is None:
            raise ValueError("segdepth: the batch has no seg masks (the store has no 'seg')")
        seg = aug.seg
        if self.params.reference_unflipped_masks:
            seg = flip_images(seg, aug.flipped)
        return (seg > 0).long()

    def check_store(self, store: Store) -> None:
        """Monodepth2's checks, then masks computed for every frame (255 = not computed)."""
        super().check_store(store)
        how = "run `cli.py masks STORE` (or prepare with --masks deeplabv3) first"
        if not store.has("seg"):
            raise ValueError(f"{store.path}: segdepth needs foreground masks (seg); {how}")
        refusal = pass_refusal(store, "seg", self.config.preset)
        if refusal is not None:
            raise ValueError(f"{refusal} (seg 255 = not computed)")


REFERENCE_UNET_FILE = "efficientnet-b3-5fb5a3c3.pth"  # lukemelas' ImageNet B3, smp's "imagenet"
REFERENCE_MASK_WEIGHTS = "COCO_WITH_VOC_LABELS_V1"  # torchvision's pretrained=True


def segdepth_deviations(config: TrainConfig, store: Store) -> list[str]:
    """How this run's masks and U-Net encoder differ from SegDepth's own (one line each; for the
    training header: ``train.engine.header`` lists them with the other departures).

    The reference's masks are ``create_segmentation_masks.py`` of the raw PNGs (``masks
    --recipe segdepth``); its U-Net encoder starts from lukemelas' ImageNet EfficientNet-B3
    (``--set unet_weights=.../efficientnet-b3-5fb5a3c3.pth``).
    """
    out = []
    masks = store.attrs.get("masks") or {}
    recipe = str(masks.get("recipe", ""))
    if store.dataset == "kitti-raw" and not recipe.startswith("segdepth"):
        made = (
            "true synthetic object masks"
            if masks.get("arch") == "synthetic-truth"
            else "DeepLabv3 on the store's RGB images"
        )
        out.append(
            f"masks: {made} (reference: create_segmentation_masks.py, the raw PNGs read as BGR "
            "and resized bilinearly to 640x192; `cli.py masks STORE --recipe segdepth "
            "--kitti-root ROOT`)"
        )
    weights = masks.get("weights")
    if recipe.startswith("segdepth") and weights != REFERENCE_MASK_WEIGHTS:
        out.append(f"masks from DeepLabv3 weights {weights} (reference: {REFERENCE_MASK_WEIGHTS})")
    unet = config.params.unet_weights
    if unet is None and config.pretrained:
        out.append(
            "U-Net encoder from torchvision's ImageNet EfficientNet-B3 (reference: lukemelas' "
            f"{REFERENCE_UNET_FILE}, BatchNorm eps 1e-3, TensorFlow same padding; --set "
            "unet_weights=FILE takes it)"
        )
    elif unet is not None and PurePath(str(unet)).name != REFERENCE_UNET_FILE:
        out.append(f"U-Net encoder weights {unet} (reference: {REFERENCE_UNET_FILE})")
    return out


# Presets (training.md 6): monodepth2-m / -nyu-m plus the U-Net on the disparity (masks: `masks`).
register_preset(
    TrainConfig(preset="segdepth-m", method="segdepth", params=SegDepthParams(frame_ids=(0, -1, 1)))
)
register_preset(
    TrainConfig(
        preset="segdepth-nyu-m",
        method="segdepth",
        dataset="nyu-raw",
        height=288,
        width=384,
        params=SegDepthParams(frame_ids=(0, -1, 1), max_depth=10.0, intrinsics="store"),
    )
)
