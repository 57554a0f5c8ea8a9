"""Registry of networks: name -> builder, as torchvision's ``get_model`` does for its models.

Every builder takes its own keyword arguments, pretrained weights among them (see
:data:`train.models.weights.WeightsArg`; none = random initialisation) and returns an
``nn.Module``. Methods build their networks through :func:`build_network`; the tests run every
registered network through the same checks (output shapes, backward pass, export), using
:attr:`NetworkEntry.input_channels` and :attr:`NetworkEntry.min_size` for an example input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn


@dataclass(frozen=True)
class NetworkEntry:
    """A registered network.

    Attributes:
        name: registry key, e.g. ``"monodepth2_depth"``.
        builder: ``builder(**kwargs) -> nn.Module`` (random weights when no weights are given).
        input_channels: channels of the example input (3 for RGB, 6 for a pose pair, ...).
        min_size: smallest height/width the network accepts (multiples of 32 above it).
        summary: one line for ``--help`` and the docs.
    """

    name: str
    builder: Callable[..., nn.Module]
    input_channels: int = 3
    min_size: int = 64
    summary: str = ""


NETWORKS: dict[str, NetworkEntry] = {}


def register_network(
    name: str, *, input_channels: int = 3, min_size: int = 64, summary: str = ""
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator adding a builder to :data:`NETWORKS` under ``name`` (names are unique)."""

    def add(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in NETWORKS:
            raise ValueError(f"network {name!r} is already registered")
        NETWORKS[name] = NetworkEntry(name, builder, input_channels, min_size, summary)
        return builder

    return add


def build_network(name: str, **kwargs: Any) -> nn.Module:
    """Build the registered network ``name``; ValueError listing the names otherwise."""
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; registered: {', '.join(sorted(NETWORKS))}")
    return NETWORKS[name].builder(**kwargs)
