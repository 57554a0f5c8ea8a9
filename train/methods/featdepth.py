"""FeatDepth (training.md section 5): feature-metric self-supervised depth, in two stages.

* Stage ``autoencoder`` (``mono_autoencoder``): FeatureNet (ResNet encoder on raw [0, 1] RGB, a
  skip-less decoder reconstructing the image at 4 scales) trained on single frames with
  :func:`train.losses.featdepth.autoencoder_loss` on the plain (un-jittered, possibly flipped)
  target. Network ``featurenet``; it predicts no depth.
* Stage ``depth`` (``mono_fm``): FeatDepth's depth network (ResNet encoder, RefineNet-style
  decoder, finest disparity at H/2), Monodepth2's separate ResNet-18 pose network (pairs resized
  to ``pose_size``), and the frozen stage-1 encoder as the feature extractor
  (:mod:`train.methods.feature_metric`, loaded from ``extractor``). Per scale s of S: the robust
  photometric minimum over sources (identities first with auto-masking) / S, and
  ``smoothness * smoothness_loss(disp_s) / 2^s / S``; once, ``feature_metric`` times the
  feature-metric term (FeatDepth adds it at every scale divided by S: the same total).

Both stages: Adam (weight decay 0), gradient clipping at L2 norm ``clip_grad_norm``, LR x
``lr_gamma`` from each epoch in ``lr_steps``, linear warm-up over ``warmup_iters`` optimiser steps
from ``lr * warmup_ratio`` (:class:`train.methods.schedules.WarmupStepLR`). Images need H, W >= 96
(:func:`train.losses.featdepth.check_featdepth_size`).

Evaluation: median scaling for mono; with the stereo source the fixed factor
``KITTI_STEREO_BASELINE / stereo_baseline`` of the checkpoint's config (0.54 / 0.015 = 36).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pipelines.loader import AugmentConfig, Augmented
from train.constants import KITTI_STEREO_BASELINE
from train.engine.config import TrainConfig
from train.geometry import KITTI_NORMALISED_INTRINSICS, disp_to_depth, warp
from train.losses.featdepth import (
    autoencoder_loss,
    check_featdepth_size,
    robust_photometric_error,
    smoothness_loss,
)
from train.losses.photometric import min_reprojection_loss
from train.methods.base import (
    Forward,
    LoaderRequest,
    LossOutput,
    Method,
    Networks,
    OptimiserSpec,
    Predictor,
    Scaling,
)
from train.methods.feature_metric import (
    FrozenExtractor,
    check_extractor_bn,
    feature_metric_term,
    load_extractor,
)
from train.methods.monodepth2 import Monodepth2Predictor
from train.methods.registry import register_method, register_preset
from train.methods.schedules import WarmupStepLR
from train.models import PoseOutput, build_network, pose_input

if TYPE_CHECKING:
    from pipelines.store import Store

FrameId = int | str
SOURCE_NAMES: dict[FrameId, str] = {-1: "prev", 1: "next", "s": "stereo"}
STAGES = ("autoencoder", "depth")


@dataclass(frozen=True)
class FeatDepthParams:
    """FeatDepth's settings (``cfg_kitti_autoencoder.py`` / ``cfg_kitti_fm.py`` defaults).

    ``stage``: ``"autoencoder"`` or ``"depth"``. ``feature_layers``: ResNet depth of the
    FeatureNet (stage autoencoder) and so of the extractor (stage depth); ``extractor``: the
    stage-1 checkpoint (``RUN/checkpoints/last.pt``); ``extractor_bn``: ``"eval"`` (running
    statistics) or ``"train"`` (FeatDepth's batch statistics, see
    :mod:`train.methods.feature_metric`). ``num_layers`` / ``pose_layers``: depth / pose ResNets.
    ``pose_size``: (H, W) the pose pairs are resized to (None = the input size).
    ``intrinsics``: ``"kitti"`` (the fixed normalised matrix) or ``"store"``. Loss:
    ``min_depth``, ``max_depth``, ``scales``, ``automask``, ``disp_norm``, ``smoothness``,
    ``feature_metric``, ``stereo_baseline`` (training units of the stereo pair); auto-encoder:
    ``dis``, ``cvt``. Schedule: ``lr_steps``, ``lr_gamma``, ``warmup_iters``, ``warmup_ratio``,
    ``clip_grad_norm`` (the run's ``lr`` is the base rate; its ``scheduler_step`` and
    ``scheduler_gamma`` are Monodepth2's and unused here).
    """

    stage: str = "depth"
    feature_layers: int = 50
    extractor: str | None = None
    extractor_bn: str = "eval"
    num_layers: int = 50
    pose_layers: int = 18
    pose_size: tuple[int, int] | None = (192, 640)
    frame_ids: tuple[FrameId, ...] = (0, -1, 1)
    intrinsics: str = "kitti"
    min_depth: float = 0.1
    max_depth: float = 100.0
    scales: int = 4
    automask: bool = True
    disp_norm: bool = True
    smoothness: float = 1e-3
    feature_metric: float = 1e-3
    stereo_baseline: float = 0.015
    dis: float = 1e-3
    cvt: float = 1e-3
    lr_steps: tuple[int, ...] = (20, 30)
    lr_gamma: float = 0.5
    warmup_iters: int = 500
    warmup_ratio: float = 1.0 / 3.0
    clip_grad_norm: float | None = 35.0

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, not {self.stage!r}")
        if not self.frame_ids or self.frame_ids[0] != 0 or len(self.frame_ids) < 2:
            raise ValueError(f"frame_ids must be 0 then sources (-1, 1, 's'), got {self.frame_ids}")
        bad = [f for f in self.frame_ids[1:] if f not in SOURCE_NAMES]
        if bad:
            raise ValueError(f"frame_ids: unsupported {bad}; use -1, 1 and 's'")
        if self.intrinsics not in ("kitti", "store"):
            raise ValueError(f"intrinsics must be 'kitti' or 'store', not {self.intrinsics!r}")
        if not 1 <= self.scales <= 4:
            raise ValueError(f"scales must be 1..4, not {self.scales}")
        if self.stereo_baseline <= 0:
            raise ValueError(f"stereo_baseline must be > 0, not {self.stereo_baseline}")
        check_extractor_bn(self.extractor_bn)

    @property
    def use_stereo(self) -> bool:
        return "s" in self.frame_ids


@register_method
class FeatDepth(Method):
    """FeatDepth: the FeatureNet auto-encoder, then depth + pose with the feature-metric loss."""

    name = "featdepth"
    Params = FeatDepthParams
    stages = STAGES
    datasets = ("kitti-raw", "nyu-raw")

    @property
    def autoencoder(self) -> bool:
        return self.params.stage == "autoencoder"

    @property
    def predicts_depth(self) -> bool:
        return not self.autoencoder

    def stage_config(self, stage: str, previous: str | None = None) -> TrainConfig:
        """This config with ``stage`` set; the depth stage after the auto-encoder takes
        ``previous`` (its last checkpoint) as ``extractor``."""
        if stage not in STAGES:
            raise ValueError(f"{self.name} has no stage {stage!r} (stages: {STAGES})")
        params = replace(self.params, stage=stage)
        if stage == "depth" and previous is not None:
            params = replace(params, extractor=str(previous))
        return replace(self.config, params=params)

    # -- networks ------------------------------------------------------------------------------
    def build_networks(self, device: torch.device | str = "cpu") -> Networks:
        p = self.params
        torch.manual_seed(self.config.seed)
        weights = self.config.encoder_weights
        if self.autoencoder:
            ae = build_network("featdepth_featurenet", num_layers=p.feature_layers, weights=weights)
            return Networks({"featurenet": ae.to(device)})
        modules: dict[str, nn.Module] = {
            "depth": build_network("featdepth_depth", num_layers=p.num_layers, weights=weights)
        }
        if any(isinstance(f, int) for f in p.frame_ids[1:]):
            modules["pose"] = build_network(
                "monodepth2_pose", num_layers=p.pose_layers, encoder_weights=weights
            )
        modules["extractor"] = FrozenExtractor(p.feature_layers)
        for module in modules.values():
            module.to(device)
        train_mode = frozenset({"extractor"}) if p.extractor_bn == "train" else frozenset()
        return Networks(modules, frozen=frozenset({"extractor"}), train_mode=train_mode)

    def initialise(self, nets: Networks) -> None:
        if not self.autoencoder:
            hint = ", or train both stages with --stages all"
            load_extractor(nets["extractor"], self.params.extractor, "featdepth stage depth", hint)

    def loader_request(self) -> LoaderRequest:
        if self.autoencoder:
            return LoaderRequest()
        return LoaderRequest(frames=tuple(SOURCE_NAMES[f] for f in self.params.frame_ids[1:]))

    def augment_config(self) -> AugmentConfig:
        c, p = self.config, self.params
        kitti = p.intrinsics == "kitti"
        return AugmentConfig(
            height=c.height,
            width=c.width,
            scales=1,  # FeatDepth's loader gives scale 0 only; the losses resize themselves
            jitter_prob=c.jitter_prob,
            flip_prob=c.flip_prob,
            stereo_baseline=p.stereo_baseline,
            normalised_K=KITTI_NORMALISED_INTRINSICS if kitti else None,
        )

    def optimisers(self, nets: Networks) -> list[OptimiserSpec]:
        c, p = self.config, self.params
        optimiser = torch.optim.Adam(nets.parameters(), lr=c.lr, weight_decay=0.0)
        scheduler = WarmupStepLR(optimiser, p.lr_steps, p.lr_gamma, p.warmup_iters, p.warmup_ratio)
        return [OptimiserSpec(optimiser, scheduler, "epoch", p.clip_grad_norm)]

    def check_store(self, store: Store) -> None:
        super().check_store(store)
        check_featdepth_size(self.config.height, self.config.width)

    # -- losses --------------------------------------------------------------------------------
    def loss(
        self, run: Forward, aug: Augmented, generator: torch.Generator | None = None
    ) -> LossOutput:
        return (
            self._autoencoder_loss(run, aug)
            if self.autoencoder
            else self._depth_loss(run, aug, generator)
        )

    def _autoencoder_loss(self, run: Forward, aug: Augmented) -> LossOutput:
        p = self.params
        image = aug.color["target"][0]
        with run.autocast():
            out = run.nets["featurenet"](run.prepare(image))
        recons = [r.float() for r in out.reconstructions]
        features = [f.float() for f in out.features]
        with torch.autocast(device_type=image.device.type, enabled=False):
            total = autoencoder_loss(image, recons, features, p.dis, p.cvt)
            with torch.no_grad():
                reconstruction = autoencoder_loss(image, recons, [])  # the reconstruction terms
        scalars = {
            "reconstruction": reconstruction,
            "feature_terms": total.detach() - reconstruction,
        }
        grey = recons[0].detach().mean(dim=1, keepdim=True)
        return LossOutput(total, scalars, {"reconstruction": grey})

    def _depth_loss(
        self, run: Forward, aug: Augmented, generator: torch.Generator | None
    ) -> LossOutput:
        p = self.params
        target_aug = run.prepare(aug.color_aug["target"][0])
        sources: list[Tensor] = []
        poses: list[Tensor] = []
        with run.autocast():
            disps = run.nets["depth"](target_aug).disps[: p.scales]
            for frame in p.frame_ids[1:]:
                name = SOURCE_NAMES[frame]
                sources.append(aug.color[name][0])
                if frame == "s":
                    if aug.stereo_T is None:
                        raise ValueError("frame 's' requested but the batch has no stereo image")
                    poses.append(aug.stereo_T)
                    continue
                pair = pose_input(
                    self._pose_size(target_aug), self._pose_size(aug.color_aug[name][0]), frame
                )
                out = run.nets["pose"](run.prepare(pair))
                pose = PoseOutput(out.axisangle.float(), out.translation.float())
                poses.append(pose.matrix(invert=frame < 0))
            target = aug.color["target"][0]
            fm = feature_metric_term(
                run.nets["extractor"],
                disps[0],
                target,
                sources,
                poses,
                aug.K[0],
                p.min_depth,
                p.max_depth,
            )
        photometric, smooth = self._photometric(disps, target, sources, poses, aug, generator)
        total = photometric + smooth + p.feature_metric * fm
        scalars = {
            "photometric": photometric.detach(),
            "smoothness": smooth.detach(),
            "feature_metric": fm.detach(),
        }
        return LossOutput(total, scalars, {"disp": disps[0].detach().float()})

    def _pose_size(self, image: Tensor) -> Tensor:
        size = self.params.pose_size
        if size is None or tuple(image.shape[-2:]) == tuple(size):
            return image
        return F.interpolate(image, list(size), mode="bilinear", align_corners=False)

    def _photometric(
        self,
        disps: list[Tensor],
        target: Tensor,
        sources: list[Tensor],
        poses: list[Tensor],
        aug: Augmented,
        generator: torch.Generator | None,
    ) -> tuple[Tensor, Tensor]:
        """(sum over scales of the photometric minimum / S, of the weighted smoothness)."""
        p = self.params
        with torch.autocast(device_type=target.device.type, enabled=False):
            batch, (height, width) = target.shape[0], target.shape[-2:]
            n_src, n_scales = len(sources), len(disps)
            stacked = torch.cat([s.float() for s in sources], dim=0)
            T = torch.cat([t.float().expand(batch, 4, 4) for t in poses], dim=0)
            K = aug.K[0].float().expand(batch, 4, 4)
            inv_K = aug.inv_K[0].float().expand(batch, 4, 4)
            targets = target.repeat(n_src, 1, 1, 1)

            def per_source(errors: Tensor) -> Tensor:  # (S*B, 1, H, W) -> (B, S, H, W)
                return errors.reshape(n_src, batch, height, width).transpose(0, 1)

            identity = None
            if p.automask:
                identity = per_source(robust_photometric_error(stacked, targets))
            photometric = target.new_zeros(())
            smooth = target.new_zeros(())
            for scale, disp in enumerate(disps):
                disp = disp.float()
                full = F.interpolate(disp, (height, width), mode="bilinear", align_corners=False)
                _, depth = disp_to_depth(full, p.min_depth, p.max_depth)
                warped = warp(stacked, depth, K.repeat(n_src, 1, 1), inv_K, T)
                best = min_reprojection_loss(
                    per_source(robust_photometric_error(warped, targets)),
                    identity,
                    generator=generator,
                )
                photometric = photometric + best.loss.mean() / n_scales
                if p.disp_norm:
                    disp = disp / (disp.mean(dim=(2, 3), keepdim=True) + 1e-7)
                smooth = smooth + p.smoothness * smoothness_loss(disp, target) / 2**scale / n_scales
        return photometric, smooth

    # -- evaluation ----------------------------------------------------------------------------
    def predictor(self, nets: Networks) -> Predictor:
        if self.autoencoder:
            raise ValueError(
                "a featdepth autoencoder run predicts no depth: evaluate its stage-depth run"
            )
        p = self.params
        scaling = Scaling()
        if p.use_stereo:  # 0.54 / 0.015 = 36 (rounded: the float quotient is 36.00000000000001)
            factor = round(KITTI_STEREO_BASELINE / p.stereo_baseline, 9)
            scaling = Scaling(median=False, factor=factor)
        # the same rule as Monodepth2's (its finest disparity is H/2 x W/2 here)
        return Monodepth2Predictor(nets["depth"], p.min_depth, p.max_depth, scaling)


# Presets (training.md section 5): stage 1 ``featdepth-ae`` (ResNet-50 FeatureNet, 256x800, 5
# images, 30 epochs, LR x0.5 at epochs 10 and 20) and ``featdepth-ae-nyu`` (the same on an NYU raw
# store at 192x480); stage 2 ``featdepth-m`` / ``featdepth-ms`` (ResNet-50 depth, ResNet-18 pose,
# 320x1024, 2 images per process, 40 epochs, LR x0.5 at 20 and 30; with the stereo source no
# automask, no disparity normalisation, baseline 0.015, evaluation x36). Both: Adam 1e-4, clipping
# at 35, 500 warm-up steps from lr/3. Stage-2 presets name their stage-1 checkpoint with
# ``--set extractor=RUN/checkpoints/last.pt``.
for _name, _dataset, _height, _width in (
    ("featdepth-ae", "kitti-raw", 256, 800),
    ("featdepth-ae-nyu", "nyu-raw", 192, 480),
):
    register_preset(
        TrainConfig(
            preset=_name,
            method="featdepth",
            dataset=_dataset,
            height=_height,
            width=_width,
            batch_size=5,
            epochs=30,
            params=FeatDepthParams(stage="autoencoder", lr_steps=(10, 20)),
        )
    )
for _name, _frames, _mono in (
    ("featdepth-m", (0, -1, 1), True),
    ("featdepth-ms", (0, -1, 1, "s"), False),
):
    register_preset(
        TrainConfig(
            preset=_name,
            method="featdepth",
            height=320,
            width=1024,
            batch_size=2,
            epochs=40,
            params=FeatDepthParams(
                stage="depth", frame_ids=_frames, automask=_mono, disp_norm=_mono
            ),
        )
    )
