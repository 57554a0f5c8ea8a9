"""Pretrained weights: torchvision weight enums read from the local torch cache, or a file.

The one resolver of the project: the networks of ``train.models`` and the DeepLabv3 masks pass
both load through it (it lives here, below both, because ``pipelines`` never imports ``train``).

Nothing is ever downloaded. A torchvision enum such as ``ResNet18_Weights.IMAGENET1K_V1`` names a
file (the last part of its URL) that must already sit in ``torch.hub.get_dir()/checkpoints/``;
when it is missing, :class:`MissingWeightsError` says which file to put where.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import Tensor
from torchvision.models import WeightsEnum, get_model_weights

WeightsArg = WeightsEnum | str | Path | None
"""What a builder accepts as ``weights``: a torchvision enum member, the name of one
(``"IMAGENET1K_V1"``, ``"DEFAULT"``, ``"ResNet18_Weights.IMAGENET1K_V1"``, or ``"imagenet"`` for
``IMAGENET1K_V1``, the weights monodepth2 used), a path to a state-dict file, or ``None`` (random
initialisation)."""


Weights = WeightsArg | Mapping[str, Tensor]
"""A :data:`WeightsArg`, or an already loaded state dict."""


class MissingWeightsError(ValueError):
    """A pretrained weights file is not in the local torch cache (or the named file is absent)."""


def resnet_weights_enum(num_layers: int) -> type[WeightsEnum]:
    """The torchvision weights enum of ``resnet<num_layers>`` (e.g. ``ResNet18_Weights``)."""
    return get_model_weights(f"resnet{num_layers}")


def resolve_weights(weights: WeightsArg, enum_cls: type[WeightsEnum]) -> WeightsEnum | Path | None:
    """Turn a builder's ``weights`` argument into an enum member, a file path, or ``None``.

    A string is first matched (case-insensitively) against the member names of ``enum_cls``
    (an optional ``"<EnumName>."`` prefix is allowed); anything else is taken as a file path.
    """
    if weights is None or isinstance(weights, WeightsEnum | Path):
        if isinstance(weights, WeightsEnum) and not isinstance(weights, enum_cls):
            raise ValueError(f"weights {weights} do not belong to {enum_cls.__name__}")
        return weights
    name = weights.split(".", 1)[1] if weights.startswith(enum_cls.__name__ + ".") else weights
    if name.lower() == "imagenet":
        name = "IMAGENET1K_V1"
    member = enum_cls.__members__.get(name.upper())
    return member if member is not None else Path(weights)


def cached_weights_path(weights: WeightsEnum) -> Path:
    """Where the local torch hub cache keeps the file of ``weights`` (whether or not it exists)."""
    file_name = Path(urlparse(weights.url).path).name
    return Path(torch.hub.get_dir()) / "checkpoints" / file_name


def load_state_dict_file(path: Path) -> dict[str, Tensor]:
    """Read a state dict (``torch.save`` of a ``dict[str, Tensor]``) onto the CPU.

    Raises:
        MissingWeightsError: the file does not exist.
        ValueError: the file is unreadable, truncated or does not hold a dict of tensors.
    """
    if not path.is_file():
        raise MissingWeightsError(f"weights file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for a bad file
        raise ValueError(
            f"cannot read weights file {path}: not a torch state dict file "
            f"(torch.load failed: {type(exc).__name__})"
        ) from exc
    for key in ("state_dict", "model"):  # training-framework checkpoints wrap the state dict
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"weights file {path} does not hold a state dict of tensors")
    return state


def load_weights(weights: WeightsEnum | Path) -> dict[str, Tensor]:
    """The state dict of an enum member (from the local cache only) or of a file.

    Raises:
        MissingWeightsError: the enum's file is not cached; the message names the file, the
            folder to put it in and the URL it comes from.
    """
    if isinstance(weights, Path):
        return load_state_dict_file(weights)
    path = cached_weights_path(weights)
    if not path.is_file():
        raise MissingWeightsError(
            f"pretrained weights {type(weights).__name__}.{weights.name} are not in the local "
            f"torch cache: put {path.name} (from {weights.url}) at {path}, or pass a weights "
            "file instead, or start from random weights (train: --no-pretrained)"
        )
    return load_state_dict_file(path)


def weights_state_dict(weights: Weights, enum_cls: type[WeightsEnum]) -> dict[str, Tensor] | None:
    """The state dict ``weights`` stands for (a given dict as it is, an enum member from the local
    cache, a file), or ``None`` for random initialisation."""
    if isinstance(weights, Mapping):
        return dict(weights)
    resolved = resolve_weights(weights, enum_cls)
    return None if resolved is None else load_weights(resolved)
