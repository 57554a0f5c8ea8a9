"""Recycled shared-memory batch buffers for DataLoader workers.

Why: a DataLoader worker hands tensors to the main process through shared memory, and fresh
shared memory costs a page fault per 4 KiB page when first written. On virtual machines that is
the most expensive step of the whole loader (about 15 ms per 12-sample batch on the development
VM, 5x the decompression). So each worker keeps a pool of buffers and rewrites them once the
main process has dropped every tensor that uses them.

How:

* Every :class:`~pipelines.loader.batch.Batch` a worker builds lives in ONE shared uint8 buffer (its
  fields are views at 64-byte aligned offsets), so pickling it passes one file descriptor.
* ``Batch.__reduce__`` sends the buffer, the views' layout and a lease ``(channel, worker,
  buffer id)``; :func:`unpack` rebuilds the views in the main process and remembers a weak
  reference to the buffer's storage.
* Whenever the main process unpacks a batch it returns the buffers whose storage has died (the
  trainer and the pin-memory copy are done with them) over a one-way pipe per worker, created
  before the workers start (:func:`open_channel`). The worker reads the pipe before allocating
  and reuses the returned buffers. Nothing blocks: without returns the worker allocates anew.

Without a channel (plain ``DataLoader`` over the dataset, or no workers) batches are allocated
fresh every time, which is always correct.
"""

from __future__ import annotations

import itertools
import multiprocessing
import secrets
import threading
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import torch
from torch import Tensor
from torch.multiprocessing.reductions import StorageWeakRef

ALIGN = 64
POOL_SIZE = 32  # buffers kept per worker; more in flight are allocated and not recycled

Lease = tuple[str, int, int, int]  # (channel id, worker index, pool token, buffer id)

# Main process: channel id -> send ends (one per worker); leases of batches handed out.
_SENDERS: dict[str, list[Connection]] = {}
_LEASES: list[tuple[StorageWeakRef, Lease]] = []
_LOCK = threading.Lock()


@dataclass
class Channel:
    """One-way pipes main -> worker for returned buffer ids (made before the workers fork)."""

    id: str
    receivers: list[Connection]


def open_channel(workers: int, owner: object | None = None) -> Channel | None:
    """Pipes for ``workers`` DataLoader workers (None for no workers); the main process's ends
    are closed when ``owner`` is garbage collected."""
    if workers < 1:
        return None
    pipes = [multiprocessing.Pipe(duplex=False) for _ in range(workers)]
    channel_id = uuid.uuid4().hex
    _SENDERS[channel_id] = [send for _, send in pipes]
    if owner is not None:
        weakref.finalize(owner, close_channel, channel_id)
    return Channel(channel_id, [recv for recv, _ in pipes])


def close_channel(channel_id: str) -> None:
    """Close the main process's send ends of a channel (outstanding leases are forgotten)."""
    for sender in _SENDERS.pop(channel_id, []):
        sender.close()


@dataclass
class BufferPool:
    """Worker side: shared uint8 buffers by id, and the ids free for reuse.

    ``token`` is random per pool: returns addressed to an earlier worker process on the same
    pipe (non-persistent workers are re-created every epoch) are ignored.
    """

    channel: Channel | None
    worker: int
    buffers: dict[int, Tensor] = field(default_factory=dict)
    free: list[int] = field(default_factory=list)
    token: int = field(default_factory=lambda: secrets.randbits(62))
    _ids: Any = field(default_factory=itertools.count)

    def get(self, nbytes: int) -> tuple[Tensor, Lease | None]:
        """A shared uint8 ``(nbytes,)`` buffer and its lease (None when it is not recycled)."""
        if self.channel is None:
            return _new_shared(nbytes), None
        receiver = self.channel.receivers[self.worker]
        while receiver.poll():
            token, buf_id = receiver.recv()
            if token == self.token and buf_id in self.buffers:
                self.free.append(buf_id)
        while self.free:
            buf_id = self.free.pop()
            if self.buffers[buf_id].numel() == nbytes:
                return self.buffers[buf_id], self._lease(buf_id)
            del self.buffers[buf_id]  # a different size (e.g. a short last batch): drop it
        buffer = _new_shared(nbytes)
        if len(self.buffers) >= POOL_SIZE:
            return buffer, None
        buf_id = next(self._ids)
        self.buffers[buf_id] = buffer
        return buffer, self._lease(buf_id)

    def _lease(self, buf_id: int) -> Lease:
        assert self.channel is not None
        return (self.channel.id, self.worker, self.token, buf_id)


def carve(buffer: Tensor, specs: Sequence[tuple[torch.dtype, tuple[int, ...]]]) -> list[Tensor]:
    """Contiguous tensors of the given dtypes and shapes, one after another in ``buffer``."""
    out, offset = [], 0
    for dtype, shape in specs:
        item = torch.empty(0, dtype=dtype).element_size()
        numel = 1
        for s in shape:
            numel *= s
        out.append(buffer[offset : offset + numel * item].view(dtype).view(shape))
        offset += -(-numel * item // ALIGN) * ALIGN
    return out


def nbytes_for(specs: Sequence[tuple[torch.dtype, tuple[int, ...]]]) -> int:
    """Buffer size :func:`carve` needs for ``specs``."""
    total = 0
    for dtype, shape in specs:
        numel = 1
        for s in shape:
            numel *= s
        total += -(-numel * torch.empty(0, dtype=dtype).element_size() // ALIGN) * ALIGN
    return max(total, ALIGN)


def pack(buffer: Tensor, values: dict[str, Tensor | None]) -> list[tuple]:
    """Layout of tensors that are views of ``buffer``: (name, dtype, size, stride, offset)."""
    base = buffer.data_ptr()
    layout = []
    for name, t in values.items():
        if t is None:
            layout.append((name, None, None, None, None))
        else:
            offset = (t.data_ptr() - base) // t.element_size()
            layout.append((name, t.dtype, tuple(t.shape), tuple(t.stride()), offset))
    return layout


def unpack(buffer: Tensor, layout: list[tuple], lease: Lease | None) -> dict:
    """Main process: rebuild the views of ``buffer`` and hand back buffers no longer used."""
    storage = buffer.untyped_storage()
    values = {}
    for name, dtype, size, stride, offset in layout:
        if dtype is None:
            values[name] = None
        else:
            values[name] = torch.empty(0, dtype=dtype).set_(storage, offset, size, stride)
    if lease is not None:
        with _LOCK:
            _return_dead()
            _LEASES.append((StorageWeakRef(storage), lease))
    return values


def _return_dead() -> None:
    """Send the ids of leased buffers whose storage died back to their workers."""
    alive = []
    for ref, lease in _LEASES:
        channel_id, worker, token, buf_id = lease
        senders = _SENDERS.get(channel_id)
        if senders is None:
            continue
        if ref.expired():
            try:
                senders[worker].send((token, buf_id))
            except OSError:
                pass  # the channel was closed
        else:
            alive.append((ref, lease))
    _LEASES[:] = alive


def _new_shared(nbytes: int) -> Tensor:
    storage = torch.empty(0, dtype=torch.uint8)._typed_storage()._new_shared(nbytes)
    return torch.empty(0, dtype=torch.uint8).set_(storage)
