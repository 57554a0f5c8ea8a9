"""The one device resolver (training, evaluation and the store passes), and the default number
of loader workers."""

from __future__ import annotations

import os

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


def resolve_workers(workers: int | None) -> int:
    """Loader worker processes: ``workers``, or None = up to 4, no more than the cores this
    process may use minus one (torch warns about more workers than cores)."""
    if workers is not None:
        return workers
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(0, min(4, cores - 1))
