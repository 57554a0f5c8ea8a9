"""DenseDepth (training.md section 8): supervised depth on NYU Depth V2 from single frames.

The network (:func:`train.models.densedepth.densedepth_net`: DenseNet-169 + the Keras decoder)
sees RGB in [0, 1] without normalisation and regresses ``y = 1000 / depth_cm`` at half the input
resolution. Targets come from the store:

* labeled stores (``nyu-labeled``): ``gt_depth``, NYU's in-painted depths;
* raw stores (``nyu-raw``) prepared with ``prepare-nyu --fill``: their in-painted ``depth`` (how
  the 50K-pair training set of the paper was made). A raw store without filled depth is refused.

Per batch: the on-device augmentation flips image and target together (p = ``flip_prob``) and
permutes the colour channels of the network input (p = ``channel_swap_prob``, the paper's 0.25;
see :mod:`pipelines.loader.augment` for the Keras code's behaviour). The target depth (metres, at
the model input size) becomes ``1000 / depth_cm`` clipped to 10..1000 cm and is resized to the
output size with an anti-aliased bilinear filter (the reference resizes its targets with
scikit-image's anti-aliased ``resize``); pixels without depth (0) are left out of the resize by
normalised filtering and masked. The loss is one of :data:`train.losses.SUPERVISED_LOSSES`
(``--set loss=densedepth|berhu|silog|l1``), all in the network's ``y`` units: the reference's
``densedepth`` loss takes no mask, so masked pixels are given the (detached) prediction as target
there.

The seed re-implementation's variant max-pools the input by 4 (``--set input_pool=4``): the
network then sees the max-pooled image, zero-padded at the bottom and right to multiples of 32,
and its output is cropped back (our reading; the seed's code is not available).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pipelines.loader import AugmentConfig, Augmented
from pipelines.store.constants import NYU_FILLED_DEPTH
from train.engine.config import TrainConfig
from train.losses.supervised import berhu_loss, densedepth_loss, silog_loss, supervised_loss
from train.methods.base import (
    Forward,
    LoaderRequest,
    LossOutput,
    Method,
    Networks,
    OptimiserSpec,
    Predictor,
    Scaling,
    adam,
)
from train.methods.registry import register_method, register_preset
from train.models import build_network
from train.models.densedepth import depth_to_target, output_to_depth

if TYPE_CHECKING:
    from pipelines.store import Store

#: Smallest network output used by the log in the SILog loss (``y`` = 1000 / depth_cm lies in
#: 1..100 once trained; an untrained network may output values <= 0).
SILOG_MIN_Y = 1e-2


@dataclass(frozen=True)
class DenseDepthParams:
    """DenseDepth's own settings (reference defaults).

    ``loss``: ``densedepth`` (the Keras loss: SSIM + gradients + ``theta`` L1), ``berhu``
    (``c_fraction``), ``silog`` (``silog_lambda``) or ``l1``. ``channel_swap_prob``: colour
    channel permutation probability (paper 0.25). ``amsgrad``: Adam's AMSGrad variant (the Keras
    code's ``Adam(amsgrad=True)``). ``input_pool``: max-pool the input by this factor first (1 =
    off; the seed re-implementation used 4).
    """

    loss: str = "densedepth"
    theta: float = 0.1
    c_fraction: float = 0.2
    silog_lambda: float = 0.85
    channel_swap_prob: float = 0.25
    amsgrad: bool = True
    input_pool: int = 1

    def __post_init__(self) -> None:
        supervised_loss(self.loss)  # ValueError naming the choices
        if not 0.0 <= self.channel_swap_prob <= 1.0:
            raise ValueError(f"channel_swap_prob must be in [0, 1], not {self.channel_swap_prob}")
        if self.input_pool < 1:
            raise ValueError(f"input_pool must be >= 1, not {self.input_pool}")


class DenseDepthNetwork(nn.Module):
    """The depth network behind the optional input max-pooling: RGB ``(B, 3, H, W)`` -> ``y``
    ``(B, 1, H / (2 pool), W / (2 pool))`` (rounded down)."""

    def __init__(self, net: nn.Module, pool: int = 1) -> None:
        super().__init__()
        self.net = net
        self.pool = pool

    def forward(self, image: Tensor) -> Tensor:
        if self.pool == 1:
            return self.net(image)
        x = F.max_pool2d(image, self.pool)
        h, w = x.shape[-2:]
        x = F.pad(x, (0, -w % 32, 0, -h % 32))
        return self.net(x)[..., : h // 2, : w // 2]


class DenseDepthPredictor(Predictor):
    """Metres (0.1..10) at the network's output resolution, metric (no median scaling)."""

    scaling = Scaling(median=False, factor=1.0)

    def __init__(self, depth: nn.Module) -> None:
        super().__init__()
        self.depth = depth

    def forward(self, image: Tensor) -> Tensor:
        return output_to_depth(self.depth(image).float())


