"""ManyDepth's learning-rate schedule with the teacher freeze (modern_methods.md 2.5).

The reference trains one Adam over every network with ``StepLR(15, 0.1)``; at the start of
epoch ``freeze_epoch`` (15) it freezes the teacher and pose networks and builds a **new** Adam
(fresh moments) and a new ``StepLR`` over the multi-frame network. The new StepLR starts from
the base rate again, so the rate is 1e-4 in all 20 epochs: the decay the first one would have
applied at epoch 15 never happens.

:class:`FreezeStepLR` reproduces that on the multi-frame network's optimiser (the engine steps it
after every epoch): step decay ``gamma ** ((epoch - start) // step)`` with ``start`` = 0 before
the freeze and ``freeze_epoch`` from it on (``restart=False``: ``start`` stays 0, the decay the
reference intended), and the optimiser's moments cleared when the freeze epoch begins. Its
``last_epoch`` (saved in checkpoints) tells the method whether the teacher is frozen.
"""

from __future__ import annotations

import torch


class FreezeStepLR(torch.optim.lr_scheduler.LRScheduler):
    """Step decay that restarts, with fresh optimiser moments, at ``freeze_epoch``.

    Args:
        optimizer: the multi-frame network's optimiser.
        step: epochs per decay (15); gamma: decay factor (0.1).
        freeze_epoch: first epoch with the teacher frozen (negative: never).
        restart: restart the decay at the freeze (the reference's behaviour).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        step: int,
        gamma: float,
        freeze_epoch: int,
        restart: bool = True,
    ) -> None:
        if step < 1:
            raise ValueError(f"scheduler step must be >= 1, not {step}")
        self.step_size, self.gamma = step, gamma
        self.freeze_epoch, self.restart = freeze_epoch, restart
        super().__init__(optimizer)

    def frozen(self, epoch: int | None = None) -> bool:
        """True when ``epoch`` (default: the current one) runs with the teacher frozen."""
        epoch = self.last_epoch if epoch is None else epoch
        return 0 <= self.freeze_epoch <= epoch

    def factor(self, epoch: int) -> float:
        """The multiplier of the base rate during ``epoch``."""
        start = self.freeze_epoch if self.restart and self.frozen(epoch) else 0
        return self.gamma ** ((epoch - start) // self.step_size)

    def get_lr(self) -> list[float]:  # type: ignore[override]
        return [base * self.factor(self.last_epoch) for base in self.base_lrs]

    def step(self, epoch: int | None = None) -> None:  # type: ignore[override]
        super().step(epoch)
        if self.last_epoch == self.freeze_epoch > 0:
            self.optimizer.state.clear()  # a new Adam: its moments and step counts start afresh
