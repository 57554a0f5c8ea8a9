"""Validation during training: mean loss on the val store and depth metrics when it has ground
truth (protocol and scaling chosen as in :mod:`train.eval.evaluate`)."""

from __future__ import annotations

import numpy as np
import torch

from pipelines.loader import make_loader
from pipelines.loader.dataset import EXTRA_ARRAYS
from pipelines.store import open_store
from train.engine.runtime import Runtime
from train.engine.step import validation_step
from train.eval.evaluate import gt_maps, protocol_metrics, select_protocol
from train.eval.inputs import batch_arguments
from train.methods import Method, Networks


@torch.no_grad()
def validate(
    runtime: Runtime,
    method: Method,
    nets: Networks,
    store_path: str,
    max_batches: int | None = None,
) -> dict[str, float]:
    """``{"val/loss": ..., "val/abs_rel": ..., ...}`` over the first ``max_batches`` batches of
    the val store, in store order, without augmentation; networks are put back in train mode.

    The loss covers samples with every source frame the store can provide (a one-view val store
    gives no loss to a stereo method, a val store without the method's extras, e.g. ``seg`` or
    ``hint_depth``, none to a method that needs them); metrics need ``gt_depth`` and a stage that
    predicts depth (an auto-encoder stage reports its loss only).
    """
    store = open_store(store_path)
    request = method.loader_request()
    frames = tuple(f for f in request.frames if f != "stereo" or store.views >= 2)
    with_loss = frames == request.frames and all(store.has(EXTRA_ARRAYS[e]) for e in request.extras)
    predictor = method.predictor(nets) if method.predicts_depth else None
    protocol = None
    if predictor is not None and store.has("gt_depth"):
        protocol = select_protocol(store, predictor.scaling)
    loader = make_loader(
        store_path,
        method.config.batch_size,
        workers=0,
        shuffle=False,
        frames=frames,
        extras=tuple(dict.fromkeys((*request.extras, "gt"))),
        rank=0,
        world_size=1,  # the whole val store, also when rank 0 validates under DDP
    )
    generator = torch.Generator(runtime.device).manual_seed(method.config.seed)
    nets.train(False)
    loss_sum, loss_count = 0.0, 0
    depths: list[np.ndarray] = []
    gts: list[np.ndarray] = []
    try:
        for i, batch in enumerate(loader):
            if max_batches is not None and i >= max_batches:
                break
            if with_loss:
                result = validation_step(runtime, method, batch, generator)
                if result is not None:
                    loss_sum += float(result.loss) * result.samples
                    loss_count += result.samples
            if protocol is not None and predictor is not None:
                arguments = batch_arguments(
                    predictor, batch, store, protocol, method.config, runtime.device
                )
                depths.append(predictor(*arguments)[:, 0].float().cpu().numpy())
                gts += gt_maps(batch)
    finally:
        nets.train(True)
    out: dict[str, float] = {}
    if loss_count:
        out["val/loss"] = loss_sum / loss_count
    if protocol is not None and depths:
        metrics = protocol_metrics(protocol, gts, np.concatenate(depths))
        out |= {f"val/{k}": v for k, v in metrics.items() if not k.startswith("ratio")}
    return out
