"""Streaming torch dataset over a schema v1 store, and the DataLoader built on it.

:class:`StoreDataset` reads whole chunks: for a buffer of ``shuffle_chunks`` chunks it reads the
frame rows its samples need (centre rows plus the neighbour rows, usually one frame of margin on
each side) as a few contiguous slices, one zarr call per slice and array, then gathers the
samples' frames with plain numpy copies straight into the output tensors (in shared memory inside
DataLoader workers, so handing them to the main process copies nothing). Workers only decompress
and gather; everything per-pixel happens on the training device (:mod:`pipelines.loader.augment`).

Order and sharding (details in :mod:`pipelines.loader.sharding`): chunk groups are shuffled per
``(seed, epoch)``, the chunk groups of each buffer are interleaved (a batch draws from as many
chunks as the buffer holds; the two views of a frame land far apart), and the epoch sequence is
split into contiguous pieces, one per slot = ``rank * num_workers + worker``. Every sample is
yielded exactly once per epoch across all workers and ranks (``even="none"``); ``even="drop"`` /
``"pad"`` make every slot yield the same count for DDP. Every rank must use the same
``num_workers``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import fields
from multiprocessing.sharedctypes import RawValue
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from pipelines.loader import shm
from pipelines.loader.batch import IMAGE_FIELDS, Batch, Sample
from pipelines.loader.sharding import EVEN_MODES, Even, resolve_rank, slot_buffers, slot_range
from pipelines.loader.shm import BufferPool, Channel
from pipelines.store.reader import Store, open_store
from pipelines.store.rowtable import RowTable

FRAMES = ("prev", "next", "stereo")
EXTRAS = ("seg", "depth", "gt", "hint")  # "gt" = gt_depth + gt_size
EXTRA_ARRAYS = {"seg": "seg", "depth": "depth", "gt": "gt_depth", "hint": "hint_depth"}
FLIPPED_HINT = "hint_depth_flipped"  # read with "hint" when the store has it


class StoreDataset(IterableDataset):
    """Samples (or whole batches) of a store, streamed chunk by chunk.

    Args:
        path: store path or fsspec URL.
        frames: extra frames to load besides the target: any of ``"prev"``, ``"next"``
            (temporal neighbours, same view), ``"stereo"`` (other view, same frame; needs a
            two-view store). Mono: ``("prev", "next")``; stereo: ``("stereo",)``; both: all.
        extras: per-sample arrays to load where the store has them: ``"seg"``, ``"depth"``,
            ``"gt"`` (``gt_depth`` + ``gt_size``), ``"hint"`` (``hint_depth``, and
            ``hint_depth_flipped`` where the store has it). Asked-for arrays
            that the store lacks are None.
        batch_size: None yields :class:`Sample`; an int yields :class:`Batch` of that size built
            in the worker (use ``DataLoader(batch_size=None)``); each worker batches its own
            samples, so every worker's last batch may be short.
        drop_last: drop each worker's short last batch.
        shuffle: False yields samples in store order (chunks ascending).
        seed: base of the per-epoch shuffle; the order depends on (seed, epoch, world, workers).
        epoch: first epoch; change it with :meth:`set_epoch` before each ``iter(loader)`` (works
            with persistent workers: the epoch lives in shared memory).
        shuffle_chunks: chunks per shuffle buffer (memory: about 18 frame rows per chunk, 13 MB
            at 192x640 with two views); at least the batch size for batches as diverse as a
            random sampler's.
        rank, world_size: DDP position; default from ``torch.distributed`` when initialised,
            else 0 and 1.
        even: ``"none"`` (every sample once), ``"drop"`` or ``"pad"`` (equal count per slot).
        storage_options: fsspec options for URLs.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        frames: Sequence[str] = ("prev", "next"),
        extras: Sequence[str] = ("seg", "depth"),
        batch_size: int | None = None,
        drop_last: bool = False,
        shuffle: bool = True,
        seed: int = 0,
        epoch: int = 0,
        shuffle_chunks: int = 16,
        rank: int | None = None,
        world_size: int | None = None,
        even: Even = "none",
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.path = str(path)
        self.storage_options = storage_options
        store = open_store(path, storage_options=storage_options)
        self.frames = _check_names("frames", frames, FRAMES)
        if "stereo" in self.frames and store.views < 2:
            raise ValueError(f"{self.path}: 'stereo' frames need 2 views, the store has 1")
        wanted = _check_names("extras", extras, EXTRAS)
        self.extras = tuple(x for x in wanted if store.has(EXTRA_ARRAYS[x]))
        self.flipped_hints = "hint" in self.extras and store.has(FLIPPED_HINT)
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, not {batch_size}")
        if even not in EVEN_MODES:
            raise ValueError(f"even must be one of {EVEN_MODES}, not {even!r}")
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.shuffle = shuffle
        self.seed = int(seed)
        self.shuffle_chunks = int(shuffle_chunks)
        self.even: Even = even
        self.rank, self.world_size = resolve_rank(rank, world_size)
        self.num_workers = 0  # only used by __len__; make_loader sets it
        self.samples = store.samples
        self.chunk = store.chunk
        self.image_size = store.image_size
        self.gt_shape = tuple(store["gt_depth"].shape[1:]) if "gt" in self.extras else None
        self._epoch: Any = RawValue("q", int(epoch))
        self._store: Store | None = None
        self._small: dict[str, np.ndarray] = {}
        self._channel: Channel | None = None
        self._pool: BufferPool | None = None

    def attach_workers(self, workers: int) -> None:
        """Tell the dataset its DataLoader's worker count, before the loader starts: sets
        :meth:`__len__` and opens the channel that recycles batch buffers (:mod:`.shm`).
        """
        self.num_workers = workers
        self._channel = shm.open_channel(workers, owner=self)

    # ------------------------------------------------------------------ epochs and length
    @property
    def epoch(self) -> int:
        return int(self._epoch.value)

    def set_epoch(self, epoch: int) -> None:
        """Select the shuffle of ``epoch``; call before ``iter(loader)``."""
        self._epoch.value = int(epoch)

    def slot_sizes(self, num_workers: int | None = None) -> list[int]:
        """Samples each worker of this rank yields per epoch."""
        workers = max(1, self.num_workers if num_workers is None else num_workers)
        n_slots = self.world_size * workers
        ranges = [
            slot_range(len(self.samples), self.rank * workers + w, n_slots, self.even)
            for w in range(workers)
        ]
        return [stop - start for start, stop in ranges]

    def __len__(self) -> int:
        """Items (samples, or batches when ``batch_size``) this rank yields per epoch."""
        sizes = self.slot_sizes()
        if self.batch_size is None:
            return sum(sizes)
        b = self.batch_size
        return sum(n // b if self.drop_last else -(-n // b) for n in sizes)

    # ------------------------------------------------------------------ iteration
    def buffers(self) -> list[np.ndarray]:
        """Sample ids this worker yields this epoch, one array per shuffle buffer."""
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        return slot_buffers(
            self.samples[:, 0],
            self.chunk,
            seed=self.seed,
            epoch=self.epoch,
            shuffle=self.shuffle,
            slot=self.rank * workers + worker,
            n_slots=self.world_size * workers,
            shuffle_chunks=self.shuffle_chunks,
            even=self.even,
        )

    def __iter__(self) -> Iterator[Sample] | Iterator[Batch]:
        if self.batch_size is None:
            return self._iter_samples()
        return self._iter_batches(self.batch_size)

    def _iter_samples(self) -> Iterator[Sample]:
        for ids in self.buffers():
            rows = self._load(ids)
            for i in range(len(ids)):
                out = self._alloc(1, shared=False)
                self._fill(out, 0, rows, ids[i : i + 1])
                yield out.sample(0)

    def _iter_batches(self, size: int) -> Iterator[Batch]:
        shared = get_worker_info() is not None
        out, filled = None, 0
        for ids in self.buffers():
            rows = self._load(ids)
            pos = 0
            while pos < len(ids):
                if out is None:
                    out, filled = self._alloc(size, shared), 0
                take = min(size - filled, len(ids) - pos)
                self._fill(out, filled, rows, ids[pos : pos + take])
                filled, pos = filled + take, pos + take
                if filled == size:
                    yield out
                    out = None
        if out is not None and filled and not self.drop_last:
            yield out.head(filled)

    # ------------------------------------------------------------------ reading
    def _open(self) -> Store:
        """The store, opened on first use in this process (after the DataLoader's fork)."""
        if self._store is None:
            store = open_store(self.path, storage_options=self.storage_options)
            small = ["intrinsics", "baseline"] + (["gt_size"] if "gt" in self.extras else [])
            self._small = {n: np.asarray(store[n][...]) for n in small if store.has(n)}
            self._store = store
        return self._store

    def _load(self, ids: np.ndarray) -> dict[str, RowTable]:
        """Read the rows the samples ``ids`` need: images with neighbours, extras at centres."""
        store = self._open()
        s = self.samples[ids]
        image_rows = [s[:, 0]]
        for name, col in (("prev", 1), ("next", 2)):
            if name in self.frames:
                image_rows.append(s[s[:, col] >= 0, col])
        tables = {"image": RowTable.read(store["image"], np.concatenate(image_rows), self.chunk)}
        names = [EXTRA_ARRAYS[extra] for extra in self.extras]
        for name in names + [FLIPPED_HINT] * self.flipped_hints:
            tables[name] = RowTable.read(store[name], s[:, 0], self.chunk)
        return tables

    def _alloc(self, n: int, shared: bool) -> Batch:
        """An empty batch of ``n``; inside a worker one recycled shared buffer holds it all."""
        h, w = self.image_size
        specs: dict[str, tuple[torch.dtype, tuple[int, ...]]] = {
            "index": (torch.int64, (n,)),
            "row": (torch.int64, (n,)),
            "side": (torch.int64, (n,)),
            "K": (torch.float32, (n, 3, 3)),
            "baseline": (torch.float32, (n,)),
        }
        for name in ("target", *self.frames):
            specs[name] = (torch.uint8, (n, h, w, 3))
        for name in ("prev", "next"):
            if name in self.frames:
                specs[f"has_{name}"] = (torch.bool, (n,))
        if "seg" in self.extras:
            specs["seg"] = (torch.uint8, (n, h, w))
        if "depth" in self.extras:
            specs["depth"] = (torch.float16, (n, h, w))
        if "hint" in self.extras:
            specs["hint_depth"] = (torch.float16, (n, h, w))
        if self.flipped_hints:
            specs[FLIPPED_HINT] = (torch.float16, (n, h, w))
        if self.gt_shape is not None:
            specs["gt_depth"] = (torch.float32, (n, *self.gt_shape))
            specs["gt_size"] = (torch.int32, (n, 2))
        buffer, lease = None, None
        if shared:
            if self._pool is None:
                info = get_worker_info()
                self._pool = BufferPool(self._channel, 0 if info is None else info.id)
            buffer, lease = self._pool.get(shm.nbytes_for(list(specs.values())))
            tensors = shm.carve(buffer, list(specs.values()))
        else:
            tensors = [torch.empty(shape, dtype=dtype) for dtype, shape in specs.values()]
        values = {
            name: t.movedim(-1, -3) if name in IMAGE_FIELDS else t
            for name, t in zip(specs, tensors, strict=True)
        }
        out = Batch(**values)
        out._buffer, out._lease = buffer, lease
        return out

    def _fill(self, out: Batch, at: int, rows: dict[str, RowTable], ids: np.ndarray) -> None:
        """Write samples ``ids`` into ``out[at : at + len(ids)]``."""
        s = self.samples[ids].astype(np.int64)
        centre, prev, nxt, view = s.T
        sl = slice(at, at + len(ids))
        arrays = _numpy_views(out)
        arrays["index"][sl], arrays["row"][sl], arrays["side"][sl] = ids, centre, view
        k = self._small.get("intrinsics")
        arrays["K"][sl] = np.eye(3, dtype=np.float32) if k is None else k[centre, view]
        base = self._small.get("baseline")
        arrays["baseline"][sl] = 0.0 if base is None else base[centre]
        if "gt_size" in arrays:
            arrays["gt_size"][sl] = self._small["gt_size"][centre]
        for name, col in (("prev", prev), ("next", nxt)):
            if f"has_{name}" in arrays:
                arrays[f"has_{name}"][sl] = col >= 0
        image = rows["image"]
        for j, (c, p, n, v) in enumerate(s):
            b = at + j
            frame = image[c]
            arrays["target"][b] = frame[v]
            if "stereo" in arrays:
                arrays["stereo"][b] = frame[1 - v]
            for name, r in (("prev", p), ("next", n)):
                if name in arrays:
                    if r >= 0:
                        arrays[name][b] = image[r][v]
                    else:
                        arrays[name][b] = 0
            if "seg" in arrays:
                arrays["seg"][b] = rows["seg"][c][v]
            if "depth" in arrays:
                arrays["depth"][b] = rows["depth"][c][v]
            for name in ("hint_depth", FLIPPED_HINT):
                if name in arrays:
                    arrays[name][b] = rows[name][c][v]
            if "gt_depth" in arrays:
                arrays["gt_depth"][b] = rows["gt_depth"][c]

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_store"], state["_small"], state["_pool"] = None, {}, None
        if not _spawning():  # a plain pickle, not a worker start: no shared objects
            state["_epoch"], state["_channel"] = self.epoch, None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if isinstance(state["_epoch"], int):
            state["_epoch"] = RawValue("q", state["_epoch"])
        self.__dict__.update(state)


def make_loader(
    store_path: str | Path,
    batch_size: int,
    workers: int = 2,
    seed: int = 0,
    *,
    shuffle: bool = True,
    frames: Sequence[str] = ("prev", "next"),
    extras: Sequence[str] = ("seg", "depth"),
    drop_last: bool = False,
    pin_memory: bool = True,
    persistent_workers: bool | None = None,
    prefetch_factor: int | None = 4,
    shuffle_chunks: int = 16,
    even: Even = "none",
    rank: int | None = None,
    world_size: int | None = None,
    epoch: int = 0,
    storage_options: dict[str, Any] | None = None,
) -> DataLoader:
    """A DataLoader yielding :class:`Batch` es of ``batch_size`` from the store at ``store_path``.

    Batches are built in the ``workers`` processes (``DataLoader(batch_size=None)``); call
    ``loader.dataset.set_epoch(e)`` before iterating epoch ``e``. ``pin_memory`` is applied only
    when an accelerator is present. ``persistent_workers`` defaults to True when ``workers > 0``.
    ``len(loader)`` is the number of batches this rank yields per epoch. For DDP pass
    ``even="drop"`` (or ``"pad"``): every worker of every rank then yields the same number of
    samples, hence every rank the same number of batches (``drop_last=True`` also drops each
    worker's short last batch). Other arguments: see :class:`StoreDataset`.
    """
    dataset = StoreDataset(
        store_path,
        frames=frames,
        extras=extras,
        batch_size=batch_size,
        drop_last=drop_last,
        shuffle=shuffle,
        seed=seed,
        epoch=epoch,
        shuffle_chunks=shuffle_chunks,
        rank=rank,
        world_size=world_size,
        even=even,
        storage_options=storage_options,
    )
    dataset.attach_workers(workers)
    accelerator = torch.accelerator.is_available() if hasattr(torch, "accelerator") else False
    return DataLoader(
        dataset,
        batch_size=None,
        num_workers=workers,
        pin_memory=pin_memory and accelerator,
        persistent_workers=(workers > 0) if persistent_workers is None else persistent_workers,
        prefetch_factor=prefetch_factor if workers > 0 else None,
        # Its own generator: starting an epoch's iterator must not draw from torch's global RNG
        # (a resumed run would then see other dropout masks than an uninterrupted one).
        generator=torch.Generator().manual_seed(int(seed)),
    )


def _numpy_views(out: Batch) -> dict[str, np.ndarray]:
    """numpy views of the set fields of ``out`` (images as HWC ``(B, H, W, 3)``)."""
    views = {}
    for f in fields(out):
        t = getattr(out, f.name)
        if t is not None:
            views[f.name] = (t.movedim(-3, -1) if f.name in IMAGE_FIELDS else t).numpy()
    return views


def _check_names(what: str, names: Sequence[str], allowed: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(names, str):
        names = (names,)
    bad = [n for n in names if n not in allowed]
    if bad:
        raise ValueError(f"{what}: unknown {bad}; choose from {allowed}")
    return tuple(n for n in allowed if n in names)


def _spawning() -> bool:
    """True while multiprocessing pickles a new process's arguments (shared values allowed)."""
    from multiprocessing import context

    return context.get_spawning_popen() is not None
