"""One Monodepth2 training step, and the same forward pass for validation.

Per batch (training.md sections 2-4): augment on the device (jitter + flip + pyramid); the depth
net sees the jittered target at scale 0; the pose net sees jittered temporal pairs in temporal
order (``[I_-1, I_0]``, ``[I_0, I_1]``; the -1 pose is inverted); the stereo source uses the fixed
``stereo_T``; :func:`train.losses.monodepth2_loss` compares the plain (un-jittered) images.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor

from pipelines.loader import Augmented, Batch
from train.build import Runtime
from train.config import TrainConfig
from train.losses import Monodepth2LossConfig, Monodepth2LossOutput, Views, monodepth2_loss
from train.networks import PoseOutput, pose_input

SOURCE_NAMES = {-1: "prev", 1: "next", "s": "stereo"}


@dataclass
class StepResult:
    """What one step produced (tensors detached, on the device; call ``.item()`` sparingly).

    Attributes:
        loss: scalar total loss.
        per_scale: scalar loss per scale.
        disp: ``(B, 1, H, W)`` scale-0 sigmoid disparity.
        automask: fraction of pixels where a reprojection beat every identity (scalar), or None.
        samples: number of samples in the step.
    """

    loss: Tensor
    per_scale: list[Tensor]
    disp: Tensor
    automask: Tensor | None
    samples: int


def loss_config(config: TrainConfig) -> Monodepth2LossConfig:
    """The loss settings of ``config``."""
    return Monodepth2LossConfig(
        min_depth=config.min_depth,
        max_depth=config.max_depth,
        disparity_smoothness=config.disparity_smoothness,
        use_ssim=config.use_ssim,
        automask=config.automask,
        avg_reprojection=config.avg_reprojection,
    )


def complete_samples(batch: Batch, config: TrainConfig) -> Batch:
    """The samples of ``batch`` that have every temporal neighbour ``config`` needs.

    The store marks an absent neighbour with ``has_prev`` / ``has_next`` False (its image is
    zeros); such samples cannot be warped and are dropped. Returns ``batch`` itself when complete.
    """
    keep = torch.ones(len(batch), dtype=torch.bool, device=batch.index.device)
    for frame in config.temporal_ids:
        has = batch.has_prev if frame < 0 else batch.has_next
        if has is not None:
            keep &= has
    if bool(keep.all()):
        return batch
    values = {}
    for f in fields(batch):
        value = getattr(batch, f.name)
        values[f.name] = None if value is None else value[keep]
    return replace(batch, **values)


def forward_loss(
    runtime: Runtime,
    aug: Augmented,
    config: TrainConfig,
    generator: torch.Generator | None = None,
) -> tuple[Monodepth2LossOutput, Tensor]:
    """Networks + loss on an augmented batch. Returns the loss output and the scale-0 disparity.

    Networks run under the runtime's autocast; poses and the loss are computed in float32.
    """
    target_aug = runtime.prepare(aug.color_aug["target"][0])
    sources: list[Tensor] = []
    poses: list[Tensor] = []
    with runtime.autocast():
        disps = runtime.depth(target_aug).disps[: config.scales]
        for frame in config.frame_ids[1:]:
            name = SOURCE_NAMES[frame]
            sources.append(aug.color[name][0])
            if frame == "s":
                if aug.stereo_T is None:
                    raise ValueError("frame 's' requested but the batch has no stereo image")
                poses.append(aug.stereo_T)
                continue
            assert runtime.pose is not None
            pair = pose_input(target_aug, runtime.prepare(aug.color_aug[name][0]), frame)
            out = runtime.pose(pair)
            pose = PoseOutput(out.axisangle.float(), out.translation.float())
            poses.append(pose.matrix(invert=frame < 0))
    views = Views(
        target=aug.color["target"][0],
        sources=sources,
        poses=poses,
        K=aug.K[0],
        inv_K=aug.inv_K[0],
        target_pyramid=aug.color["target"][: config.scales],
    )
    output = monodepth2_loss(disps, views, loss_config(config), generator)
    return output, disps[0]


def train_step(
    runtime: Runtime,
    optimiser: torch.optim.Optimizer,
    batch: Batch,
    config: TrainConfig,
    generator: torch.Generator,
    noise_generator: torch.Generator | None = None,
) -> StepResult | None:
    """Augment ``batch`` (on the device), forward, backward and one optimiser step.

    Args:
        generator: CPU generator of the augmentation draws (jitter, flips).
        noise_generator: device generator of the auto-mask tie-breaking noise.

    Returns:
        the step's result, or None when no sample of the batch had all its source frames.
    """
    batch = complete_samples(batch, config)
    if len(batch) == 0:
        return None
    aug = runtime.augment(batch, generator=generator, train=True)
    output, disp = forward_loss(runtime, aug, config, noise_generator)
    optimiser.zero_grad(set_to_none=True)
    output.total.backward()
    optimiser.step()
    return _result(output, disp, len(batch))


@torch.no_grad()
def validation_step(
    runtime: Runtime,
    batch: Batch,
    config: TrainConfig,
    noise_generator: torch.Generator | None = None,
) -> StepResult | None:
    """The loss of ``batch`` without augmentation and without gradients (networks in eval mode
    are the caller's business)."""
    batch = complete_samples(batch, config)
    if len(batch) == 0:
        return None
    aug = runtime.augment(batch, generator=None, train=False)
    output, disp = forward_loss(runtime, aug, config, noise_generator)
    return _result(output, disp, len(batch))


def _result(output: Monodepth2LossOutput, disp: Tensor, n: int) -> StepResult:
    mask = output.automask
    return StepResult(
        loss=output.total.detach(),
        per_scale=[s.detach() for s in output.per_scale],
        disp=disp.detach().float(),
        automask=None if mask is None else mask.float().mean(),
        samples=n,
    )
