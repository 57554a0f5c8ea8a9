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
