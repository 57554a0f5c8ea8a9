"""Validation during training: mean loss on the val store and depth metrics when it has
ground truth (protocol chosen as in :mod:`train.evaluator`)."""

from __future__ import annotations

import numpy as np
import torch

from pipelines.loader import make_loader, resize_bilinear
from pipelines.store import open_store
from train.build import Models, Runtime
from train.config import TrainConfig
from train.evaluator import nyu_image_crop, protocol_metrics, scaled_disparity, select_protocol
from train.step import validation_step


def val_frames(config: TrainConfig, views: int) -> tuple[str, ...]:
    """Loader frames for validation: the training sources the store can provide."""
    return tuple(f for f in config.loader_frames if f != "stereo" or views >= 2)


@torch.no_grad()
def validate(
    runtime: Runtime,
    models: Models,
    config: TrainConfig,
    store_path: str,
    max_batches: int | None = None,
) -> dict[str, float]:
    """``{"val/loss": ..., "val/abs_rel": ..., ...}`` over the first ``max_batches`` batches of
    the val store, in store order, without augmentation; networks are put back in train mode.

    The loss covers samples with every source frame; metrics need ``gt_depth``.
    """
    store = open_store(store_path)
    frames = val_frames(config, store.views)
    needs_stereo = config.use_stereo and "stereo" not in frames
    protocol = select_protocol(store, config) if store.has("gt_depth") else None
    crop = nyu_image_crop(store.image_size) if protocol and protocol.name == "nyu" else None
    loader = make_loader(
        store_path,
        config.batch_size,
        workers=0,
        shuffle=False,
        frames=frames,
        extras=("gt",),
    )
    generator = torch.Generator(runtime.device).manual_seed(config.seed)
    models.train(False)
    loss_sum, loss_count = 0.0, 0
    disps: list[np.ndarray] = []
    gts: list[np.ndarray] = []
    try:
        for i, batch in enumerate(loader):
            if max_batches is not None and i >= max_batches:
                break
            batch = batch.to(runtime.device)
            if not needs_stereo:
                result = validation_step(runtime, batch, config, generator)
                if result is not None:
                    loss_sum += float(result.loss) * result.samples
                    loss_count += result.samples
            if protocol is not None:
                x = batch.target.float().div(255.0)
                if crop is not None:
                    x = x[..., crop[0] : crop[1], crop[2] : crop[3]].contiguous()
                x = resize_bilinear(x, (config.height, config.width))
                disps.append(scaled_disparity(models, x, config))
                for gt, (h, w) in zip(
                    batch.gt_depth.cpu().numpy(), batch.gt_size.cpu().numpy(), strict=True
                ):
                    gts.append(np.ascontiguousarray(gt[:h, :w]))
    finally:
        models.train(True)
    out: dict[str, float] = {}
    if loss_count:
        out["val/loss"] = loss_sum / loss_count
    if protocol is not None and disps:
        metrics = protocol_metrics(protocol, gts, np.concatenate(disps), config)
        out |= {f"val/{k}": v for k, v in metrics.items() if not k.startswith("ratio")}
    return out
