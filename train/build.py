"""Build what a training run needs from a :class:`TrainConfig`: networks, optimiser, scheduler,
and the device runtime (autocast, channels_last, ``torch.compile``, DDP wrappers)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from pipelines.loader import Augment, AugmentConfig
from train.config import TrainConfig
from train.networks import DepthNet, PoseNet, depth_net, pose_net


@dataclass
class Models:
    """The trainable networks: ``depth`` always, ``pose`` when temporal frames are used."""

    depth: DepthNet
    pose: PoseNet | None = None

    def named(self) -> dict[str, nn.Module]:
        """``{"depth": ..., "pose": ...}`` (pose only when present), for checkpoints."""
        return {"depth": self.depth} | ({"pose": self.pose} if self.pose is not None else {})

    def parameters(self) -> Iterator[nn.Parameter]:
        for module in self.named().values():
            yield from module.parameters()

    def train(self, mode: bool = True) -> None:
        for module in self.named().values():
            module.train(mode)


def encoder_weights(config: TrainConfig) -> str | None:
    """What the encoders start from: ``config.weights``, else ImageNet when ``pretrained``."""
    if config.weights is not None:
        return config.weights
    return "imagenet" if config.pretrained else None


def build_models(config: TrainConfig, device: torch.device | str = "cpu") -> Models:
    """Depth net (and pose net for temporal sources) on ``device``, seeded by ``config.seed``.

    Raises:
        MissingWeightsError: pretrained weights requested but not in the local torch cache.
    """
    torch.manual_seed(config.seed)
    weights = encoder_weights(config)
    depth = depth_net(config.num_layers, weights, num_scales=config.scales)
    pose = pose_net(config.num_layers, weights) if config.temporal_ids else None
    models = Models(depth=depth, pose=pose)
    for module in models.named().values():
        module.to(device)
    return models


def build_optimiser(config: TrainConfig, models: Models) -> torch.optim.Adam:
    """Adam over all depth and pose parameters (betas 0.9/0.999, eps 1e-8, no weight decay)."""
    return torch.optim.Adam(models.parameters(), lr=config.lr)


def build_scheduler(
    config: TrainConfig, optimiser: torch.optim.Optimizer
) -> torch.optim.lr_scheduler.LambdaLR:
    """Step decay stepped at the END of each epoch, so epoch e trains at ``config.lr_at(e)``
    (the reference's lr 1e-4 for epochs 0-14 and 1e-5 from 15, on any PyTorch version)."""
    step, gamma = config.scheduler_step, config.scheduler_gamma
    return torch.optim.lr_scheduler.LambdaLR(optimiser, lambda epoch: gamma ** (epoch // step))


def resolve_device(name: str | None) -> torch.device:
    """``name`` as a device; None = ``cuda`` when available, else ``cpu``."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"unknown device {name!r}") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return device


@dataclass
class Runtime:
    """How the networks run on the device.

    Attributes:
        device: training device.
        amp: bf16 autocast on (CUDA with bf16 support and ``config.amp``).
        channels_last: networks and inputs in channels_last memory format.
        depth, pose: the callables to run (the modules, possibly compiled and/or DDP-wrapped).
        augment: on-device augmentation (:class:`pipelines.augment.Augment`).
    """

    device: torch.device
    amp: bool
    channels_last: bool
    depth: nn.Module
    pose: nn.Module | None
    augment: Augment

    def autocast(self) -> torch.autocast:
        """bf16 autocast context (disabled unless ``amp``)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp)

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Network input in the runtime's memory format."""
        if self.channels_last:
            return images.contiguous(memory_format=torch.channels_last)
        return images


def augment_config(config: TrainConfig) -> AugmentConfig:
    """The augmentation settings of ``config`` (model size, pyramid, probabilities, intrinsics)."""
    return AugmentConfig(
        height=config.height,
        width=config.width,
        scales=config.scales,
        jitter_prob=config.jitter_prob,
        flip_prob=config.flip_prob,
        normalised_K=config.normalised_K,
    )


def build_runtime(
    config: TrainConfig, models: Models, device: torch.device, distributed: bool = False
) -> Runtime:
    """Wrap ``models`` for ``device``: channels_last, ``torch.compile`` and DDP as configured."""
    amp = bool(config.amp and device.type == "cuda" and torch.cuda.is_bf16_supported())
    channels_last = device.type == "cuda" if config.channels_last is None else config.channels_last
    wrapped: dict[str, nn.Module] = {}
    for name, module in models.named().items():
        if channels_last:
            module.to(memory_format=torch.channels_last)
        run: nn.Module = module
        if distributed:
            ids = [device.index] if device.type == "cuda" else None
            # static_graph: the pose net runs once per temporal source before one backward.
            run = nn.parallel.DistributedDataParallel(module, device_ids=ids, static_graph=True)
        if config.compile:
            run = torch.compile(run)  # type: ignore[assignment]
        wrapped[name] = run
    return Runtime(
        device=device,
        amp=amp,
        channels_last=channels_last,
        depth=wrapped["depth"],
        pose=wrapped.get("pose"),
        augment=Augment(augment_config(config)),
    )
