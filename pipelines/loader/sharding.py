"""Which samples each loader slot (DDP rank x DataLoader worker) yields in one epoch.

Pure numpy, no I/O. The epoch order is built in four steps:

1. Samples are grouped by the store chunk of their centre row (``row // chunk``).
2. The chunk groups are put in a random order drawn from ``(seed, epoch)`` (the same on every
   rank and worker) and concatenated into one sequence of all M samples.
3. Slot ``s`` of ``S`` takes the contiguous piece ``[s * M // S, (s + 1) * M // S)`` of that
   sequence, so the slots together cover every sample exactly once, each slot reads a few whole
   chunks (a chunk is split between two slots at most at the piece ends), and piece sizes
   differ by at most one sample. The piece is cut into buffers of at most ``shuffle_chunks``
   chunk groups, as evenly as possible (the loader reads one buffer at a time).
4. Inside a buffer the chunk groups are interleaved, not just shuffled together (seeded by seed,
   epoch and slot): each group's samples are spread evenly over the buffer's whole yield order,
   from a random offset, so any run of consecutive samples, hence a batch, takes at most one or
   two samples from a group and draws from as many groups as the buffer has (up to the batch
   size). Within a group the second view of a frame (its left and right image are two samples
   of the same chunk) comes about half the group later than the first, so the two views of one
   frame land about half a buffer apart (in one batch only when a buffer holds less than two
   batches). A batch then looks like one of a random sampler over the whole split: about
   ``batch`` distinct chunks, as many drives as random draws give, no frame twice
   (``benchmarks/bench_loader.py`` measures it on a split of eigen_zhou's size and drive
   structure); memory stays one buffer of chunks per worker. With ``shuffle_chunks`` below the
   batch size a batch cannot see more chunks than that.

``even`` equalises the slots for DDP, where every rank must run the same number of steps:
``"none"`` keeps every sample exactly once (sizes may differ by one), ``"drop"`` cuts every piece
to ``M // S`` samples (at most ``S - 1`` samples per epoch are skipped, different ones each
epoch), ``"pad"`` extends every piece to ``ceil(M / S)`` with the samples that follow it in the
epoch sequence (at most ``S - 1`` samples are seen twice).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Even = Literal["none", "drop", "pad"]
EVEN_MODES = ("none", "drop", "pad")


def epoch_sequence(
    centre_rows: np.ndarray, chunk: int, seed: int, epoch: int, shuffle: bool
) -> tuple[np.ndarray, np.ndarray]:
    """All sample ids in epoch order (chunk groups in random order) and the chunk of each.

    Args:
        centre_rows: int ``(M,)`` centre frame row of every sample.
        chunk: frames per store chunk.

    Returns:
        ``(ids, chunks)``: int64 ``(M,)`` sample ids and the chunk index of each, grouped so that
        the samples of one chunk are consecutive (in sample-id order inside the group).
    """
    chunk_of = np.asarray(centre_rows, dtype=np.int64) // chunk
    order = np.argsort(chunk_of, kind="stable")
    sorted_chunks = chunk_of[order]
    starts = np.flatnonzero(np.r_[True, sorted_chunks[1:] != sorted_chunks[:-1]])
    groups = np.split(order, starts[1:]) if len(order) else []
    if shuffle and groups:
        rng = np.random.default_rng([seed, epoch])
        groups = [groups[i] for i in rng.permutation(len(groups))]
    ids = np.concatenate(groups) if groups else np.zeros(0, np.int64)
    return ids.astype(np.int64), chunk_of[ids]


def slot_range(n_samples: int, slot: int, n_slots: int, even: Even) -> tuple[int, int]:
    """``[start, stop)`` of slot ``slot`` in the epoch sequence (``stop`` may pass M for pad)."""
    if even not in EVEN_MODES:
        raise ValueError(f"even must be one of {EVEN_MODES}, not {even!r}")
    if not 0 <= slot < n_slots:
        raise ValueError(f"slot {slot} out of range for {n_slots} slots")
    start = slot * n_samples // n_slots
    stop = (slot + 1) * n_samples // n_slots
    if even == "drop":
        stop = start + n_samples // n_slots
    elif even == "pad":
        stop = start + -(-n_samples // n_slots)
    return start, stop


def slot_buffers(
    centre_rows: np.ndarray,
    chunk: int,
    *,
    seed: int,
    epoch: int,
    shuffle: bool,
    slot: int,
    n_slots: int,
    shuffle_chunks: int,
    even: Even = "none",
) -> list[np.ndarray]:
    """Sample ids slot ``slot`` yields this epoch, as buffers in yield order.

    Args:
        centre_rows: int ``(M,)`` centre frame row of every sample (``samples[:, 0]``).
        chunk: frames per store chunk.
        shuffle: False keeps the store order (chunks ascending, samples in table order).
        slot, n_slots: this slot (``rank * workers + worker``) and the slot count.
        shuffle_chunks: chunk groups per buffer; samples are shuffled inside a buffer.
        even: ``"none"``, ``"drop"`` or ``"pad"`` (see the module docstring).

    Returns:
        One int64 array of sample ids per buffer; a buffer spans ``shuffle_chunks`` centre
        chunks at most.
    """
    if shuffle_chunks < 1:
        raise ValueError(f"shuffle_chunks must be >= 1, not {shuffle_chunks}")
    centre_rows = np.asarray(centre_rows, dtype=np.int64)
    ids, chunks = epoch_sequence(centre_rows, chunk, seed, epoch, shuffle)
    start, stop = slot_range(len(ids), slot, n_slots, even)
    if len(ids) == 0 or stop <= start:
        return []
    take = np.arange(start, stop) % len(ids)  # wraps around only for even="pad"
    ids, chunks = ids[take], chunks[take]
    # A new group starts wherever the chunk changes (a wrapped pad may revisit a chunk).
    group_starts = np.flatnonzero(np.r_[True, chunks[1:] != chunks[:-1]])
    n_groups = len(group_starts)
    n_buffers = -(-n_groups // shuffle_chunks)
    cuts = (np.arange(n_buffers + 1) * n_groups) // n_buffers  # first group of each buffer
    if not shuffle:
        return np.split(ids, group_starts[cuts[1:-1]])
    rng = np.random.default_rng([seed, epoch, slot, n_slots])
    bounds = np.r_[group_starts, len(ids)]
    return [
        interleave([ids[bounds[g] : bounds[g + 1]] for g in range(a, b)], centre_rows, rng)
        for a, b in zip(cuts[:-1], cuts[1:], strict=True)
    ]


def interleave(
    groups: list[np.ndarray], centre_rows: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Sample ids of chunk ``groups`` in the yield order of one buffer (module docstring, 4).

    Each group is put in a random order of its frames, first every frame's first sample (a
    random view), then the second views in the same frame order; sample ``j`` of a group of
    ``n`` gets position ``(j + offset) / n`` with one random offset per group, and the buffer
    yields by position.
    """
    if not groups:
        return np.zeros(0, np.int64)
    ordered, positions = [], []
    for group in groups:
        group = rng.permutation(group)
        rows = centre_rows[group]
        uniq, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
        rank_of_frame = np.empty(len(uniq), np.int64)
        rank_of_frame[np.argsort(first)] = np.arange(len(uniq))  # order of first appearance
        group = group[np.lexsort((rank_of_frame[inverse], _occurrence(inverse)))]
        ordered.append(group)
        positions.append((np.arange(len(group)) + rng.random()) / len(group))
    order = np.argsort(np.concatenate(positions), kind="stable")
    return np.concatenate(ordered)[order]


def _occurrence(labels: np.ndarray) -> np.ndarray:
    """For each element, how many earlier elements carry the same label (0, 1, ...)."""
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
    run_start = np.repeat(starts, np.diff(np.r_[starts, len(labels)]))
    out = np.empty(len(labels), np.int64)
    out[order] = np.arange(len(labels)) - run_start
    return out


def resolve_rank(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """``(rank, world_size)``: as given, else the process group's, else ``(0, 1)``."""
    if rank is None and world_size is None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
    rank, world_size = (rank or 0), (world_size or 1)
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} out of range for world size {world_size}")
    return rank, world_size
