"""Small deterministic schema v1 stores for tests and benchmarks (no raw files needed).

Every value is a pure function of ``seed`` and the frame row, so a block can be regenerated
alone (the writer tests rely on that to compare interrupted and uninterrupted runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.store.reader import Store
from pipelines.store.runner import write_blocks
from pipelines.store.writer import StoreWriter, make_fingerprint


@dataclass(frozen=True)
class ToySpec:
    """Shape of a toy store: KITTI-like (2 views, padded gt_depth), NYU-raw-like (1 view, depth)
    or NYU-labeled-like (1 view, depth and dense gt_depth at the image size).

    ``seg``: also a computed ``seg`` (a car, VOC class 7, in a box per image, 0 elsewhere);
    ``hints``: also ``hint_depth`` (KITTI only: uniform 0.5..30 with 20 % zeros = no hint).
    """

    dataset: str = "kitti-raw"
    n_sequences: int = 2
    frames_per_sequence: int = 10
    image_size: tuple[int, int] = (16, 24)
    chunk: int = 4
    frames_per_block: int | None = None
    seed: int = 0
    seg: bool = False
    hints: bool = False

    @property
    def views(self) -> int:
        return 2 if self.dataset == "kitti-raw" else 1

    @property
    def n_frames(self) -> int:
        return self.n_sequences * self.frames_per_sequence

    @property
    def gt_size(self) -> tuple[int, int]:
        h, w = self.image_size
        return (h, w) if self.dataset == "nyu-labeled" else (h + 3, w + 5)

    @property
    def arrays(self) -> list[str]:
        common = ["image", "intrinsics", "baseline", "sequence", "frame_in_sequence", "timestamp"]
        extra = ["seg"] * self.seg + ["hint_depth"] * self.hints
        if self.dataset == "kitti-raw":
            return [*common, "gt_depth", "gt_size", *extra]
        if self.hints:
            raise ValueError("toy hints need a two-view (kitti-raw) toy store")
        if self.dataset == "nyu-labeled":
            return [*common, "depth", "accel", "gt_depth", "gt_size", *extra]
        return [*common, "depth", "accel", *extra]

    def samples(self) -> np.ndarray:
        """int32 (M, 4): every frame of every view, neighbours -1 at sequence ends (always -1
        for ``nyu-labeled``)."""
        rows = np.arange(self.n_frames)
        if self.dataset == "nyu-labeled":  # single frames, as the labeled set's stores
            none = np.full_like(rows, -1)
            return np.stack([rows, none, none, np.zeros_like(rows)], 1).astype(np.int32)
        pos = rows % self.frames_per_sequence
        prev = np.where(pos > 0, rows - 1, -1)
        nxt = np.where(pos < self.frames_per_sequence - 1, rows + 1, -1)
        per_view = [
            np.stack([rows, prev, nxt, np.full_like(rows, v)], 1) for v in range(self.views)
        ]
        return np.concatenate(per_view).astype(np.int32)

    def block(self, frames: slice) -> dict[str, np.ndarray]:
        """The arrays of frame rows ``frames`` (deterministic per row)."""
        rows = np.arange(frames.start, frames.stop)
        h, w = self.image_size
        rngs = [np.random.default_rng([self.seed, int(r)]) for r in rows]
        image = np.stack([g.integers(0, 256, (self.views, h, w, 3), dtype=np.uint8) for g in rngs])
        k = np.array([[w * 0.58, 0, w / 2], [0, h * 1.92, h / 2], [0, 0, 1]], np.float32)
        out: dict[str, np.ndarray] = {
            "image": image,
            "intrinsics": np.broadcast_to(k, (len(rows), self.views, 3, 3)).copy(),
            "baseline": np.full(len(rows), 0.54 if self.views == 2 else 0.0, np.float32),
            "sequence": rows // self.frames_per_sequence,
            "frame_in_sequence": rows % self.frames_per_sequence,
            "timestamp": rows * 0.1,
        }
        depth = [g.uniform(0.5, 80.0, (self.views, h, w)) for g in rngs]
        if self.seg or self.hints:
            extra = [np.random.default_rng([self.seed, int(r), 1]) for r in rows]
        if self.seg:
            seg = np.zeros((len(rows), self.views, h, w), np.uint8)
            for i, g in enumerate(extra):
                for v in range(self.views):
                    y, x = g.integers(0, h // 2), g.integers(0, w // 2)
                    seg[i, v, y : y + h // 2, x : x + w // 2] = 7
            out["seg"] = seg
        if self.hints:
            hint = np.stack([g.uniform(0.5, 30.0, (self.views, h, w)) for g in extra])
            hint[np.stack([g.random((self.views, h, w)) < 0.2 for g in extra])] = 0
            out["hint_depth"] = hint.astype(np.float16)
        if self.dataset == "kitti-raw":
            hg, wg = self.gt_size
            gt = np.stack([g.uniform(0.0, 80.0, (hg, wg)) for g in rngs]).astype(np.float32)
            gt[:, :, -2:] = 0  # last columns are padding outside gt_size
            out["gt_depth"] = gt
            out["gt_size"] = np.tile(np.array([hg, wg - 2], np.int32), (len(rows), 1))
        else:
            out["depth"] = np.stack(depth).astype(np.float16)
            out["accel"] = np.stack([g.normal(0, 1, 4) for g in rngs]).astype(np.float32)
        if self.dataset == "nyu-labeled":  # dense, like the in-painted labeled depths
            out["gt_depth"] = np.stack([g.uniform(0.5, 10.0, (h, w)) for g in rngs]).astype(
                np.float32
            )
            out["gt_size"] = np.tile(np.array([h, w], np.int32), (len(rows), 1))
        return out


def create_toy_writer(path: str | Path, spec: ToySpec, overwrite: bool = False) -> StoreWriter:
    """A writer for the toy store ``spec`` at ``path`` (resumes a matching store)."""
    return StoreWriter.create(
        path,
        dataset=spec.dataset,
        split="train",
        n_frames=spec.n_frames,
        n_samples=len(spec.samples()),
        image_size=spec.image_size,
        views=spec.views,
        gt_size=spec.gt_size if "gt_depth" in spec.arrays else None,
        arrays=spec.arrays,
        attrs={
            "sequences": [f"seq_{i:02d}" for i in range(spec.n_sequences)],
            "camera": {"toy": True},
            "source": {"command": "toystore", "seed": spec.seed},
            **({"masks": {"arch": "toy", "weights": "none"}} if spec.seg else {}),
            **({"hints": {"method": "toy"}} if spec.hints else {}),
        },
        fingerprint=make_fingerprint("toy", spec),
        overwrite=overwrite,
        chunk=spec.chunk,
        frames_per_block=spec.frames_per_block,
    )


def write_toy_store(
    path: str | Path, spec: ToySpec | None = None, overwrite: bool = False
) -> Store:
    """Write (or finish) the toy store ``spec`` at ``path`` with dask threads; returns it open."""
    spec = spec or ToySpec()
    writer = create_toy_writer(path, spec, overwrite)
    write_blocks(writer, lambda _block, frames: spec.block(frames))
    writer.write_samples(spec.samples())
    return writer.finish()
