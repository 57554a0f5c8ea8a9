"""Checkpoints that resume a run exactly: networks, optimiser, scheduler, counters, RNG states.

One ``torch.save`` file, a plain dict: ``format``, ``method``, ``config`` (a dict),
``models`` (state dict per network, frozen ones included), ``optimisers`` and ``schedulers``
(state dict per :class:`~train.methods.OptimiserSpec` name), ``epoch`` (the epoch to run
next, or the current one when ``batch_in_epoch`` > 0), ``step``
(optimiser steps done), ``batch_in_epoch`` (batches of ``epoch`` already consumed), ``rng``
(python, numpy, torch CPU and CUDA of every DDP rank). The numpy RNG state is not a
tensor, so the file needs ``torch.load(weights_only=False)``: read only checkpoints you trust.
Weights-only files (:func:`save_weights`, the per-epoch ``epoch_NNN.pt``) leave out
``optimisers``, ``schedulers`` and ``rng``.

A plug-in method's checkpoint also records where the plug-in came from (``plugin``: module and
file), so a checkpoint whose method is not registered is refused with the way to load it.

Older formats are upgraded on read by the owning method's
:meth:`~train.methods.Method.upgrade_checkpoint` (the payload's method, or for a format that names
none, the method listing it in ``upgrades_formats``: ``depthkit-checkpoint/1`` is Monodepth2's
before methods were plug-ins); anything else is refused with the format that wrote it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from train.checkpoint_file import atomic_save, load_payload
from train.engine.config import TrainConfig
from train.methods import (
    Method,
    Networks,
    OptimiserSpec,
    config_from_dict,
    method_class,
    method_origin,
    methods,
)
from train.methods.plugins import ENV_VAR

FORMAT = "depthkit-checkpoint/2"
OLDER_FORMATS = ("depthkit-checkpoint/1",)


@dataclass
class TrainState:
    """Counters of a run: ``epoch`` to run (next), optimiser ``step`` count, and the batches of
    ``epoch`` already consumed (``batch_in_epoch``, 0 at an epoch boundary)."""

    epoch: int = 0
    step: int = 0
    batch_in_epoch: int = 0


def rng_state() -> dict[str, Any]:
    """This process's global random states: python, numpy, torch CPU and CUDA. (The run's own
    generators are re-seeded from (seed, rank, step) every step and need no saving.)"""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved. CUDA states go to as many devices as both the saved
    run and this machine have (resuming on fewer GPUs, or on the CPU, works)."""
    random.setstate(_python_state(state["python"]))
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        for index, cuda_state in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state, index)


def save_checkpoint(
    path: str | Path,
    config: TrainConfig,
    nets: Networks,
    optimisers: list[OptimiserSpec],
    state: TrainState,
    rank_rng: list[dict[str, Any]] | None = None,
) -> Path:
    """Write a checkpoint atomically (temporary file, then rename). Returns ``path``.

    ``rank_rng``: :func:`rng_state` of every DDP rank, in rank order (default: this process's).
    """
    resume = {
        "optimisers": {o.name: o.optimiser.state_dict() for o in optimisers},
        "schedulers": {o.name: o.scheduler.state_dict() for o in optimisers},
        "rng": {"ranks": rank_rng if rank_rng is not None else [rng_state()]},
    }
    return _save(path, config, nets, state, resume)


def save_weights(path: str | Path, config: TrainConfig, nets: Networks, state: TrainState) -> Path:
    """Write a weights-only checkpoint atomically: ``config``, ``models``, ``epoch``, ``step``.

    About a third of a full checkpoint (no Adam moments, no RNG states): what ``eval`` needs, not
    what ``--resume`` needs. Returns ``path``.
    """
    return _save(path, config, nets, state, {})


