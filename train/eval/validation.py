"""Depth metrics for validation during training: the scorer the training command hands to the
engine's :func:`train.engine.validate.validate` (protocol and scaling chosen as in
:mod:`train.eval.evaluate`)."""

from __future__ import annotations

import numpy as np
import torch

from pipelines.loader import Batch
from pipelines.store import Store
from train.eval.evaluate import gt_maps, protocol_metrics, select_protocol
from train.eval.inputs import batch_arguments
from train.eval.protocols import Protocol
from train.methods import Method, Predictor


class ProtocolScorer:
    """Predicts each batch's targets at the network size and scores them with the store's
    protocol (ratio statistics left out)."""

    def __init__(self, store: Store, method: Method, predictor: Predictor, protocol: Protocol):
        self.store, self.method, self.predictor, self.protocol = store, method, predictor, protocol
        self.depths: list[np.ndarray] = []
        self.gts: list[np.ndarray] = []

    def add(self, batch: Batch, device: torch.device) -> None:
        arguments = batch_arguments(
            self.predictor, batch, self.store, self.protocol, self.method.config, device
        )
        self.depths.append(self.predictor(*arguments)[:, 0].float().cpu().numpy())
        self.gts += gt_maps(batch)

    def metrics(self) -> dict[str, float]:
        if not self.depths:
            return {}
        values = protocol_metrics(self.protocol, self.gts, np.concatenate(self.depths))
        return {k: v for k, v in values.items() if not k.startswith("ratio")}


def depth_scorer(store: Store, method: Method, predictor: Predictor) -> ProtocolScorer | None:
    """A :class:`ProtocolScorer` for a val store with ground truth, else None (loss only)."""
    if not store.has("gt_depth"):
        return None
    return ProtocolScorer(store, method, predictor, select_protocol(store, predictor.scaling))
