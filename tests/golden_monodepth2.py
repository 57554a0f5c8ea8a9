"""Monodepth2 losses and gradient norms on one fixed synthetic batch (issue 9's golden values).

:func:`golden_values` runs a preset's networks (seeded random weights), the on-device
augmentation (seeded) and the loss on :func:`fixed_batch`, then a backward pass, on the CPU in
float32. ``tests/test_golden.py`` compares them with the values recorded in
``tests/golden/<preset>.json``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pipelines.loader.batch import Batch

GOLDEN_SIZE = {"height": 64, "width": 96}
GOLDEN_PRESETS = ("monodepth2-m", "monodepth2-s", "monodepth2-ms")


def smooth_images(
    n: int, height: int, width: int, generator: torch.Generator, cell: int = 4
) -> torch.Tensor:
    """``(n, 3, height, width)`` uint8 random textures, smooth at a scale of ``cell`` pixels.

    Random levels on a grid of ``cell``-pixel cells, upsampled by repetition and blurred twice
    by a ``cell``-wide box (a quadratic B-spline: its slope is continuous). The sums are of
    small integers in float64, hence exact in any order and on any CPU kernel: the images are
    the same bytes everywhere. Smooth rather than white noise so that the bilinear warp's
    gradient, which jumps by the second difference of the image when a sampling position
    crosses an integer (:func:`train.geometry.warp`), moves little when rounding moves one.
    """
    rows, cols = -(-height // cell) + 2, -(-width // cell) + 2
    levels = torch.randint(0, 256, (n, 3, rows, cols), generator=generator).double()
    fine = levels.repeat_interleave(cell, dim=2).repeat_interleave(cell, dim=3)
    tent = torch.cat([torch.arange(1, cell + 1), torch.arange(cell - 1, 0, -1)]).double()
    weights = torch.outer(tent, tent).expand(3, 1, 2 * cell - 1, 2 * cell - 1)  # box * box
    summed = F.conv2d(fine, weights, groups=3)[..., :height, :width]  # integer valued
    total = cell**4
    return torch.div(summed.long() + total // 2, total, rounding_mode="floor").to(torch.uint8)


def fixed_batch(n: int = 2, height: int = 72, width: int = 108) -> Batch:
    """``n`` samples with every frame (prev, next, stereo) smooth random images (uint8)."""
    g = torch.Generator().manual_seed(1234)

    def image() -> torch.Tensor:
        return smooth_images(n, height, width, g)

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


def golden_values(preset_name: str) -> dict[str, float]:
    """Losses and per-network gradient norms of ``preset_name`` on :func:`fixed_batch` (seeded
    random weights, seeded augmentation, CPU float32), keyed ``loss/total``,
    ``loss/scale0`` .. ``loss/scale3`` and ``grad_norm/<network>``."""
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
    values = {"loss/total": out.total.item()}
    values |= {f"loss/scale{s}": out.scalars[f"loss_scale{s}"].item() for s in range(4)}
    for name, module in nets.named().items():
        norms = [p.grad.norm() for p in module.parameters() if p.grad is not None]
        values[f"grad_norm/{name}"] = torch.linalg.vector_norm(torch.stack(norms)).item()
    return values
