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

from pipelines.loader import Batch
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
    """Augment ``batch`` (on the device), forward, backward and one step of every optimiser.

    Args:
        generator: CPU generator of the augmentation draws (jitter, flips).
        noise_generator: device generator of the method's own noise (auto-mask tie-breaking).

    Returns:
        the step's result, or None when no sample of the batch had all its source frames.
    """
    batch = complete_samples(batch, method.loader_request())
    if len(batch) == 0:
        return None
    aug = runtime.augment(batch, generator=generator, train=True)
    output = method.loss(runtime, aug, noise_generator)
    for spec in optimisers:
        spec.optimiser.zero_grad(set_to_none=True)
    output.total.backward()
    for spec in optimisers:
        if spec.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(spec.parameters(), spec.clip_grad_norm)
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
    """The loss of ``batch`` without augmentation and without gradients (networks in eval mode
    are the caller's business)."""
    batch = complete_samples(batch, method.loader_request())
    if len(batch) == 0:
        return None
    aug = runtime.augment(batch, generator=None, train=False)
    return _result(method.loss(runtime, aug, noise_generator), len(batch))


def _result(output: LossOutput, n: int) -> StepResult:
    return StepResult(
        loss=output.total.detach(),
        scalars={k: v.detach() for k, v in output.scalars.items()},
        images={k: v.detach() for k, v in output.images.items()},
        samples=n,
    )
