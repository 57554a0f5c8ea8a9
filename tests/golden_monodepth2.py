"""Monodepth2 losses and gradient norms on one fixed synthetic batch (issue 9's golden values).

:func:`golden_values` runs a preset's networks (seeded random weights), the on-device
augmentation (seeded) and the loss on :func:`fixed_batch`, then a backward pass. The values were
recorded into ``tests/golden/monodepth2.json`` before the methods refactor; the test asserts
they are still bitwise identical on the CPU in float32.
"""

from __future__ import annotations

import torch

from pipelines.loader.batch import Batch

GOLDEN_SIZE = {"height": 64, "width": 96}


def fixed_batch(n: int = 2, height: int = 72, width: int = 108) -> Batch:
    """``n`` samples with every frame (prev, next, stereo) from a seeded generator (uint8)."""
    g = torch.Generator().manual_seed(1234)

    def image() -> torch.Tensor:
        return torch.randint(0, 256, (n, 3, height, width), generator=g, dtype=torch.uint8)

    K = torch.tensor([[0.58 * width, 0, 0.5 * width], [0, 1.92 * height, 0.5 * height], [0, 0, 1]])
    return Batch(
        index=torch.arange(n),
        row=torch.arange(n),
        side=torch.tensor([0, 1] * (n // 2) + [0] * (n % 2)),
        target=image(),
        K=K.expand(n, 3, 3).clone(),
        baseline=torch.full((n,), 0.54),
        prev=image(),
        next=image(),
        has_prev=torch.ones(n, dtype=torch.bool),
        has_next=torch.ones(n, dtype=torch.bool),
        stereo=image(),
    )


def golden_values(preset_name: str) -> dict:
    """Total loss, per-scale losses and per-network gradient norms of ``preset_name`` on
    :func:`fixed_batch` (seeded random weights, seeded augmentation, CPU float32)."""
    from train.engine.config import apply_overrides
    from train.engine.runtime import build_runtime
    from train.methods import method_class, preset

    overrides = {"pretrained": False, "device": "cpu", "amp": False, "channels_last": False}
    config = apply_overrides(preset(preset_name), overrides | GOLDEN_SIZE)
    method = method_class(config.method)(config)
    nets = method.build_networks("cpu")
    runtime = build_runtime(config, method, nets, torch.device("cpu"))
    nets.train(True)
    aug = runtime.augment(fixed_batch(), generator=torch.Generator().manual_seed(7), train=True)
    out = method.loss(runtime, aug, torch.Generator().manual_seed(8))
    out.total.backward()
    grads = {}
    for name, module in nets.named().items():
        norms = [p.grad.norm() for p in module.parameters() if p.grad is not None]
        grads[name] = torch.linalg.vector_norm(torch.stack(norms)).item()
    per_scale = [out.scalars[f"loss_scale{s}"].item() for s in range(4)]
    return {"total": out.total.item(), "per_scale": per_scale, "grad_norm": grads}
