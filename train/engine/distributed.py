"""DDP under ``torchrun``: the process group, host-side agreement between ranks, per-rank
random state, and per-step generator seeds.

The training generators are re-seeded before every step from ``(seed, rank, step)``
(:func:`seed_step`), so they need no saved state: a resumed run, on any device and any rank,
draws exactly what an uninterrupted one draws. The global RNGs (python, numpy, torch, CUDA) are
saved per rank (:func:`gather_objects`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as tdist


@dataclass
class Distributed:
    """DDP position from ``torchrun``'s environment (rank 0 of 1 when not launched by it).

    ``host_group``: a gloo group for small host-side agreements (a NCCL all-reduce of a flag
    would make the CPU wait for the GPU); None when not distributed.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    host_group: Any = field(default=None, repr=False)
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def all_true(self, flag: bool) -> bool:
        """True when ``flag`` is true on every rank (host-side, no GPU synchronisation)."""
        return self.all_true_each(flag)[0]

    def all_true_each(self, *flags: bool) -> list[bool]:
        """For each flag, True when it is true on every rank: one host-side all-reduce."""
        if not self.enabled:
            return list(flags)
        value = torch.tensor([1 if f else 0 for f in flags], dtype=torch.int32)
        tdist.all_reduce(value, op=tdist.ReduceOp.MIN, group=self.host_group)
        return [bool(v) for v in value.tolist()]

    def barrier(self) -> None:
        if self.enabled:
            tdist.barrier(group=self.host_group)

    def close(self) -> None:
        """Destroy the process group when this run created it."""
        if self.owns_group and tdist.is_initialized():
            tdist.destroy_process_group()


def init_distributed(device_name: str | None) -> Distributed:
    """Initialise the process group when ``WORLD_SIZE`` > 1 (NCCL with ``device_id`` on CUDA,
    else gloo), plus a gloo group for host-side flags."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() and (device_name is None or device_name.startswith("cuda"))
    owns = not tdist.is_initialized()
    if cuda:
        torch.cuda.set_device(local)
        if owns:
            tdist.init_process_group("nccl", device_id=torch.device("cuda", local))
    elif owns:
        tdist.init_process_group("gloo")
    host = tdist.new_group(backend="gloo") if cuda else None
    return Distributed(rank, world, local, host_group=host, owns_group=owns)


def gather_objects(obj: Any, dist: Distributed) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (``[obj]`` when not distributed)."""
    if not dist.enabled:
        return [obj]
    out: list[Any] = [None] * dist.world_size
    tdist.all_gather_object(out, obj, group=dist.host_group)
    return out


def step_seed(seed: int, rank: int, step: int, stream: int) -> int:
    """A 63-bit seed for generator ``stream`` of ``rank`` at optimiser ``step``."""
    return (((seed * 1_000_003 + rank) * 1_000_033 + stream) * 1_000_000_007 + step) & (2**63 - 1)


def seed_step(generators: dict[str, torch.Generator], seed: int, rank: int, step: int) -> None:
    """Re-seed every named generator for ``step`` (manual_seed is a host call on any device)."""
    for stream, name in enumerate(sorted(generators)):
        generators[name].manual_seed(step_seed(seed, rank, step, stream))