def target_at(depth: Tensor, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Metric depth ``(B, 1, H, W)`` (0 = none) -> ``(y, valid)`` at ``size``.

    ``y = 1000 / depth_cm`` (10..1000 cm), resized with an anti-aliased bilinear filter over the
    valid pixels only (normalised filtering); ``valid`` where every pixel under the filter had
    depth.
    """
    valid = (depth > 0).float()
    y = depth_to_target(depth) * valid
    if tuple(depth.shape[-2:]) == tuple(size):
        return y, valid.bool()
    num = F.interpolate(y, size=size, mode="bilinear", align_corners=False, antialias=True)
    den = F.interpolate(valid, size=size, mode="bilinear", align_corners=False, antialias=True)
    return num / den.clamp_min(1e-6), den > 0.999


@register_method
class DenseDepth(Method):
    """DenseDepth: one network, one (AMSGrad) Adam, a supervised loss on dense depth."""

    name = "densedepth"
    Params = DenseDepthParams
    datasets = ("nyu-labeled", "nyu-raw")

    def build_networks(self, device: torch.device | str = "cpu") -> Networks:
        torch.manual_seed(self.config.seed)
        weights = self.config.encoder_weights
        net = build_network("densedepth_depth", weights=weights)
        depth = DenseDepthNetwork(net, self.params.input_pool).to(device)
        return Networks({"depth": depth})

    def loader_request(self) -> LoaderRequest:
        """``gt_depth`` of labeled stores, the (filled) ``depth`` of raw ones."""
        extras = ("depth",) if self.config.dataset == "nyu-raw" else ("gt",)
        return LoaderRequest(frames=(), extras=extras)

    def augment_config(self) -> AugmentConfig:
        c = self.config
        return AugmentConfig(
            height=c.height,
            width=c.width,
            scales=1,
            jitter_prob=c.jitter_prob,
            flip_prob=c.flip_prob,
            channel_swap_prob=self.params.channel_swap_prob,
        )

    def optimisers(self, nets: Networks) -> list[OptimiserSpec]:
        """Adam (AMSGrad unless ``amsgrad=false``; the fused kernel), step decay as every
        method."""
        c = self.config
        optimiser = adam(nets.parameters(), lr=c.lr, amsgrad=self.params.amsgrad)
        step, gamma = c.scheduler_step, c.scheduler_gamma
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda e: gamma ** (e // step))
        return [OptimiserSpec(optimiser, scheduler)]

    def loss(
        self, run: Forward, aug: Augmented, generator: torch.Generator | None = None
    ) -> LossOutput:
        p = self.params
        depth = aug.gt if aug.gt is not None else aug.depth
        if depth is None:
            raise ValueError("densedepth: the batch has neither gt_depth nor depth")
        with run.autocast():
            y = run.nets["depth"](run.prepare(aug.color_aug["target"][0]))
        y = y.float()
        target, valid = target_at(depth, tuple(y.shape[-2:]))
        if p.loss == "densedepth":
            total = densedepth_loss(torch.where(valid, target, y.detach()), y, theta=p.theta)
        elif p.loss == "berhu":
            total = berhu_loss(y, target, valid, c_fraction=p.c_fraction)
        elif p.loss == "silog":
            total = silog_loss(y.clamp_min(SILOG_MIN_Y), target, valid, p.silog_lambda)
        else:  # l1, or any other loss of the common (pred, target, mask) signature
            total = supervised_loss(p.loss)(y, target, valid)
        with torch.no_grad():  # no boolean indexing: nothing here waits for the device
            weight = valid.float()
            l1 = ((y - target).abs() * weight).sum() / weight.sum().clamp_min(1.0)
        scalars = {"l1_y": l1, "valid_fraction": weight.mean()}
        return LossOutput(total, scalars, {"depth": output_to_depth(y.detach())})

    def predictor(self, nets: Networks) -> Predictor:
        return DenseDepthPredictor(nets["depth"])

    def check_store(self, store: Store) -> None:
        """The base checks, then: a labeled preset needs ``gt_depth``; a raw one a ``depth``
        in-painted at preparation (``prepare-nyu --fill``)."""
        super().check_store(store)
        c = self.config
        if "gt" in self.loader_request().extras and not store.has("gt_depth"):
            raise ValueError(
                f"{store.path}: {c.preset} trains on dense ground truth (gt_depth, as in "
                "labeled_train.zarr) and this store has none"
            )
        if "depth" in self.loader_request().extras:
            filled = store.attrs.get("frames", {}).get("depth") == NYU_FILLED_DEPTH
            if not store.has("depth") or not filled:
                raise ValueError(
                    f"{store.path}: {c.preset} needs dense depth and this {store.dataset} "
                    "store's depth was not in-painted: prepare it with `prepare-nyu --fill`"
                )


# Presets (training.md 8): DenseNet-169 + Keras decoder, 480x640, batch 8, Adam (AMSGrad) 1e-4, 20
# epochs at a constant learning rate (the Keras ReduceLROnPlateau never goes below 9e-5), mirror
# p = 0.5, channel swap p = 0.25, no colour jitter; on the labeled set's in-painted depths, or on a
# raw store prepared with ``prepare-nyu --fill`` (the paper's 50K pairs).
for _name, _dataset in (("densedepth-nyu", "nyu-labeled"), ("densedepth-nyu-raw", "nyu-raw")):
    register_preset(
        TrainConfig(
            preset=_name,
            method="densedepth",
            dataset=_dataset,
            height=480,
            width=640,
            batch_size=8,
            epochs=20,
            scheduler_step=20,
            scheduler_gamma=1.0,
            jitter_prob=0.0,
            flip_prob=0.5,
            params=DenseDepthParams(),
        )
    )
