"""One training step and one validation forward pass, for any method.

Per batch: drop samples lacking a requested temporal neighbour, augment on the device, the
method's loss, backward, then every optimiser (gradient clipping where the method asks for it,
per-step schedules stepped here; per-epoch ones by the trainer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor

from pipelines.loader import AugmentDraw, Batch
from train.engine.runtime import Runtime
from train.methods import LoaderRequest, LossOutput, Method, OptimiserSpec


@dataclass
class StepResult:
    """What one step produced (tensors detached, on the device; call ``.item()`` sparingly).

    Attributes:
        loss: scalar total loss.
        scalars: the method's named scalars (e.g. ``loss_scale0``).
        images: the method's named ``(B, 1, H, W)`` maps (e.g. ``disp``).
        samples: number of samples in the step.
    """

    loss: Tensor
    scalars: dict[str, Tensor]
    images: dict[str, Tensor]
    samples: int


def complete_samples(batch: Batch, request: LoaderRequest) -> Batch:
    """The samples of ``batch`` that have every temporal neighbour ``request`` asks for.

    The store marks an absent neighbour with ``has_prev`` / ``has_next`` False (its image is
    zeros); such samples cannot be warped and are dropped. Returns ``batch`` itself when complete.
    """
    keep = torch.ones(len(batch), dtype=torch.bool, device=batch.index.device)
    for frame, has in (("prev", batch.has_prev), ("next", batch.has_next)):
        if frame in request.frames and has is not None:
            keep &= has
    if bool(keep.all()):
        return batch
    values = {}
    for f in fields(batch):
        value = getattr(batch, f.name)
        values[f.name] = None if value is None else value[keep]
    return replace(batch, **values)


def train_step(
    runtime: Runtime,
    method: Method,
    optimisers: Sequence[OptimiserSpec],
    batch: Batch,
    generator: torch.Generator,
    noise_generator: torch.Generator | None = None,
) -> StepResult | None:
    """One optimiser step on ``batch``: host-side draws, then :func:`device_step`.

    ``batch`` is the host batch (pinned when training on CUDA): samples lacking a requested
    neighbour are dropped here, the augmentation draws are made here with the CPU ``generator``,
    and both are copied to the device without blocking, so the CPU never waits for the GPU.

    Args:
        generator: CPU generator of the augmentation draws (jitter, flips).
        noise_generator: device generator of the method's own noise (auto-mask tie-breaking).

    Returns:
        the step's result, or None when no sample of the batch had all its source frames.
    """
    batch = complete_samples(batch, method.loader_request())
    if len(batch) == 0:
        return None
    draw = runtime.augment.draw(batch, generator, train=True)
    batch = batch.to(runtime.device, non_blocking=True)
    return device_step(runtime, method, optimisers, batch, draw.to(runtime.device), noise_generator)


def device_step(
    runtime: Runtime,
    method: Method,
    optimisers: Sequence[OptimiserSpec],
    batch: Batch,
    draw: AugmentDraw,
    noise_generator: torch.Generator | None = None,
) -> StepResult:
    """Augment, forward, backward and one step of every optimiser, all on the device.

    Nothing here reads a device value back to the host: the step issues no synchronising
    operation (``tests/test_host_syncs.py`` counts them), so the next batch's copy overlaps it.
    """
    aug = runtime.augment(batch, draw=draw)
    output = method.loss(runtime, aug, noise_generator)
    for spec in optimisers:
        spec.optimiser.zero_grad(set_to_none=True)
    output.total.backward()
    for spec in optimisers:
        if spec.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(spec.parameters(), spec.clip_grad_norm, foreach=True)
        spec.optimiser.step()
        if spec.interval == "step":
            spec.scheduler.step()
    return _result(output, len(batch))


@torch.no_grad()
def validation_step(
    runtime: Runtime,
    method: Method,
    batch: Batch,
    noise_generator: torch.Generator | None = None,
) -> StepResult | None:
    """The loss of the host ``batch`` without augmentation and without gradients (networks in
    eval mode are the caller's business)."""
    batch = complete_samples(batch, method.loader_request())
    if len(batch) == 0:
        return None
    draw = runtime.augment.draw(batch, None, train=False).to(runtime.device)
    aug = runtime.augment(batch.to(runtime.device, non_blocking=True), draw=draw)
    return _result(method.loss(runtime, aug, noise_generator), len(batch))


def _result(output: LossOutput, n: int) -> StepResult:
    return StepResult(
        loss=output.total.detach(),
        scalars={k: v.detach() for k, v in output.scalars.items()},
        images={k: v.detach() for k, v in output.images.items()},
        samples=n,
    )
