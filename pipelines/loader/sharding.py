"""Which samples each loader slot (DDP rank x DataLoader worker) yields in one epoch.

Pure numpy, no I/O. The epoch order is built in three steps:

1. Samples are grouped by the store chunk of their centre row (``row // chunk``).
2. The chunk groups are put in a random order drawn from ``(seed, epoch)`` (the same on every
   rank and worker) and concatenated into one sequence of all M samples.
3. Slot ``s`` of ``S`` takes the contiguous piece ``[s * M // S, (s + 1) * M // S)`` of that
   sequence, so the slots together cover every sample exactly once, each slot reads a few whole
   chunks (a chunk is split between two slots at most at the piece ends), and piece sizes
   differ by at most one sample. The piece is cut into buffers of ``shuffle_chunks`` chunk groups
   and the samples inside each buffer are shuffled (seeded by seed, epoch and slot).

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
    ids, chunks = epoch_sequence(centre_rows, chunk, seed, epoch, shuffle)
    start, stop = slot_range(len(ids), slot, n_slots, even)
    if len(ids) == 0 or stop <= start:
        return []
    take = np.arange(start, stop) % len(ids)  # wraps around only for even="pad"
    ids, chunks = ids[take], chunks[take]
    # A new group starts wherever the chunk changes (a wrapped pad may revisit a chunk).
    group_starts = np.flatnonzero(np.r_[True, chunks[1:] != chunks[:-1]])
    cuts = group_starts[::shuffle_chunks][1:]
    buffers = np.split(ids, cuts)
    if shuffle:
        rng = np.random.default_rng([seed, epoch, slot, n_slots])
        buffers = [rng.permutation(b) for b in buffers]
    return buffers
