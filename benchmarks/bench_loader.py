"""Loader throughput: the streaming store loader vs a monodepth2-style PNG loader.

Workload: mono+stereo samples (target, previous, next and stereo frames) at 192 x 640, batch 12,
2 DataLoader workers. Both loaders see the same synthetic frames: random smooth images at KITTI's
full resolution 1242 x 375, written as PNGs for the baseline and, resized once (INTER_AREA) to
640 x 192, into a schema v1 store for ours.

* ours: :func:`pipelines.loader.make_loader` (uint8 batches, whole-chunk reads); the on-device
  augmentation (:class:`pipelines.loader.Augment`, on this machine's CPU) is timed separately.
* baseline: what monodepth2's ``KITTIDataset`` does per sample: PIL open of each full-resolution
  PNG, random flip, LANCZOS resize to 640 x 192 and the chained pyramid to scale 3, one
  ``ColorJitter.get_params`` draw applied to every frame and scale, ``ToTensor`` of plain and
  jittered images, intrinsics per scale, ``stereo_T``; default collate.

MB/s counts the uint8 pixels delivered at 192 x 640 (4 frames x 368,640 bytes per sample) for
both, so the two figures compare like with like.

The loader's order changed (chunk groups interleaved inside 16-chunk buffers, see
:mod:`pipelines.loader.sharding`): "ours, previous order" runs the same loader with the order it
had before (8-chunk buffers whose samples were shuffled together), in the same run, interleaved
with "ours", so the two throughputs compare like with like (on this small store a 16-chunk buffer
holds most of it, so neighbouring chunks share reads and ours reads less; at eigen_zhou's scale
both decompress the same chunks per sample, printed last). Batch diversity, the reason for the
change, is measured without images on a split of eigen_zhou's size and drive structure
(:mod:`benchmarks.batch_diversity`), for the previous order, ours and a random sampler.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import ColorJitter
from torchvision.transforms import functional as TF

from benchmarks import batch_diversity as diversity
from pipelines.loader.augment import Augment, AugmentConfig
from pipelines.loader.dataset import StoreDataset, make_loader
from pipelines.loader.sharding import epoch_sequence, slot_range
from pipelines.store.runner import write_blocks
from pipelines.store.writer import StoreWriter, make_fingerprint

FULL_W, FULL_H = 1242, 375
W, H = 640, 192
SEQUENCES, FRAMES_PER_SEQUENCE = 2, 160  # 20 chunks of 16 frames in the store
PNG_FRAMES = 40  # the baseline reads the first 40 frames of sequence 0 (it is slow anyway)
BATCH, WORKERS = 12, 2
SAMPLE_BYTES = 4 * H * W * 3


def smooth_frame(rng: np.random.Generator) -> np.ndarray:
    """uint8 (375, 1242, 3): upsampled low-resolution noise plus a little pixel noise."""
    low = rng.integers(0, 256, (12, 40, 3), dtype=np.uint8)
    full = cv2.resize(low, (FULL_W, FULL_H), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    full += rng.integers(-3, 4, full.shape, dtype=np.int16)
    return np.clip(full, 0, 255).astype(np.uint8)


def samples_table(sequences: int = SEQUENCES, frames: int = FRAMES_PER_SEQUENCE) -> np.ndarray:
    """(center, previous, next, view) for every view of every frame with both neighbours,
    over the first ``frames`` frames of the first ``sequences`` sequences."""
    rows = []
    for seq in range(sequences):
        for pos in range(1, frames - 1):
            r = seq * FRAMES_PER_SEQUENCE + pos
            rows += [(r, r - 1, r + 1, v) for v in range(2)]
    return np.array(rows, np.int32)


def write_inputs(root: Path) -> tuple[Path, Path]:
    """PNGs under ``root/png/<seq>/image_0{2,3}/`` (the baseline's frames) and every frame in
    ``root/store.zarr``."""
    rng = np.random.default_rng(0)
    n = SEQUENCES * FRAMES_PER_SEQUENCE
    small = np.zeros((n, 2, H, W, 3), np.uint8)
    for row in range(n):
        for view in range(2):
            full = smooth_frame(rng)
            small[row, view] = cv2.resize(full, (W, H), interpolation=cv2.INTER_AREA)
            if row >= PNG_FRAMES:
                continue
            folder = root / "png" / f"seq{row // FRAMES_PER_SEQUENCE}" / f"image_0{2 + view}"
            folder.mkdir(parents=True, exist_ok=True)
            name = f"{row % FRAMES_PER_SEQUENCE:010d}.png"
            cv2.imwrite(str(folder / name), full[:, :, ::-1])
    k = np.array([[0.58 * W, 0, W / 2], [0, 1.92 * H, H / 2], [0, 0, 1]], np.float32)
    samples = samples_table()
    writer = StoreWriter.create(
        root / "store.zarr",
        dataset="kitti-raw",
        split="bench",
        n_frames=n,
        n_samples=len(samples),
        image_size=(H, W),
        views=2,
        arrays=["image", "intrinsics", "baseline", "sequence", "frame", "timestamp"],
        attrs={"sequences": [f"seq{i}" for i in range(SEQUENCES)]},
        fingerprint=make_fingerprint("bench_loader"),
    )

    def block(_b: int, rows: slice) -> dict[str, np.ndarray]:
        r = np.arange(rows.start, rows.stop)
        return {
            "image": small[rows],
            "intrinsics": np.broadcast_to(k, (len(r), 2, 3, 3)).copy(),
            "baseline": np.full(len(r), 0.54, np.float32),
            "sequence": (r // FRAMES_PER_SEQUENCE).astype(np.int32),
            "frame": (r % FRAMES_PER_SEQUENCE).astype(np.int32),
            "timestamp": r * 0.1,
        }

    write_blocks(writer, block)
    writer.write_samples(samples)
    writer.finish()
    return root / "png", root / "store.zarr"


class Monodepth2StyleDataset(Dataset):
    """The baseline: monodepth2's per-sample CPU pipeline over full-resolution PNGs."""

    def __init__(self, png_root: Path, samples: np.ndarray, scales: int = 4) -> None:
        self.root = png_root
        self.samples = samples
        self.scales = scales
        self.K = np.array([[0.58, 0, 0.5, 0], [0, 1.92, 0.5, 0], [0, 0, 1, 0], [0, 0, 0, 1]])

    def __len__(self) -> int:
        return len(self.samples)

    def _path(self, row: int, view: int) -> Path:
        seq, pos = divmod(int(row), FRAMES_PER_SEQUENCE)
        return self.root / f"seq{seq}" / f"image_0{2 + view}" / f"{pos:010d}.png"

    def __getitem__(self, i: int) -> dict:
        centre, prev, nxt, view = (int(x) for x in self.samples[i])
        do_aug, do_flip = np.random.rand() > 0.5, np.random.rand() > 0.5
        paths = {0: (centre, view), -1: (prev, view), 1: (nxt, view), "s": (centre, 1 - view)}
        out: dict = {}
        jitter = ColorJitter.get_params((0.8, 1.2), (0.8, 1.2), (0.8, 1.2), (-0.1, 0.1))
        for f, (row, v) in paths.items():
            with Image.open(self._path(row, v)) as im:
                img = im.convert("RGB")
            if do_flip:
                img = img.transpose(Image.FLIP_LEFT_RIGHT)
            scaled = img
            for s in range(self.scales):
                size = (H // 2**s, W // 2**s)
                scaled = TF.resize(scaled, list(size), interpolation=TF.InterpolationMode.LANCZOS)
                out[("color", f, s)] = TF.to_tensor(scaled)
                out[("color_aug", f, s)] = TF.to_tensor(
                    _jitter(scaled, jitter) if do_aug else scaled
                )
        for s in range(self.scales):
            K = self.K.copy()
            K[0] *= W // 2**s
            K[1] *= H // 2**s
            out[("K", s)] = torch.from_numpy(K).float()
            out[("inv_K", s)] = torch.from_numpy(np.linalg.pinv(K)).float()
        T = np.eye(4, dtype=np.float32)
        T[0, 3] = (-1 if view == 0 else 1) * (-1 if do_flip else 1) * 0.1
        out["stereo_T"] = torch.from_numpy(T)
        return out


def _jitter(img: Image.Image, params: tuple) -> Image.Image:
    order, b, c, s, h = params
    for op in order.tolist():
        if op == 0:
            img = TF.adjust_brightness(img, b)
        elif op == 1:
            img = TF.adjust_contrast(img, c)
        elif op == 2:
            img = TF.adjust_saturation(img, s)
        else:
            img = TF.adjust_hue(img, h)
    return img


class PreviousOrderDataset(StoreDataset):
    """The loader with its order before the change: buffers of ``shuffle_chunks`` chunk groups
    cut from the start of each slot's piece, each buffer's samples shuffled together."""

    def buffers(self) -> list[np.ndarray]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        slot, n_slots = self.rank * workers + worker, self.world_size * workers
        ids, chunks = epoch_sequence(self.samples[:, 0], self.chunk, self.seed, self.epoch, True)
        start, stop = slot_range(len(ids), slot, n_slots, self.even)
        ids, chunks = ids[start:stop], chunks[start:stop]
        starts = np.flatnonzero(np.r_[True, chunks[1:] != chunks[:-1]])
        rng = np.random.default_rng([self.seed, self.epoch, slot, n_slots])
        return [rng.permutation(b) for b in np.split(ids, starts[:: self.shuffle_chunks][1:])]


def previous_loader(store_path: Path, frames: tuple[str, ...]) -> DataLoader:
    """:func:`make_loader`'s DataLoader around :class:`PreviousOrderDataset` (8 chunks)."""
    dataset = PreviousOrderDataset(
        store_path, frames=frames, extras=(), batch_size=BATCH, shuffle_chunks=8
    )
    dataset.attach_workers(WORKERS)
    return DataLoader(
        dataset, batch_size=None, num_workers=WORKERS, persistent_workers=True, prefetch_factor=4
    )


def diversity_report() -> str:
    """Batch figures of the previous order, ours and a random sampler (eigen_zhou-shaped)."""
    shape = diversity.eigen_zhou_like()
    kinds = {
        "previous order (8 chunks)": lambda e: diversity.loader_batches(
            shape, BATCH, 4, 8, e, previous=True
        ),
        "ours (16 chunks)": lambda e: diversity.loader_batches(shape, BATCH, 4, 16, e),
        "ours with 8 chunks": lambda e: diversity.loader_batches(shape, BATCH, 4, 8, e),
        "random sampler": lambda e: diversity.random_batches(shape, BATCH, e),
    }
    lines = [
        f"batch diversity, eigen_zhou-shaped split ({len(shape.samples):,} samples, "
        f"{len(diversity.EIGEN_ZHOU_DRIVES)} drives, chunks of {diversity.CHUNK}), batch {BATCH}, "
        "4 workers, 2 epochs:",
        diversity.HEADER,
    ]
    for name, batches in kinds.items():
        lines.append(diversity.batch_figures(shape, batches(0) + batches(1)).row(name))
    reads = {
        name: diversity.chunks_read(shape, diversity.loader_buffers(shape, 4, n, 0, previous=p))
        for name, n, p in (("previous order", 8, True), ("ours", 16, False))
    }
    lines.append(
        "store chunks decompressed per sample at this scale (I/O, neighbours' chunks included): "
        + ", ".join(f"{name} {value:.3f}" for name, value in reads.items())
    )
    return "\n".join(lines)


@dataclass
class Timing:
    seconds: float
    samples: int
    cpu_seconds: float  # main process plus workers (all their threads)

    @property
    def rate(self) -> float:
        return self.samples / self.seconds

    @property
    def rate_per_cpu(self) -> float:
        return self.samples / self.cpu_seconds


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of this process and of ``pids`` (Linux /proc)."""
    total = time.process_time()
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def time_loader(loader: DataLoader, min_samples: int, epochs: bool) -> Timing:
    """Time at least ``min_samples`` after one warm-up batch (epochs need persistent workers)."""
    it = iter(loader)
    next(it)
    pids = [w.pid for w in getattr(it, "_workers", [])]
    count, epoch = 0, 0
    start, cpu = time.perf_counter(), cpu_seconds(pids)
    while count < min_samples:
        for batch in it:
            count += len(batch) if hasattr(batch, "index") else len(batch["stereo_T"])
            if count >= min_samples:
                break
        else:
            if not epochs:
                break
            epoch += 1
            loader.dataset.set_epoch(epoch)
            it = iter(loader)
    seconds = time.perf_counter() - start
    return Timing(seconds, count, cpu_seconds(pids) - cpu)


def main() -> None:
    torch.set_num_threads(1)
    frames = ("prev", "next", "stereo")
    with tempfile.TemporaryDirectory(prefix="bench_loader_") as tmp:
        t0 = time.perf_counter()
        png_root, store_path = write_inputs(Path(tmp))
        print(
            f"inputs: store {len(samples_table())} samples ({SEQUENCES * FRAMES_PER_SEQUENCE * 2} "
            f"frames {W}x{H}), baseline {len(samples_table(1, PNG_FRAMES))} samples "
            f"({2 * PNG_FRAMES} PNGs {FULL_W}x{FULL_H}); in {time.perf_counter() - t0:.0f} s"
        )
        loaders = {
            "ours": make_loader(store_path, BATCH, workers=WORKERS, frames=frames, extras=()),
            "previous": previous_loader(store_path, frames),
        }
        runs: dict[str, list[Timing]] = {name: [] for name in loaders}
        for _ in range(3):  # interleaved: a busy moment of the machine hits both
            for name, loader in loaders.items():
                runs[name].append(time_loader(loader, min_samples=1500, epochs=True))
        del loaders
        ours, previous = (max(runs[n], key=lambda t: t.rate) for n in ("ours", "previous"))
        base = DataLoader(
            Monodepth2StyleDataset(png_root, samples_table(1, PNG_FRAMES)),
            batch_size=BATCH,
            shuffle=True,
            num_workers=WORKERS,
            drop_last=True,
            persistent_workers=True,
        )
        baseline = time_loader(base, min_samples=4 * BATCH, epochs=False)

        batch = next(iter(make_loader(store_path, BATCH, workers=0, frames=frames, extras=())))
        augment = Augment(AugmentConfig(height=H, width=W, scales=4))
        gen = torch.Generator().manual_seed(0)
        augment(batch, gen)
        reps = 3
        t0 = time.perf_counter()
        for _ in range(reps):
            augment(batch, gen)
        aug_rate = reps * BATCH / (time.perf_counter() - t0)

    mb = SAMPLE_BYTES / 1e6
    print(f"machine load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for name, t in (("ours", ours), ("ours, previous order", previous), ("baseline", baseline)):
        print(
            f"{name:<20} {t.rate:9.1f} samples/s  {t.rate * mb:8.1f} MB/s  "
            f"({t.samples} samples, {t.seconds:.2f} s; {t.rate_per_cpu:.1f} samples per CPU-second)"
        )
    print(
        f"{'ratio':<20} {ours.rate / baseline.rate:9.1f} x  wall, "
        f"{ours.rate_per_cpu / baseline.rate_per_cpu:.1f} x per CPU-second "
        "(targets: >= 1000 samples/s, >= 50 x)"
    )
    print(
        f"on-device augmentation (this machine's CPU, 1 thread): {aug_rate:.1f} samples/s "
        f"({1000 * BATCH / aug_rate:.0f} ms per batch of {BATCH}, 4 frames, 4 scales)"
    )
    print(
        f"ours vs the previous order: {ours.rate / previous.rate:.2f} x wall, "
        f"{ours.rate_per_cpu / previous.rate_per_cpu:.2f} x per CPU-second (best of 3 each)"
    )
    print(diversity_report())
