"""Lite-Mono (modern_methods.md section 1): a light CNN + cross-covariance-attention encoder
trained with Monodepth2's self-supervised loss.

This is :class:`~train.methods.monodepth2.Monodepth2` with

* the depth network ``litemono_depth`` (variant ``lite-mono``, ``-small``, ``-tiny``, ``-8m``;
  drop path 0.2 in training) and Monodepth2's separate ResNet-18 pose network, whose decoder
  convs start truncated-normal (std 0.02), bias 0, as Lite-Mono initialises them;
* the loss at scales 0-2 (upsampled to full size, mean over the 3 scales);
* two AdamW optimisers (weight decay 1e-2 on every parameter), depth and pose, each with the
  reference's cosine schedule with warm restarts per epoch (:class:`CosineRestartLR`):
  ``lr_depth`` / ``lr_pose`` = (max, min, period in epochs) = the reference's ``--lr a b c d e
  f``; the maximum decays by ``lr_restart_decay`` at every restart;
* ``encoder_init``: an ImageNet-pretrained Lite-Mono file (``--mypretrain``, its ``model``
  entry) loaded into the depth encoder when a run starts (the README's recipe uses one);
* colour jitter: ``jitter = "frame"`` draws every frame and scale of a jittered sample its own
  parameters, as the reference's loader does; ``"item"`` one draw per sample (Monodepth2's and
  ManyDepth's, whose maintainers call it the intent); ``"auto"`` (default) is ``"frame"`` under
  ``--exact`` and ``"item"`` otherwise, and the training header names the choice.

The run's ``lr``, ``scheduler_step`` and ``scheduler_gamma`` are Monodepth2's and unused here.
Evaluation: per-image median scaling (mono); ``predict`` resizes its inputs with PIL LANCZOS as
Lite-Mono's ``test_simple.py`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipelines.loader import AugmentConfig, Augmented
from pipelines.store import Store
from train.engine.config import TrainConfig
from train.losses.monodepth2 import Monodepth2LossConfig
from train.methods.base import (
    Forward,
    LoaderRequest,
    LossOutput,
    Networks,
    OptimiserSpec,
    Predictor,
    Reference,
    Scaling,
)
from train.methods.monodepth2 import SOURCE_NAMES, Monodepth2, Monodepth2Predictor
from train.methods.registry import register_method, register_preset
from train.methods.schedules import CosineRestartLR
from train.models import build_network
from train.models.litemono_encoder import VARIANTS, reference_size
from train.models.litemono_weights import load_pretrained

JITTER_MODES = ("auto", "item", "frame")
REFERENCE_SPLIT = "eigen_zhou"


@dataclass(frozen=True)
class LiteMonoParams:
    """Lite-Mono's settings (the README's recipe; see the module docstring).

    Networks: ``variant``, ``drop_path`` (largest drop-path rate), ``encoder_init`` (ImageNet
    Lite-Mono file; applied after ``train --init``, so leave it unset when starting from a
    checkpoint), ``pose_layers``. Data: ``frame_ids`` (0 then -1 and/or 1), ``intrinsics``
    (``"monodepth2"`` fixed KITTI matrix or ``"store"``), ``jitter``. Loss: ``scales`` (1..3),
    ``min_depth``, ``max_depth``, ``disparity_smoothness``. Optimisers: ``lr_depth``,
    ``lr_pose`` = (max, min, period), ``lr_restart_decay``, ``weight_decay``.
    """

    variant: str = "lite-mono"
    drop_path: float = 0.2
    encoder_init: str | None = None
    pose_layers: int = 18
    frame_ids: tuple[int, ...] = (0, -1, 1)
    intrinsics: str = "monodepth2"
    jitter: str = "auto"
    scales: int = 3
    min_depth: float = 0.1
    max_depth: float = 100.0
    disparity_smoothness: float = 1e-3
    lr_depth: tuple[float, float, int] = (1e-4, 5e-6, 31)
    lr_pose: tuple[float, float, int] = (1e-4, 1e-5, 31)
    lr_restart_decay: float = 0.9
    weight_decay: float = 1e-2

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, not {self.variant!r}")
        if not 0 <= self.drop_path < 1:
            raise ValueError(f"drop_path must be in [0, 1), not {self.drop_path}")
        ids = self.frame_ids
        if not ids or ids[0] != 0 or len(ids) < 2 or any(f not in (-1, 1) for f in ids[1:]):
            raise ValueError(f"frame_ids must be 0 then -1 and/or 1, got {ids}")
        if self.intrinsics not in ("monodepth2", "store"):
            raise ValueError(f"intrinsics must be 'monodepth2' or 'store', not {self.intrinsics!r}")
        if self.jitter not in JITTER_MODES:
            raise ValueError(f"jitter must be one of {JITTER_MODES}, not {self.jitter!r}")
        if not 1 <= self.scales <= 3:
            raise ValueError(f"scales must be 1..3, not {self.scales}")
        for name in ("lr_depth", "lr_pose"):
            value = getattr(self, name)
            if len(value) != 3 or not 0 <= value[1] <= value[0] or value[0] <= 0 or value[2] < 1:
                raise ValueError(
                    f"{name} must be max,min,period with 0 <= min <= max, max > 0 and a period "
                    f">= 1 epoch, got {value}"
                )

    # What Monodepth2's shared code reads: mono, no hints, no feature-metric term.
    hints = False
    use_stereo = False

    @property
    def temporal_ids(self) -> tuple[int, ...]:
        return self.frame_ids[1:]

    def loss_config(self) -> Monodepth2LossConfig:
        return Monodepth2LossConfig(
            min_depth=self.min_depth,
            max_depth=self.max_depth,
            disparity_smoothness=self.disparity_smoothness,
        )


class LiteMonoPredictor(Monodepth2Predictor):
    """Depth of the scale-0 disparity (as Monodepth2's); its inputs are resized with PIL
    LANCZOS by ``predict`` (``input_resize``), as ``test_simple.py`` does."""

    input_resize = "lanczos"


@register_method
class LiteMono(Monodepth2):
    """Lite-Mono: Lite-Mono depth network, Monodepth2 pose network and loss, two AdamW."""

    name = "litemono"
    Params = LiteMonoParams
    datasets = ("kitti-raw", "nyu-raw")
    upgrades_formats = ()  # Monodepth2's older files are Monodepth2's

    # -- networks ------------------------------------------------------------------------------
    def build_networks(self, device: torch.device | str = "cpu") -> Networks:
        c, p = self.config, self.params
        torch.manual_seed(c.seed)
        depth = build_network(
            "litemono_depth",
            variant=p.variant,
            height=c.height,
            width=c.width,
            drop_path_rate=p.drop_path,
            num_scales=p.scales,
        )
        pose = build_network(
            "monodepth2_pose", num_layers=p.pose_layers, encoder_weights=c.encoder_weights
        )
        for module in pose.decoder.modules():  # Lite-Mono's PoseDecoder initialisation
            if isinstance(module, nn.Conv2d):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
        return Networks({"depth": depth.to(device), "pose": pose.to(device)})

    def initialise(self, nets: Networks) -> None:
        """The ImageNet-pretrained encoder of ``encoder_init``, when given."""
        if self.params.encoder_init is not None:
            load_pretrained(nets["depth"].encoder, Path(self.params.encoder_init))

    def loader_request(self) -> LoaderRequest:
        return LoaderRequest(frames=tuple(SOURCE_NAMES[f] for f in self.params.frame_ids[1:]))

    @property
    def jitter_draws(self) -> str:
        """``"frame"`` or ``"item"``: ``jitter``, with ``"auto"`` resolved by ``--exact``."""
        jitter = self.params.jitter
        if jitter == "auto":
            return "frame" if self.config.exact else "item"
        return jitter

    def augment_config(self) -> AugmentConfig:
        """Monodepth2's, with the colour jitter drawn as :attr:`jitter_draws` says."""
        return replace(super().augment_config(), jitter_draws=self.jitter_draws)

    def optimisers(self, nets: Networks) -> list[OptimiserSpec]:
        """AdamW per network (depth, pose), each with its cosine schedule (module docstring)."""
        p = self.params
        specs = []
        for name, (max_lr, min_lr, period) in (("depth", p.lr_depth), ("pose", p.lr_pose)):
            params = [q for q in nets[name].parameters() if q.requires_grad]
            optimiser = torch.optim.AdamW(
                params,
                lr=max_lr,
                betas=(0.9, 0.999),
                eps=1e-8,
                weight_decay=p.weight_decay,
                fused=True,  # never reads the step count back to the host
            )
            schedule = CosineRestartLR(optimiser, max_lr, min_lr, int(period), p.lr_restart_decay)
            specs.append(OptimiserSpec(optimiser, schedule, "epoch", name=name))
        return specs

    # -- loss and prediction -------------------------------------------------------------------
    def loss(
        self, run: Forward, aug: Augmented, generator: torch.Generator | None = None
    ) -> LossOutput:
        disps, views = self.disparities_and_views(run, aug)
        return self.photometric_loss(disps, views, aug, generator)

    def predictor(self, nets: Networks) -> Predictor:
        p = self.params
        return LiteMonoPredictor(nets["depth"], p.min_depth, p.max_depth, Scaling())

    # -- the header ----------------------------------------------------------------------------
    def reference(self) -> Reference | None:
        """Lite-Mono's ``train.py``: one GPU, the README's KITTI JPEGs resized with PIL LANCZOS,
        eigen_zhou."""
        if self.config.dataset != "kitti-raw":
            return None
        return Reference("Lite-Mono's train.py", "jpg", "lanczos", REFERENCE_SPLIT)

    def store_deviations(self, store: Store) -> list[str]:
        """How this run departs from the reference's recipe beyond the settings (header)."""
        c, p = self.config, self.params
        out = []
        if self.jitter_draws == "item":
            out.append(
                "colour jitter: one draw per sample for all its frames and scales (reference: "
                "each frame and scale its own draw; --exact or --set jitter=frame)"
            )
        if p.encoder_init is None:
            out.append(
                "encoder_init unset: the depth encoder starts from random weights unless --init "
                "gives it (reference: ImageNet-pretrained Lite-Mono weights, --mypretrain; --set "
                "encoder_init=FILE)"
            )
        size = reference_size(p.variant, c.height, c.width)
        if size != (c.height, c.width):
            out.append(
                f"encoder dilations of {size[0]}x{size[1]} at {c.height}x{c.width} (the "
                "reference defines them for 192x640 and 320x1024 only)"
            )
        return out

    def describe(self) -> str:
        return f"{self.params.variant}, AdamW"

    @classmethod
    def upgrade_checkpoint(cls, payload: dict[str, Any]) -> dict[str, Any]:
        """Nothing to upgrade (Monodepth2's fix-ups are for its own older files)."""
        return payload


# Presets: the README's recipe (batch 12, 30 epochs, --lr 1e-4 5e-6 31 1e-4 1e-5 31, drop path
# 0.2) for every published row (spec 1.9): the four variants at 640x192 and at 1024x320 (the
# reference states no other recipe for 1024x320). The ImageNet encoder: --set encoder_init=FILE.
for _variant in VARIANTS:
    _short = _variant.removeprefix("lite-mono").removeprefix("-")
    for _suffix, (_height, _width) in (("m", (192, 640)), ("1024-m", (320, 1024))):
        _name = f"litemono-{_short}-{_suffix}" if _short else f"litemono-{_suffix}"
        register_preset(
            TrainConfig(
                preset=_name,
                method="litemono",
                height=_height,
                width=_width,
                batch_size=12,
                epochs=30,
                params=LiteMonoParams(variant=_variant),
            )
        )
