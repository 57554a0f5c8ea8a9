"""When a run writes its checkpoints, and in which order.

* ``last.pt`` (everything ``--resume`` needs) every ``checkpoint_every`` steps, every
  ``checkpoint_minutes`` minutes of training (30 by default: a crash loses at most that), when a
  stop is requested (SIGINT / SIGTERM), when ``max_steps`` ends the run inside an epoch, and at
  every epoch end;
* at an epoch end the weights-only ``epoch_NNN.pt`` first, then ``last.pt`` (a kill between the
  two never loses the epoch file: the resumed run is still before that epoch's end), then the
  oldest epoch files beyond ``keep_epochs`` are deleted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from train.engine.checkpoint import TrainState, rng_state, save_checkpoint, save_weights
from train.engine.config import TrainConfig
from train.engine.distributed import Distributed, gather_objects
from train.engine.run_folder import RunFolder
from train.methods import Networks, OptimiserSpec


@dataclass
class CheckpointPolicy:
    """Step- and time-based saving of ``last.pt`` (``every_steps`` / ``every_minutes``, 0 = off)."""

    every_steps: int = 0
    every_minutes: float = 30.0
    _last_save: float = field(default_factory=time.monotonic)

    def step_due(self, step: int) -> bool:
        """Due by step count (the same answer on every DDP rank)."""
        return self.every_steps > 0 and step % self.every_steps == 0

    def time_due(self) -> bool:
        """Due by time on this process (ranks agree on it before acting, see the trainer)."""
        elapsed = time.monotonic() - self._last_save
        return self.every_minutes > 0 and elapsed >= 60 * self.every_minutes

    def saved(self) -> None:
        self._last_save = time.monotonic()


@dataclass
class Saver:
    """Writes a run's checkpoints (rank 0 writes; every rank takes part in gathering the RNG
    states, so every rank calls it at the same steps)."""

    folder: RunFolder
    config: TrainConfig
    nets: Networks
    optimisers: list[OptimiserSpec]
    dist: Distributed
    policy: CheckpointPolicy

    def save_last(self, state: TrainState) -> None:
        """``last.pt`` at ``state`` (its epoch and the batches of it consumed)."""
        rank_rng = gather_objects(rng_state(), self.dist)
        if self.dist.main:
            save_checkpoint(
                self.folder.last, self.config, self.nets, self.optimisers, state, rank_rng
            )
        self.policy.saved()

    def end_epoch(self, epoch: int, step: int) -> None:
        """The epoch file of ``epoch`` first, then ``last.pt`` at the start of the next epoch,
        then pruning."""
        done = TrainState(epoch + 1, step, 0)
        if self.dist.main:
            save_weights(self.folder.epoch_file(epoch), self.config, self.nets, done)
        self.save_last(done)
        if self.dist.main:
            self.folder.prune_epoch_files(self.config.keep_epochs)
