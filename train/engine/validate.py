"""Validation during training: the mean loss on the val store, and depth metrics from a
:data:`Scorer` the caller supplies (the evaluation's, :func:`train.eval.validation.depth_scorer`:
the engine itself knows no protocol)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch

from pipelines.loader import Batch, make_loader
from pipelines.loader.dataset import EXTRA_ARRAYS
from pipelines.store import Store, open_store
from train.engine.runtime import Runtime
from train.engine.step import validation_step
from train.methods import Method, Networks, Predictor


class BatchScorer(Protocol):
    """Accumulates the predictions of validation batches into metrics."""

    def add(self, batch: Batch, device: torch.device) -> None:
        """Predict the batch's targets and keep what the metrics need."""

    def metrics(self) -> dict[str, float]:
        """The metrics so far (empty when nothing was scored)."""


# (store, method, predictor) -> a scorer for that store, or None when it cannot be scored
Scorer = Callable[[Store, Method, Predictor], BatchScorer | None]


@torch.no_grad()
def validate(
    runtime: Runtime,
    method: Method,
    nets: Networks,
    store_path: str,
    max_batches: int | None = None,
    scorer: Scorer | None = None,
) -> dict[str, float]:
    """``{"val/loss": ..., "val/<metric>": ...}`` over the first ``max_batches`` batches of the
    val store, in store order, without augmentation; networks are put back in train mode.

    The loss covers samples with every source frame the store can provide (a one-view val store
    gives no loss to a stereo method, a val store without the method's extras, e.g. ``seg`` or
    ``hint_depth``, none to a method that needs them); metrics come from ``scorer`` for a stage
    that predicts depth (an auto-encoder stage reports its loss only).
    """
    store = open_store(store_path)
    request = method.loader_request()
    frames = tuple(f for f in request.frames if f != "stereo" or store.views >= 2)
    with_loss = frames == request.frames and all(store.has(EXTRA_ARRAYS[e]) for e in request.extras)
    predictor = method.predictor(nets) if method.predicts_depth else None
    scoring = None if scorer is None or predictor is None else scorer(store, method, predictor)
    extras = (*request.extras, "gt") if scoring is not None else request.extras
    loader = make_loader(
        store_path,
        method.config.batch_size,
        workers=0,
        shuffle=False,
        frames=frames,
        extras=tuple(dict.fromkeys(extras)),
        rank=0,
        world_size=1,  # the whole val store, also when rank 0 validates under DDP
    )
    generator = torch.Generator(runtime.device).manual_seed(method.config.seed)
    nets.train(False)
    loss_sum, loss_count = 0.0, 0
    try:
        for i, batch in enumerate(loader):
            if max_batches is not None and i >= max_batches:
                break
            if with_loss:
                result = validation_step(runtime, method, batch, generator)
                if result is not None:
                    loss_sum += float(result.loss) * result.samples
                    loss_count += result.samples
            if scoring is not None:
                scoring.add(batch, runtime.device)
    finally:
        nets.train(True)
    out = {"val/loss": loss_sum / loss_count} if loss_count else {}
    if scoring is not None:
        out |= {f"val/{k}": v for k, v in scoring.metrics().items()}
    return out