def _save(
    path: str | Path, config: TrainConfig, nets: Networks, state: TrainState, extra: dict[str, Any]
) -> Path:
    payload = {
        "format": FORMAT,
        "method": config.method,
        "config": config.to_dict(),
        "models": {name: module.state_dict() for name, module in nets.named().items()},
        "epoch": state.epoch,
        "step": state.step,
        "batch_in_epoch": state.batch_in_epoch,
        **extra,
    }
    origin = method_origin(method_class(config.method))
    if origin is not None:
        payload["plugin"] = origin
    return atomic_save(payload, path)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint dict onto the CPU, upgraded to the current format.

    Raises:
        ValueError: missing, unreadable, not a depthkit checkpoint, or written by a format or
            method this version does not know (the message names the file and the format).
    """
    path = Path(path)
    payload = load_payload(path)
    written = payload["format"]
    if written not in (FORMAT, *OLDER_FORMATS):
        raise ValueError(f"{path}: written as {written}, which this version ({FORMAT}) cannot read")
    name = payload.get("method") or payload.get("config", {}).get("method")
    owner = _owner(path, name, payload) if name else _format_owner(path, written)
    payload = owner.upgrade_checkpoint(payload)
    if "method" not in payload.get("config", {}):
        raise ValueError(f"{path}: written as {written}, which this version ({FORMAT}) cannot read")
    return payload


def _owner(path: Path, name: str, payload: dict[str, Any]) -> type[Method]:
    """The registered method ``name``, or one line saying how to load its plug-in."""
    registered = methods()
    if name in registered:
        return registered[name]
    plugin = payload.get("plugin") or {}
    where = plugin.get("file") or plugin.get("module")
    how = (
        f"load its plug-in: {ENV_VAR}={where}"
        if where
        else f"load the plug-in that registers it ({ENV_VAR}=FILE.py or an installed "
        "depthkit.plugins entry point)"
    )
    raise ValueError(
        f"{path}: trained with method {name!r}, which is not registered; {how} "
        f"(registered: {', '.join(sorted(registered))})"
    )


def _format_owner(path: Path, written: str) -> type[Method]:
    owners = [m for m in methods().values() if written in vars(m).get("upgrades_formats", ())]
    if len(owners) != 1:
        raise ValueError(f"{path}: written as {written}, which this version ({FORMAT}) cannot read")
    return owners[0]


def checkpoint_config(payload: dict[str, Any]) -> TrainConfig:
    """The :class:`TrainConfig` stored in a checkpoint (its method's params rebuilt)."""
    return config_from_dict(payload["config"])


def load_networks(
    payload: dict[str, Any], nets: Networks, *, missing_ok: bool = False
) -> list[str]:
    """Copy the stored network weights into ``nets`` (strict for every stored network).

    Returns the names of the networks the checkpoint has no weights for; they keep their
    initialisation (only with ``missing_ok``, else ValueError).

    Raises:
        ValueError: a network is missing (without ``missing_ok``) or its weights do not fit.
    """
    missing = [name for name in nets.named() if name not in payload["models"]]
    if missing and not missing_ok:
        raise ValueError(f"checkpoint has no weights for the {missing[0]} network")
    for name, module in nets.named().items():
        if name in payload["models"]:
            try:
                module.load_state_dict(payload["models"][name])
            except RuntimeError as e:
                first = str(e).strip().splitlines()[0]
                raise ValueError(f"the {name} network's weights do not fit: {first}") from e
    return missing


def init_networks(path: str | Path, nets: Networks, method: str) -> list[str]:
    """Start ``nets`` from the network weights of the checkpoint at ``path`` (``train --init``);
    networks it lacks keep their initialisation. Returns their names.

    Raises:
        ValueError: unreadable checkpoint, another method's, or weights that do not fit.
    """
    payload = read_checkpoint(path)
    if payload["config"]["method"] != method:
        raise ValueError(
            f"{path}: a {payload['config']['method']} checkpoint cannot start a {method} run"
        )
    try:
        return load_networks(payload, nets, missing_ok=True)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from e


def restore(
    payload: dict[str, Any],
    nets: Networks,
    optimisers: list[OptimiserSpec],
    rank: int = 0,
) -> TrainState:
    """Restore networks, optimisers, schedulers and this ``rank``'s RNG states (rank 0's when the
    saved run had fewer ranks); return the counters.

    Raises:
        ValueError: ``payload`` is a weights-only file (:func:`save_weights`).
    """
    if "optimisers" not in payload:
        raise ValueError("a weights-only epoch file cannot be resumed; resume from last.pt")
    load_networks(payload, nets)
    for spec in optimisers:
        spec.optimiser.load_state_dict(payload["optimisers"][spec.name])
        spec.scheduler.load_state_dict(payload["schedulers"][spec.name])
    ranks = payload["rng"].get("ranks", [payload["rng"]])  # older files: one state
    set_rng_state(ranks[rank] if rank < len(ranks) else ranks[0])
    return TrainState(payload["epoch"], payload["step"], payload["batch_in_epoch"])


def match_optimiser_layout(optimisers: list[OptimiserSpec]) -> None:
    """Give every optimiser state tensor shaped like its parameter the parameter's memory format
    (a contiguous checkpoint resumed with channels_last would push Adam off its fast path)."""
    for spec in optimisers:
        for param, state in spec.optimiser.state.items():
            for key, value in state.items():
                if isinstance(value, torch.Tensor) and value.shape == param.shape:
                    if value.stride() != param.stride():
                        state[key] = torch.empty_like(param).copy_(value)


def _python_state(state: Any) -> tuple:
    # torch.save keeps tuples, but be tolerant of lists (e.g. after a JSON round trip).
    version, internal, gauss = state
    return (version, tuple(internal), gauss)
