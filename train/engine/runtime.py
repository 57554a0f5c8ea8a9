"""How networks run on the device: device choice, bf16 autocast, channels_last, ``torch.compile``
and DDP wrappers, plus the on-device augmentation module."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from pipelines.loader import Augment, resolve_device
from train.engine.config import TrainConfig
from train.methods import Method, Networks

__all__ = ["DistributedNet", "Runtime", "build_runtime", "configure_determinism", "resolve_device"]


@dataclass
class Runtime:
    """The run's device side; satisfies :class:`train.methods.Forward`.

    Attributes:
        device: training device.
        amp: bf16 autocast on (CUDA with bf16 support and ``config.amp``).
        channels_last: networks and inputs in channels_last memory format.
        nets: name -> callable to run (the module, possibly compiled and/or DDP-wrapped; frozen
            networks are never DDP-wrapped).
        augment: on-device augmentation (:class:`pipelines.loader.Augment`).
    """

    device: torch.device
    amp: bool
    channels_last: bool
    nets: dict[str, nn.Module]
    augment: Augment
    compiled: bool = False

    def autocast(self) -> torch.autocast:
        """bf16 autocast context (disabled unless ``amp``)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp)

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Network input in the runtime's memory format; under ``torch.compile`` its batch size is
        marked dynamic, so a batch that lost a sample does not recompile every network."""
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        if self.compiled:
            torch._dynamo.mark_dynamic(images, 0)
        return images

    def plain(self, nets: Networks) -> Runtime:
        """The same runtime calling the unwrapped modules (validation on one DDP rank)."""
        return Runtime(self.device, self.amp, self.channels_last, nets.named(), self.augment)


def configure_determinism(deterministic: bool) -> None:
    """``deterministic``: deterministic algorithms (CUDA's cuBLAS workspace set accordingly) and
    no cuDNN autotuning; otherwise cuDNN picks the fastest kernels (input sizes are fixed).

    Exact resume is bitwise on the CPU, and on CUDA only in deterministic mode (``grid_sample``'s
    backward accumulates with atomics)."""
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.benchmark = not deterministic


class _FieldsOut(nn.Module):
    """``module`` with a dataclass output returned as a dict of its fields (remembering the
    class). DDP finds the tensors of an output with torch's pytree, which treats an unregistered
    dataclass as one opaque leaf: with ``static_graph`` its first backward then never queues the
    gradient all-reduce, and the ranks silently train apart."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module
        self.kind: type | None = None

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        out = self.module(*args, **kwargs)
        if dataclasses.is_dataclass(out) and not isinstance(out, type):
            self.kind = type(out)
            return {f.name: getattr(out, f.name) for f in dataclasses.fields(out)}
        self.kind = None
        return out


class DistributedNet(nn.Module):
    """A trainable network under DDP, called like the network itself (same output type).

    ``static_graph``: a network may run several times (one per source) before one backward.
    Attribute ``ddp`` is the :class:`~torch.nn.parallel.DistributedDataParallel` wrapper.
    """

    def __init__(self, module: nn.Module, device_ids: list[int] | None = None) -> None:
        super().__init__()
        self.fields = _FieldsOut(module)
        self.ddp = nn.parallel.DistributedDataParallel(
            self.fields, device_ids=device_ids, static_graph=True
        )

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        out = self.ddp(*args, **kwargs)
        kind = self.fields.kind
        return out if kind is None else kind(**out)


def build_runtime(
    config: TrainConfig,
    method: Method,
    nets: Networks,
    device: torch.device,
    distributed: bool = False,
) -> Runtime:
    """Wrap ``nets`` for ``device``: channels_last, ``torch.compile`` and DDP as configured;
    SyncBatchNorm under DDP with ``config.sync_bn``; float32 without TF32 with ``config.exact``.

    Raises:
        ValueError: ``sync_bn`` under DDP on a device SyncBatchNorm cannot synchronise (CPU).
    """
    if distributed and config.sync_bn and device.type != "cuda":
        raise ValueError(f"--sync-bn needs CUDA devices (SyncBatchNorm cannot sync {device})")
    if config.exact and device.type == "cuda":
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    amp = bool(config.amp and device.type == "cuda" and torch.cuda.is_bf16_supported())
    channels_last = device.type == "cuda" if config.channels_last is None else config.channels_last
    wrapped: dict[str, nn.Module] = {}
    for name, module in nets.named().items():
        if channels_last:
            module.to(memory_format=torch.channels_last)
        if distributed and config.sync_bn and name not in nets.frozen:
            # in place below the top module: same parameters (optimisers) and state-dict keys
            module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
        if config.compile:
            module.compile()  # this network's own forward: wrappers would share one cache
        run: nn.Module = module
        if distributed and name not in nets.frozen:
            ids = [device.index] if device.type == "cuda" else None
            run = DistributedNet(module, ids)
        wrapped[name] = run
    augment = Augment(method.augment_config())
    return Runtime(device, amp, channels_last, wrapped, augment, compiled=config.compile)
