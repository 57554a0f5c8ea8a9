"""ManyDepth (modern_methods.md section 2): self-supervised multi-frame depth from a cost volume
over the previous frame, taught by a single-frame network.

Networks: ``depth`` (the matching encoder + Monodepth2's decoder,
:class:`~train.models.manydepth.ManyDepthNet`, whose encoder also holds the adaptive depth range
as buffers), ``teacher`` (Monodepth2's ResNet depth network) and ``pose`` (Monodepth2's
separate-ResNet pose network). Per batch (2.3):

1. poses of the jittered pairs (-1 inverted, +1), with gradients while the teacher trains;
2. the matching input: the jittered previous frame, the -1 pose (detached; zero where the frame
   is missing), then, in training, static-camera (p 0.25: the plain target as lookup) or
   zero-cost-volume (p 0.25: zero pose) augmentation per sample;
3. the teacher's Monodepth2-style loss (:func:`train.losses.manydepth.teacher_loss`);
4. the multi-frame network on the jittered target with the lookup, poses, scale-2 intrinsics and
   the depth range; the consistency mask = confidence x matching mask (teacher depth vs the
   matching's lowest-cost depth within x2); its loss with the detached poses
   (:func:`~train.losses.manydepth.multi_frame_loss`);
5. while the teacher trains: total = multi + teacher, and the depth range follows the teacher's
   depth (:func:`~train.losses.manydepth.updated_depth_range`).

From epoch ``freeze_teacher_epoch`` (15) the teacher and pose networks are frozen (eval mode, no
gradients, range fixed) and the multi-frame network's optimiser restarts with fresh moments and
its step decay restarted (:class:`~train.methods.manydepth_schedule.FreezeStepLR`): the rate
stays 1e-4 for all 20 epochs, as the reference's does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor

from pipelines.loader import AugmentConfig, Augmented
from train.engine.config import TrainConfig
from train.geometry import KITTI_NORMALISED_INTRINSICS
from train.losses.manydepth import (
    ManyDepthLossConfig,
    ScaleTerms,
    matching_augmentation,
    matching_mask,
    missing_frame_poses,
    multi_frame_loss,
    teacher_loss,
    updated_depth_range,
)
from train.losses.monodepth2 import Views
from train.methods.base import (
    Forward,
    LoaderRequest,
    LossOutput,
    Method,
    Networks,
    OptimiserSpec,
    Predictor,
    Reference,
    Scaling,
    adam,
)
from train.methods.manydepth_predictor import ManyDepthPredictor
from train.methods.manydepth_schedule import FreezeStepLR
from train.methods.monodepth2 import Monodepth2Predictor
from train.methods.registry import register_method, register_preset
from train.models import PoseOutput, build_network, pose_input
from train.models.cost_volume import BINNINGS

SOURCES = {-1: "prev", 1: "next"}


@dataclass(frozen=True)
class ManyDepthParams:
    """ManyDepth's own settings (reference defaults, MD options.py).

    ``num_layers``: ResNet depth of the matching encoder (the teacher and pose networks are
    always ResNet-18). ``scales``, ``frame_ids`` (0, -1, 1), ``intrinsics`` (``monodepth2``: the
    fixed KITTI matrix, or ``store``), ``min_depth`` / ``max_depth``, ``disparity_smoothness``:
    as Monodepth2. Cost volume: ``num_depth_bins`` (96), ``depth_binning`` (``linear`` or
    ``inverse``). ``freeze_teacher_epoch`` (15; negative = never) and ``restart_lr_at_freeze``
    (true: the reference's new optimiser and StepLR at the freeze; false: one decay continuing).
    ``matching_augmentation`` (static camera / zero cost volume, 0.25 each), ``motion_masking``
    (the matching mask). Evaluation: ``teacher`` (score the single-frame teacher instead),
    ``static_camera``, ``zero_cost_volume`` (the reference's ablation switches).
    """

    num_layers: int = 18
    scales: int = 4
    frame_ids: tuple[int, ...] = (0, -1, 1)
    intrinsics: str = "monodepth2"
    min_depth: float = 0.1
    max_depth: float = 100.0
    disparity_smoothness: float = 1e-3
    num_depth_bins: int = 96
    depth_binning: str = "linear"
    freeze_teacher_epoch: int = 15
    restart_lr_at_freeze: bool = True
    matching_augmentation: bool = True
    motion_masking: bool = True
    teacher: bool = False
    static_camera: bool = False
    zero_cost_volume: bool = False

    def __post_init__(self) -> None:
        if tuple(self.frame_ids) != (0, -1, 1):
            raise ValueError(f"manydepth trains with frame_ids 0,-1,1, not {self.frame_ids}")
        if self.intrinsics not in ("monodepth2", "store"):
            raise ValueError(f"intrinsics must be 'monodepth2' or 'store', not {self.intrinsics!r}")
        if not 1 <= self.scales <= 4:
            raise ValueError(f"scales must be 1..4, not {self.scales}")
        if self.depth_binning not in BINNINGS:
            raise ValueError(f"depth_binning must be one of {BINNINGS}")
        if self.num_depth_bins < 2:
            raise ValueError(f"num_depth_bins must be >= 2, not {self.num_depth_bins}")

    def loss_config(self) -> ManyDepthLossConfig:
        return ManyDepthLossConfig(self.min_depth, self.max_depth, self.disparity_smoothness)


@register_method
class ManyDepth(Method):
    """ManyDepth: multi-frame network, single-frame teacher, pose network (module docstring)."""

    name = "manydepth"
    Params = ManyDepthParams
    datasets = ("kitti-raw",)

    def __init__(self, config: TrainConfig) -> None:
        super().__init__(config)
        self.schedule: FreezeStepLR | None = None
        self.range_holder: torch.nn.Module | None = None  # the encoder holding the depth range

    def describe(self) -> str:
        """For ``train --help``'s preset list."""
        return "frames 0 -1 +1, cost volume over -1 (test store: prepare-kitti --prev-frames)"

    def build_networks(self, device: torch.device | str = "cpu") -> Networks:
        p = self.params
        torch.manual_seed(self.config.seed)
        weights = self.config.encoder_weights
        depth = build_network(
            "manydepth_depth",
            num_layers=p.num_layers,
            encoder_weights=weights,
            num_scales=p.scales,
            num_depth_bins=p.num_depth_bins,
            depth_binning=p.depth_binning,
        )
        teacher = build_network(
            "monodepth2_depth", num_layers=18, encoder_weights=weights, num_scales=p.scales
        )
        pose = build_network("monodepth2_pose", num_layers=18, encoder_weights=weights)
        modules = {"depth": depth, "teacher": teacher, "pose": pose}
        for module in modules.values():
            module.to(device)
        self.range_holder = depth.encoder
        return Networks(modules)

    def loader_request(self) -> LoaderRequest:
        return LoaderRequest(frames=("prev", "next"))

    def augment_config(self) -> AugmentConfig:
        c, p = self.config, self.params
        normalised = KITTI_NORMALISED_INTRINSICS if p.intrinsics == "monodepth2" else None
        return AugmentConfig(
            height=c.height,
            width=c.width,
            scales=max(p.scales, 3),  # the cost volume needs the scale-2 intrinsics
            jitter_prob=c.jitter_prob,
            flip_prob=c.flip_prob,
            normalised_K=normalised,
        )

    def optimisers(self, nets: Networks) -> list[OptimiserSpec]:
        """The multi-frame network's Adam with :class:`FreezeStepLR` (``main``), and the
        teacher's and pose network's Adam with the plain step decay (``teacher``; it stops
        stepping at the freeze: no gradient reaches them)."""
        c, p = self.config, self.params
        main = adam(nets["depth"].parameters(), lr=c.lr)
        self.schedule = FreezeStepLR(
            main, c.scheduler_step, c.scheduler_gamma, p.freeze_teacher_epoch,
            p.restart_lr_at_freeze,
        )  # fmt: skip
        params = [*nets["teacher"].parameters(), *nets["pose"].parameters()]
        teacher = adam(params, lr=c.lr)
        step, gamma = c.scheduler_step, c.scheduler_gamma
        decay = torch.optim.lr_scheduler.LambdaLR(teacher, lambda e: gamma ** (e // step))
        return [OptimiserSpec(main, self.schedule), OptimiserSpec(teacher, decay, name="teacher")]

    @property
    def teacher_trains(self) -> bool:
        """False once the freeze epoch has begun (known from the main schedule)."""
        return self.schedule is None or not self.schedule.frozen()

    def reference(self) -> Reference | None:
        """ManyDepth's ``train.py``: one GPU, the README's KITTI JPEGs resized with PIL LANCZOS,
        eigen_zhou."""
        if self.config.dataset != "kitti-raw":
            return None
        return Reference("ManyDepth's train.py", "jpg", "lanczos", "eigen_zhou")

    def reference_notes(self) -> list[str]:
        p, c = self.params, self.config
        notes = []
        if 0 <= p.freeze_teacher_epoch < c.epochs and p.restart_lr_at_freeze:
            notes.append(
                f"the learning rate stays {c.lr:g} in all {c.epochs} epochs: at the teacher "
                f"freeze (epoch {p.freeze_teacher_epoch}) the reference builds a new Adam and "
                f"StepLR, which skips the x{c.scheduler_gamma:g} decay of epoch "
                f"{c.scheduler_step} (--set restart_lr_at_freeze=false applies it)"
            )
        notes.append(
            "the matching pose of frame -1 reuses the loss pose (same values; the reference "
            "runs the pose network once more, one more BatchNorm statistics update)"
        )
        return notes

    # -- the step ----------------------------------------------------------------------------
    def loss(
        self, run: Forward, aug: Augmented, generator: torch.Generator | None = None
    ) -> LossOutput:
        p = self.params
        trains = self.teacher_trains
        training = run.nets["depth"].training
        if not trains:
            for name in ("teacher", "pose"):
                run.nets[name].train(False)  # frozen: BatchNorm on running statistics
        target_aug = run.prepare(aug.color_aug["target"][0])
        with torch.set_grad_enabled(trains and torch.is_grad_enabled()):
            poses = self.poses(run, aug, target_aug)
            with run.autocast():
                teacher_disps = list(run.nets["teacher"](target_aug).disps[: p.scales])
        views = Views(
            target=aug.color["target"][0],
            sources=[aug.color[SOURCES[f]][0] for f in p.frame_ids[1:]],
            poses=poses,
            K=aug.K[0],
            inv_K=aug.inv_K[0],
            target_pyramid=aug.color["target"][: p.scales],
        )
        teacher, teacher_depth = teacher_loss(
            teacher_disps, views, p.loss_config(), None, generator
        )
        lookups, lookup_poses, aug_mask = self.matching_inputs(aug, poses[0], training, generator)
        holder = self.range_holder
        assert holder is not None, "build_networks first"
        min_bin, max_bin = holder.min_depth_bin, holder.max_depth_bin
        with run.autocast():
            out = run.nets["depth"](
                target_aug, lookups, lookup_poses, aug.K[2], aug.inv_K[2], min_bin, max_bin
            )
        size = views.target.shape[-2:]
        lowest_cost = F.interpolate(out.lowest_cost.unsqueeze(1), size, mode="nearest")[:, 0]
        consistency = F.interpolate(out.confidence.unsqueeze(1), size, mode="nearest")[:, 0]
        if p.motion_masking:
            consistency = consistency * matching_mask(teacher_depth, lowest_cost).float()
        mask = consistency.unsqueeze(1) * (1 - aug_mask)
        detached = replace(views, poses=[t.detach() for t in poses])
        multi = multi_frame_loss(list(out.disps[: p.scales]), teacher_disps, detached, mask)
        total = multi.total + teacher.total if trains else multi.total
        if trains:
            with torch.no_grad():
                new_min, new_max = updated_depth_range(min_bin, max_bin, teacher_depth)
                min_bin.copy_(new_min)
                max_bin.copy_(new_max)
        return LossOutput(total, self._scalars(multi, teacher, consistency, min_bin, max_bin), {
            "disp": out.disps[0].detach().float(),
            "teacher_disp": teacher_disps[0].detach().float(),
        })  # fmt: skip

    def poses(self, run: Forward, aug: Augmented, target_aug: Tensor) -> list[Tensor]:
        """Float32 ``(B, 4, 4)`` target -> source transforms for frames -1 and +1 (pose network
        on the jittered pairs in temporal order under autocast, matrices in float32)."""
        outputs: list[PoseOutput] = []
        for frame in self.params.frame_ids[1:]:
            pair = pose_input(target_aug, run.prepare(aug.color_aug[SOURCES[frame]][0]), frame)
            with run.autocast():
                outputs.append(run.nets["pose"](pair))
        with torch.autocast(run.device.type, enabled=False):
            return [
                PoseOutput(o.axisangle.float(), o.translation.float()).matrix(invert=frame < 0)
                for frame, o in zip(self.params.frame_ids[1:], outputs, strict=True)
            ]

    def matching_inputs(
        self, aug: Augmented, prev_pose: Tensor, training: bool, generator: torch.Generator | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``(lookups (B, 1, 3, H, W), poses (B, 1, 4, 4), augmentation mask (B, 1, 1, 1))``."""
        lookups = aug.color_aug["prev"][0].unsqueeze(1)
        poses = missing_frame_poses(lookups, prev_pose.detach().unsqueeze(1))
        if not (training and self.params.matching_augmentation):
            return lookups, poses, lookups.new_zeros(lookups.shape[0], 1, 1, 1)
        draws = self.augmentation_draws(lookups.shape[0], lookups.device, generator)
        return matching_augmentation(lookups, aug.color["target"][0], poses, draws.to(poses))

    @staticmethod
    def augmentation_draws(
        n: int, device: torch.device, generator: torch.Generator | None
    ) -> Tensor:
        """``(n,)`` uniform draws deciding each sample's matching augmentation (the reference's
        ``random.random()``; here from the step's noise generator, on its device)."""
        gen_device = generator.device if generator is not None else device
        return torch.rand(n, generator=generator, device=gen_device)

    @staticmethod
    def _scalars(
        multi: ScaleTerms, teacher: ScaleTerms, consistency: Tensor, lo: Tensor, hi: Tensor
    ) -> dict[str, Tensor]:
        out = {"multi_loss": multi.total.detach(), "teacher_loss": teacher.total.detach()}
        for s, (m, c) in enumerate(zip(multi.reproj, multi.consistency, strict=True)):
            out[f"reproj_loss_scale{s}"] = m.detach()
            out[f"consistency_loss_scale{s}"] = c.detach()
        out["consistency_fraction"] = consistency.mean().detach()
        out["min_depth_bin"], out["max_depth_bin"] = lo.detach().float(), hi.detach().float()
        return out

    def predictor(self, nets: Networks) -> Predictor:
        p = self.params
        if p.teacher:
            return Monodepth2Predictor(nets["teacher"], p.min_depth, p.max_depth, Scaling())
        return ManyDepthPredictor(
            nets["depth"], nets["pose"], p.min_depth, p.max_depth,
            fixed_K=p.intrinsics == "monodepth2", static_camera=p.static_camera,
            zero_cost_volume=p.zero_cost_volume,
        )  # fmt: skip


# Presets (MD README): the defaults, i.e. 640x192, batch 12, 20 epochs, Adam 1e-4, StepLR(15),
# eigen_zhou; the HR model adds --height 320 --width 1024.
for _name, _height, _width in (("manydepth-m", 192, 640), ("manydepth-hr-m", 320, 1024)):
    register_preset(
        TrainConfig(
            preset=_name, method="manydepth", height=_height, width=_width,
            params=ManyDepthParams(),
        )
    )  # fmt: skip
