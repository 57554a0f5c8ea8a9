"""Learning-rate schedules that methods hand to the engine in their
:class:`~train.methods.base.OptimiserSpec`.

:class:`WarmupStepLR` is mmcv's ``step`` policy with linear warm-up, as FeatDepth trains
(training.md 5.1 and 5.2): the epoch-based decay ``gamma ** (number of milestones <= epoch)``
times, during the first ``warmup_iters`` optimiser steps, the warm-up factor
``1 - (1 - it / warmup_iters) * (1 - warmup_ratio)`` (``lr / 3`` at step 0 for a ratio of 1/3).

:class:`CosineRestartLR` is Lite-Mono's per-epoch cosine schedule with warm restarts
(modern_methods.md 1.7), in closed form (:func:`cosine_restart_lr`).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

import torch


class WarmupStepLR(torch.optim.lr_scheduler.LRScheduler):
    """Step decay per epoch with a linear warm-up over the first optimiser steps.

    The engine steps it once per epoch (``OptimiserSpec(interval="epoch")``); the warm-up counts
    optimiser steps itself through a post-step hook on ``optimizer``, so one scheduler gives
    both. Its state (epoch and step counters) is saved and restored with the checkpoint.

    Args:
        optimizer: the optimiser whose learning rates it sets (``base_lrs`` = their initial lr).
        milestones: epochs (0-based) from which the rate is multiplied by ``gamma`` once more.
        gamma: decay factor per milestone.
        warmup_iters: optimiser steps of linear warm-up (0 = none).
        warmup_ratio: fraction of the rate at step 0.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        milestones: Sequence[int],
        gamma: float = 0.5,
        warmup_iters: int = 500,
        warmup_ratio: float = 1.0 / 3.0,
    ) -> None:
        if list(milestones) != sorted(milestones):
            raise ValueError(f"milestones must be increasing, got {tuple(milestones)}")
        if warmup_iters < 0 or not 0 < warmup_ratio <= 1:
            raise ValueError("warmup_iters must be >= 0 and warmup_ratio in (0, 1]")
        self.milestones = tuple(int(m) for m in milestones)
        self.gamma = gamma
        self.warmup_iters = warmup_iters
        self.warmup_ratio = warmup_ratio
        self.iteration = 0
        super().__init__(optimizer)
        self._hook = optimizer.register_step_post_hook(self._after_optimiser_step)

    def factor(self) -> float:
        """The multiplier of the base rates at the current epoch and optimiser step."""
        decay = self.gamma ** bisect_right(self.milestones, self.last_epoch)
        if self.iteration < self.warmup_iters:
            decay *= 1 - (1 - self.iteration / self.warmup_iters) * (1 - self.warmup_ratio)
        return decay

    def get_lr(self) -> list[float]:  # type: ignore[override]
        return [base * self.factor() for base in self.base_lrs]

    def _after_optimiser_step(self, optimizer: torch.optim.Optimizer, *_: Any) -> None:
        self.iteration += 1
        if self.iteration <= self.warmup_iters:
            for group, lr in zip(optimizer.param_groups, self.get_lr(), strict=True):
                group["lr"] = lr
            self._last_lr = [group["lr"] for group in optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in super().state_dict().items() if k != "_hook"}


def cosine_restart_lr(
    epoch: int, max_lr: float, min_lr: float, period: int, gamma: float = 0.9
) -> float:
    """Lite-Mono's learning rate during ``epoch`` (0-based; modern_methods.md 1.7).

    ``min + (max * gamma**k - min) * (1 + cos(pi * t / period)) / 2`` with ``t = (epoch + 1) mod
    period`` and ``k = (epoch + 1) div period``: the closed form of the warm-restart cosine
    schedule Lite-Mono steps at the start of every epoch (so epoch 0 already has t = 1), the
    maximum decayed by ``gamma`` at every restart.
    """
    k, t = divmod(epoch + 1, period)
    return min_lr + (max_lr * gamma**k - min_lr) * (1 + math.cos(math.pi * t / period)) / 2


class CosineRestartLR(torch.optim.lr_scheduler.LRScheduler):
    """Every parameter group at :func:`cosine_restart_lr` of the current epoch (the engine steps
    it once per epoch; constant within an epoch). ``last_epoch`` is its state."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        max_lr: float,
        min_lr: float,
        period: int,
        gamma: float = 0.9,
    ) -> None:
        if not 0 <= min_lr <= max_lr or max_lr <= 0 or period < 1 or not 0 < gamma <= 1:
            raise ValueError(
                f"cosine schedule (max {max_lr}, min {min_lr}, period {period}, gamma {gamma}): "
                "need 0 <= min <= max, max > 0, period >= 1 and 0 < gamma <= 1"
            )
        self.max_lr, self.min_lr, self.period, self.gamma = max_lr, min_lr, int(period), gamma
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:  # type: ignore[override]
        lr = cosine_restart_lr(self.last_epoch, self.max_lr, self.min_lr, self.period, self.gamma)
        return [lr for _ in self.optimizer.param_groups]
