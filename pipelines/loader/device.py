"""The one device resolver (training, evaluation and the store passes)."""

from __future__ import annotations

import torch


def resolve_device(name: str | torch.device | None) -> torch.device:
    """``name`` as a device; None = ``cuda`` when available, else ``cpu``.

    Raises:
        ValueError: an unknown device name, or CUDA requested where it is not available.
    """
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"unknown device {name!r}") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(name)!r} requested but CUDA is not available")
    return device
