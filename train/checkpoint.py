"""Checkpoints that resume a run exactly: networks, optimiser, scheduler, counters, RNG states.

One ``torch.save`` file (a plain dict of tensors, numbers and strings, loadable with
``weights_only=True``): ``models`` (state dict per network), ``optimiser``, ``scheduler``,
``epoch`` (the epoch to run next, or the current one when ``batch_in_epoch`` > 0), ``step``
(optimiser steps done), ``batch_in_epoch`` (batches of ``epoch`` already consumed), ``rng``
(python, numpy, torch CPU, CUDA, and the run's own generators) and ``config`` (a dict).
Weights-only files (:func:`save_weights`, the per-epoch ``epoch_NNN.pt``) leave out ``optimiser``,
``scheduler`` and ``rng``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from train.build import Models
from train.config import TrainConfig

FORMAT = "depthkit-checkpoint/1"


@dataclass
class TrainState:
    """Counters of a run: ``epoch`` to run (next), optimiser ``step`` count, and the batches of
    ``epoch`` already consumed (``batch_in_epoch``, 0 at an epoch boundary)."""

    epoch: int = 0
    step: int = 0
    batch_in_epoch: int = 0


def rng_state(generators: dict[str, torch.Generator]) -> dict[str, Any]:
    """Every random state that influences training: python, numpy, torch (CPU, CUDA), and the
    run's named ``generators``."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "generators": {name: g.get_state() for name, g in generators.items()},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], generators: dict[str, torch.Generator]) -> None:
    """Restore what :func:`rng_state` saved (CUDA states only when CUDA is available)."""
    random.setstate(_python_state(state["python"]))
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    for name, g in generators.items():
        if name in state["generators"]:
            g.set_state(state["generators"][name])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    path: str | Path,
    config: TrainConfig,
    models: Models,
    optimiser: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    state: TrainState,
    generators: dict[str, torch.Generator],
) -> Path:
    """Write a checkpoint atomically (temporary file, then rename). Returns ``path``."""
    resume = {
        "optimiser": optimiser.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng_state(generators),
    }
    return _save(path, config, models, state, resume)


def save_weights(path: str | Path, config: TrainConfig, models: Models, state: TrainState) -> Path:
    """Write a weights-only checkpoint atomically: ``config``, ``models``, ``epoch``, ``step``.

    About a third of a full checkpoint (no Adam moments, no RNG states): what ``eval`` needs, not
    what ``--resume`` needs. Returns ``path``.
    """
    return _save(path, config, models, state, {})


def _save(
    path: str | Path, config: TrainConfig, models: Models, state: TrainState, extra: dict[str, Any]
) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "config": config.to_dict(),
        "models": {name: module.state_dict() for name, module in models.named().items()},
        "epoch": state.epoch,
        "step": state.step,
        "batch_in_epoch": state.batch_in_epoch,
        **extra,
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint dict onto the CPU.

    Raises:
        ValueError: missing, unreadable or not a depthkit checkpoint (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file
        raise ValueError(f"{path}: not a readable checkpoint ({e})") from e
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} file")
    return payload


def checkpoint_config(payload: dict[str, Any]) -> TrainConfig:
    """The :class:`TrainConfig` stored in a checkpoint."""
    return TrainConfig.from_dict(payload["config"])


def load_models(payload: dict[str, Any], models: Models) -> None:
    """Copy the stored network weights into ``models`` (strict)."""
    for name, module in models.named().items():
        if name not in payload["models"]:
            raise ValueError(f"checkpoint has no weights for the {name} network")
        module.load_state_dict(payload["models"][name])


def restore(
    payload: dict[str, Any],
    models: Models,
    optimiser: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generators: dict[str, torch.Generator],
) -> TrainState:
    """Restore networks, optimiser, scheduler and RNG states; return the counters.

    Raises:
        ValueError: ``payload`` is a weights-only file (:func:`save_weights`).
    """
    if "optimiser" not in payload:
        raise ValueError("a weights-only epoch file cannot be resumed; resume from last.pt")
    load_models(payload, models)
    optimiser.load_state_dict(payload["optimiser"])
    scheduler.load_state_dict(payload["scheduler"])
    set_rng_state(payload["rng"], generators)
    return TrainState(payload["epoch"], payload["step"], payload["batch_in_epoch"])


def _python_state(state: Any) -> tuple:
    # torch.save keeps tuples, but be tolerant of lists (e.g. after a JSON round trip).
    version, internal, gauss = state
    return (version, tuple(internal), gauss)
