"""How diverse the loader's batches are, against a random sampler, on eigen_zhou's shape.

No images: the figures depend only on the split's structure. :func:`eigen_zhou_like` builds a
training split of eigen_zhou's size (39,810 lines) and drive structure: the 31 drives of
monodepth2's ``splits/eigen_zhou/train_files.txt`` with the frame range each covers there (read
off the file: the highest frame number seen per drive, or the stretch used when a drive is only
partly in the split), every frame with both views, 39,810 of those lines drawn at random (the
others would be the validation split). Its frame table is built the way ``prepare-kitti`` builds
it (centre and neighbour frames stored once, sorted by drive and frame, chunks of 16 rows).

Per batch (:func:`batch_figures`): the duplicate-frame rate (a frame's left and right views both
in the batch), frames overlapping (one sample's centre is another's neighbour or centre), and the
number of distinct drives and store chunks. Ours: every worker's batches over a whole epoch, as
the loader forms them (:func:`pipelines.loader.sharding.slot_buffers`); random: consecutive
batches of one permutation of the whole split (``DataLoader(shuffle=True)``); the previous
loader: the same buffers with the samples of each buffer shuffled together. :func:`chunks_read`
counts the store chunks each order makes the loader decompress per sample (its I/O at the
split's real scale, where a buffer's chunks are rarely neighbours).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import kitti
from pipelines.loader.sharding import epoch_sequence, slot_buffers, slot_range
from pipelines.prepare.kitti.plan import _training_table

# drive -> (first, last) frame of the stretch the split uses
EIGEN_ZHOU_DRIVES = {
    "2011_09_26/2011_09_26_drive_0001_sync": (1, 106),
    "2011_09_26/2011_09_26_drive_0005_sync": (1, 152),
    "2011_09_26/2011_09_26_drive_0011_sync": (1, 110),
    "2011_09_26/2011_09_26_drive_0014_sync": (1, 312),
    "2011_09_26/2011_09_26_drive_0015_sync": (1, 295),
    "2011_09_26/2011_09_26_drive_0018_sync": (1, 268),
    "2011_09_26/2011_09_26_drive_0019_sync": (1, 479),
    "2011_09_26/2011_09_26_drive_0022_sync": (1, 798),
    "2011_09_26/2011_09_26_drive_0028_sync": (1, 428),
    "2011_09_26/2011_09_26_drive_0032_sync": (1, 388),
    "2011_09_26/2011_09_26_drive_0035_sync": (1, 90),
    "2011_09_26/2011_09_26_drive_0039_sync": (1, 393),
    "2011_09_26/2011_09_26_drive_0051_sync": (1, 436),
    "2011_09_26/2011_09_26_drive_0057_sync": (300, 359),
    "2011_09_26/2011_09_26_drive_0061_sync": (1, 633),
    "2011_09_26/2011_09_26_drive_0070_sync": (1, 418),
    "2011_09_26/2011_09_26_drive_0079_sync": (1, 98),
    "2011_09_26/2011_09_26_drive_0087_sync": (1, 727),
    "2011_09_26/2011_09_26_drive_0091_sync": (1, 338),
    "2011_09_26/2011_09_26_drive_0095_sync": (1, 266),
    "2011_09_26/2011_09_26_drive_0104_sync": (1, 310),
    "2011_09_26/2011_09_26_drive_0113_sync": (1, 85),
    "2011_09_28/2011_09_28_drive_0001_sync": (1, 104),
    "2011_09_29/2011_09_29_drive_0004_sync": (1, 337),
    "2011_09_29/2011_09_29_drive_0026_sync": (1, 15),
    "2011_09_30/2011_09_30_drive_0020_sync": (1, 1102),
    "2011_09_30/2011_09_30_drive_0028_sync": (1, 5175),
    "2011_09_30/2011_09_30_drive_0033_sync": (1, 1592),
    "2011_09_30/2011_09_30_drive_0034_sync": (1, 1222),
    "2011_10_03/2011_10_03_drive_0034_sync": (1, 4661),
    "2011_10_03/2011_10_03_drive_0042_sync": (1, 1168),
}
EIGEN_ZHOU_TRAIN = 39_810
CHUNK = 16


@dataclass(frozen=True)
class SplitShape:
    """A training split's sample table without pixels: centre row (+ neighbours), drive and
    frame per stored row."""

    samples: np.ndarray  # (M, 4) centre, prev, next, view
    drive: np.ndarray  # (N,) drive index per row
    frame: np.ndarray  # (N,) frame number per row


def eigen_zhou_like(seed: int = 0) -> SplitShape:
    """The eigen_zhou-shaped training split (module docstring)."""
    return split_shape(EIGEN_ZHOU_DRIVES, EIGEN_ZHOU_TRAIN, seed)


def split_shape(drives: dict[str, tuple[int, int]], n_lines: int, seed: int = 0) -> SplitShape:
    """A training split of ``n_lines`` lines drawn from both views of every frame of ``drives``
    (folder -> first and last frame)."""
    rng = np.random.default_rng(seed)
    lines = [
        kitti.SplitEntry(folder, f, side)
        for folder, (first, last) in drives.items()
        for f in range(first, last + 1)
        for side in "lr"
    ]
    keep = np.sort(rng.choice(len(lines), n_lines, replace=False))
    chosen = [lines[i] for i in keep[rng.permutation(len(keep))]]  # split files are shuffled
    _, sequence, frame, samples = _training_table(chosen)
    return SplitShape(samples.astype(np.int64), sequence.astype(np.int64), frame.astype(np.int64))


@dataclass
class Figures:
    """Mean per-batch figures of one way of forming batches."""

    batches: int
    duplicate_rate: float  # batches with both views of a frame
    overlap_rate: float  # batches where two samples' frames overlap (same drive, |df| <= 2)
    drives: float  # distinct drives per batch
    chunks: float  # distinct store chunks per batch (of the centre rows)

    def row(self, name: str) -> str:
        return (
            f"  {name:<28} {100 * self.duplicate_rate:6.2f} %  {100 * self.overlap_rate:6.2f} %"
            f"  {self.drives:6.2f}  {self.chunks:6.2f}   ({self.batches} batches)"
        )


HEADER = (
    f"  {'batches of':<28} {'dup':>8}  {'overlap':>8}  {'drives':>6}  {'chunks':>6}\n"
    f"  {'':<28} {'frame':>8}  {'frames':>8}  {'/batch':>6}  {'/batch':>6}"
)


def batch_figures(shape: SplitShape, batches: list[np.ndarray]) -> Figures:
    """:class:`Figures` of ``batches`` (arrays of sample ids)."""
    dup = overlap = 0
    drives = chunks = 0.0
    for ids in batches:
        centre = shape.samples[ids, 0]
        drive, frame = shape.drive[centre], shape.frame[centre]
        dup += len(np.unique(centre)) < len(centre)
        key = drive * 100_000 + frame
        key = np.sort(key)
        overlap += bool((np.diff(key) <= 2).any())
        drives += len(np.unique(drive))
        chunks += len(np.unique(centre // CHUNK))
    n = max(len(batches), 1)
    return Figures(len(batches), dup / n, overlap / n, drives / n, chunks / n)


def loader_batches(
    shape: SplitShape, batch: int, workers: int, shuffle_chunks: int, epoch: int, seed: int = 0,
    previous: bool = False,
) -> list[np.ndarray]:  # fmt: skip
    """Every full batch the loader's ``workers`` form in ``epoch`` (each worker batches its own
    slot); ``previous``: the loader before batches were interleaved."""
    out = []
    for worker in range(workers):
        buffers = loader_buffers(shape, 1, shuffle_chunks, epoch, seed, previous, (worker, workers))
        order = np.concatenate(buffers)
        out += [order[i : i + batch] for i in range(0, len(order) - batch + 1, batch)]
    return out


def chunks_read(shape: SplitShape, buffers: list[np.ndarray]) -> float:
    """Store chunks the loader decompresses per sample over ``buffers`` (what
    :meth:`pipelines.store.rowtable.RowTable.read` reads for each buffer: centre and neighbour
    rows, one slice per run of touching or neighbouring chunks)."""
    decoded = samples = 0
    for ids in buffers:
        s = shape.samples[ids]
        rows = np.unique(np.concatenate([s[:, 0], s[s[:, 1] >= 0, 1], s[s[:, 2] >= 0, 2]]))
        chunks = rows // CHUNK
        breaks = np.flatnonzero(chunks[1:] > chunks[:-1] + 1) + 1
        firsts, lasts = np.r_[0, breaks], np.r_[breaks - 1, len(rows) - 1]
        decoded += int((chunks[lasts] - chunks[firsts] + 1).sum())
        samples += len(ids)
    return decoded / max(samples, 1)


def loader_buffers(
    shape: SplitShape, workers: int, shuffle_chunks: int, epoch: int, seed: int = 0,
    previous: bool = False, only: tuple[int, int] | None = None,
) -> list[np.ndarray]:  # fmt: skip
    """Every buffer the loader's ``workers`` read in ``epoch`` (``only``: just slot ``only[0]``
    of ``only[1]``)."""
    out = []
    slots = [only] if only is not None else [(w, workers) for w in range(workers)]
    for worker, workers in slots:
        if previous:
            out += _previous_buffers(shape, seed, epoch, worker, workers, shuffle_chunks)
        else:
            out += slot_buffers(
                shape.samples[:, 0], CHUNK, seed=seed, epoch=epoch, shuffle=True, slot=worker,
                n_slots=workers, shuffle_chunks=shuffle_chunks,
            )  # fmt: skip
    return out


def random_batches(shape: SplitShape, batch: int, epoch: int, seed: int = 0) -> list[np.ndarray]:
    """Consecutive batches of one random permutation of the split (drop_last)."""
    order = np.random.default_rng([seed, epoch, 99]).permutation(len(shape.samples))
    return [order[i : i + batch] for i in range(0, len(order) - batch + 1, batch)]


def _previous_buffers(
    shape: SplitShape, seed: int, epoch: int, slot: int, n_slots: int, shuffle_chunks: int
) -> list[np.ndarray]:
    """The earlier loader's buffers in yield order: ``shuffle_chunks`` chunk groups each (cut
    from the start), each buffer's samples shuffled together."""
    ids, chunks = epoch_sequence(shape.samples[:, 0], CHUNK, seed, epoch, True)
    start, stop = slot_range(len(ids), slot, n_slots, "none")
    ids, chunks = ids[start:stop], chunks[start:stop]
    group_starts = np.flatnonzero(np.r_[True, chunks[1:] != chunks[:-1]])
    buffers = np.split(ids, group_starts[::shuffle_chunks][1:])
    rng = np.random.default_rng([seed, epoch, slot, n_slots])
    return [rng.permutation(b) for b in buffers]
