"""What the chunk checksums (zarr v3 ``crc32c`` codec) cost when reading a store.

Two stores with the same frames (smooth synthetic images at 192 x 640, two views, 160 frames in
10 chunks, as in :mod:`benchmarks.bench_loader`): one written as stores are now (every chunk
ends with a CRC-32C), one written without the checksum (as stores were before). Both are read
through :func:`pipelines.open_store` (checked reads), in interleaved rounds:

* decode: every ``image`` chunk read and decompressed in turn, one thread (MB/s of pixels);
* loader: one epoch of :func:`pipelines.loader.make_loader`, mono+stereo samples, batch 12,
  2 workers (samples/s).

Also printed: the CRC-32C rate of google-crc32c alone on 64 MB (best of 5).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

import cv2
import google_crc32c
import numpy as np
from zarr.codecs import Crc32cCodec

import pipelines.store.arrays as store_arrays
from benchmarks.bench_loader import H, W, smooth_frame
from pipelines import open_store
from pipelines.loader import make_loader
from pipelines.store.runner import write_blocks
from pipelines.store.writer import StoreWriter, make_fingerprint

SEQUENCES, FRAMES = 2, 80
ROUNDS = {"decode": 15, "loader": 5}  # interleaved rounds per measure


def frames() -> np.ndarray:
    rng = np.random.default_rng(0)
    out = np.zeros((SEQUENCES * FRAMES, 2, H, W, 3), np.uint8)
    for row in range(len(out)):
        for view in range(2):
            out[row, view] = cv2.resize(smooth_frame(rng), (W, H), interpolation=cv2.INTER_AREA)
    return out


def samples_table() -> np.ndarray:
    """(center, previous, next, view) for every view of every frame with both neighbours."""
    rows = [(r, r - 1, r + 1, v) for s in range(SEQUENCES) for r in range(s * FRAMES + 1,
            (s + 1) * FRAMES - 1) for v in range(2)]  # fmt: skip
    return np.array(rows, np.int32)


def write_store(path: Path, images: np.ndarray, checksums: bool) -> Path:
    """A two-view store of ``images``; ``checksums=False`` writes it as before checksums."""

    def without(codec: str) -> tuple:
        return tuple(c for c in original(codec) if not isinstance(c, Crc32cCodec))

    original = store_arrays.compressors
    n = len(images)
    samples = samples_table()
    with mock.patch.object(store_arrays, "compressors", original if checksums else without):
        writer = StoreWriter.create(
            path, dataset="kitti-raw", split="bench", n_frames=n, n_samples=len(samples),
            image_size=(H, W), views=2, arrays=["image", "intrinsics", "sequence", "frame"],
            attrs={"sequences": [f"seq{i}" for i in range(SEQUENCES)]},
            fingerprint=make_fingerprint("bench_checksums", checksums),
        )  # fmt: skip
    k = np.array([[0.58 * W, 0, W / 2], [0, 1.92 * H, H / 2], [0, 0, 1]], np.float32)

    def block(_b: int, rows: slice) -> dict[str, np.ndarray]:
        r = np.arange(rows.start, rows.stop)
        return {
            "image": images[rows],
            "intrinsics": np.broadcast_to(k, (len(r), 2, 3, 3)).copy(),
            "sequence": (r // FRAMES).astype(np.int32),
            "frame": (r % FRAMES).astype(np.int32),
        }

    write_blocks(writer, block)
    writer.write_samples(samples)
    writer.finish()
    return path


def decode_rate(path: Path) -> float:
    """MB/s of pixels: every image chunk read in turn through the checked reader."""
    image = open_store(path)["image"]
    t0 = time.perf_counter()
    for start in range(0, image.shape[0], image.chunks[0]):
        np.asarray(image[start : start + image.chunks[0]])
    return image.nbytes / (time.perf_counter() - t0) / 1e6


def loader_rate(path: Path) -> float:
    """Samples/s of one loader epoch (mono+stereo, batch 12, 2 workers)."""
    loader = make_loader(path, 12, workers=2, frames=("prev", "next", "stereo"), extras=(),
                         persistent_workers=False, pin_memory=False)  # fmt: skip
    t0 = time.perf_counter()
    count = sum(batch.target.shape[0] for batch in loader)
    return count / (time.perf_counter() - t0)


def main() -> None:
    data = np.random.default_rng(1).integers(0, 256, 64 * 2**20, dtype=np.uint8).tobytes()
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        google_crc32c.value(data)
        times.append(time.perf_counter() - t0)
    print(f"google-crc32c alone: {len(data) / min(times) / 1e9:.2f} GB/s (best of 5)")
    images = frames()
    with tempfile.TemporaryDirectory() as tmp:
        with_crc = write_store(Path(tmp) / "crc.zarr", images, checksums=True)
        plain = write_store(Path(tmp) / "plain.zarr", images, checksums=False)
        for name, measure, unit in (("decode", decode_rate, "MB/s"),
                                    ("loader", loader_rate, "samples/s")):  # fmt: skip
            runs: dict[str, list[float]] = {"crc": [], "plain": []}
            measure(with_crc), measure(plain)  # warm the page cache
            for _ in range(ROUNDS[name]):
                runs["crc"].append(measure(with_crc))
                runs["plain"].append(measure(plain))
            a, b = statistics.median(runs["crc"]), statistics.median(runs["plain"])
            print(
                f"{name}: with crc32c {a:.1f} {unit}, without {b:.1f} {unit} "
                f"(median of {ROUNDS[name]} interleaved rounds); ratio {a / b:.3f}"
            )


if __name__ == "__main__":
    main()
