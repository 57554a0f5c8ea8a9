"""A predictor's arguments from a store batch: the network-size image and, for predictors that
ask for them (:attr:`train.methods.Predictor.inputs`), the previous frame and the intrinsics.

Used by evaluation (:mod:`train.eval.evaluate`) and validation during training, so neither
names a method. The previous frame comes from the store's ``samples`` table (a KITTI test store
made with ``prepare-kitti --prev-frames``); a sample without one gets a black image, as
ManyDepth's evaluation does, and is counted. Intrinsics are the model's fixed training camera
when it has one (:meth:`~train.methods.Predictor.fixed_intrinsics`, what the reference
evaluates with), else the store's, cropped and resized like the image.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from pipelines.loader import Batch, pixel_intrinsics, resize_bilinear
from pipelines.store import Store
from train.eval.protocols import Protocol, nyu_image_crop
from train.methods import Predictor

if TYPE_CHECKING:
    from train.engine.config import TrainConfig


def network_input(
    target: Tensor, store: Store, protocol: Protocol | None, config: TrainConfig
) -> Tensor:
    """uint8 ``(B, 3, H, W)`` store images -> float ``(B, 3, h, w)`` in [0, 1] at the network
    size (bilinear, antialiased), after the NYU crop under the ``nyu`` protocol."""
    x = target.float().div(255.0)
    if protocol is not None and protocol.name == "nyu":
        top, bottom, left, right = nyu_image_crop(store.image_size)
        x = x[..., top:bottom, left:right]
    return resize_bilinear(x.contiguous(), (config.height, config.width))


def loader_frames(predictor: Predictor) -> tuple[str, ...]:
    """The loader frames a predictor needs (``("prev",)`` for two-frame predictors)."""
    return ("prev",) if "previous" in predictor.inputs else ()


def check_previous_frames(predictor: Predictor, store: Store) -> None:
    """Refuse a store without previous frames for a predictor that needs them (one line)."""
    if "previous" in predictor.inputs and not bool((store.samples[:, 1] >= 0).any()):
        raise ValueError(
            f"{store.path}: this model predicts from (previous, current) frame pairs and the "
            "store's samples have no previous frames (KITTI test stores: prepare-kitti "
            "--prev-frames)"
        )


def missing_previous(predictor: Predictor, batch: Batch) -> int:
    """Samples of ``batch`` given a black previous frame (0 for single-frame predictors)."""
    if "previous" not in predictor.inputs or batch.has_prev is None:
        return 0
    return int((~batch.has_prev).sum())


def store_intrinsics(
    batch: Batch, store: Store, protocol: Protocol | None, size: tuple[int, ...]
) -> Tensor:
    """``(B, 4, 4)`` pixel intrinsics of the network input from the store's (cropped under the
    ``nyu`` protocol, then resized like the image)."""
    K = batch.K.float().clone()
    in_size = tuple(store.image_size)
    if protocol is not None and protocol.name == "nyu":
        top, bottom, left, right = nyu_image_crop(store.image_size)
        K[:, 0, 2] -= left
        K[:, 1, 2] -= top
        in_size = (bottom - top, right - left)
    flipped = torch.zeros(K.shape[0], dtype=torch.bool)
    return pixel_intrinsics(K, in_size, tuple(size), flipped)


def batch_arguments(
    predictor: Predictor,
    batch: Batch,
    store: Store,
    protocol: Protocol | None,
    config: TrainConfig,
    device: torch.device | str,
) -> tuple[Tensor, ...]:
    """``predictor``'s arguments for a host or device ``batch`` (module docstring)."""
    x = network_input(batch.target.to(device), store, protocol, config)
    previous = intrinsics = None
    if "previous" in predictor.inputs:
        if batch.prev is None:
            raise ValueError("the batch has no previous frames (load it with frames=('prev',))")
        previous = network_input(batch.prev.to(device), store, protocol, config)
    if "intrinsics" in predictor.inputs:
        intrinsics = predictor.fixed_intrinsics(*x.shape[-2:])
        if intrinsics is None:
            intrinsics = store_intrinsics(batch, store, protocol, x.shape[-2:])
    return predictor.arguments(x, previous, intrinsics)


def flip_arguments(predictor: Predictor, arguments: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """The arguments of the mirrored scene: images flipped left-right; intrinsics mirrored
    (``cx' = w - 1 - cx``) unless they are the model's fixed camera, which a flip leaves
    unchanged in its convention (as training's flips do)."""
    out = []
    for name, value in zip(predictor.inputs, arguments, strict=True):
        if name in ("image", "previous"):
            value = value.flip(-1)
        elif name == "intrinsics" and predictor.fixed_intrinsics(1, 1) is None:
            value = value.clone()
            width = arguments[predictor.inputs.index("image")].shape[-1]
            value[:, 0, 2] = width - 1 - value[:, 0, 2]
        out.append(value)
    return tuple(out)
