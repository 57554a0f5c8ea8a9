"""``prepare-nyu`` end to end (raw store, no fill, no masks) vs a plain serial loop.

A synthetic NYU raw world (12 depth frames per scene) is rendered once into a temporary
folder; the two folder scenes are hard-linked under two more names each, so the conversion has
84 synced frames (12 of them inside a zip) without rendering them. The conversion
(``prepare_nyu`` at the default 288x384, 2 workers) is timed from the call to the finished
store, including planning; during the same runs the per-frame cost of each stage is summed
over threads: read + decode of the dumps, ``project_depth``, resize, zarr write (compression
included). The baseline is the same per-frame work in a single-threaded loop without dask or
zarr (read, project, resize). Best of 3 interleaved runs each (the machine may be shared).
Target: >= 50 synced frames/s on 2 workers.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nyutools
import pipelines.prepare.nyu.blocks as nyu_blocks
from pipelines.prepare.nyu.prepare import NyuPrepareOptions, prepare_nyu
from pipelines.store.writer import StoreWriter
from pipelines.synth import write_nyu_raw

FRAMES = 12
LINKS = 2  # extra names per folder scene
WORKERS = 2
RUNS = 3
SIZE = (288, 384)
TARGET = 50.0


def _make_world(root: Path) -> None:
    write_nyu_raw(root, frames=FRAMES, seed=1, truth=False)
    for name in ("bedroom_0001", "kitchen_0003a"):
        head, _, tail = name.rpartition("_")
        for k in range(1, LINKS + 1):
            copy = root / f"{head}_{9000 + k}{tail[4:]}"
            copy.mkdir()
            for f in (root / name).iterdir():
                os.link(f, copy / f.name)  # hard links: a scene folder under another name


@dataclass
class _Run:
    """One timed conversion: wall seconds, process CPU seconds, frames, and per stage the
    (wall, calling-thread CPU) seconds summed over threads."""

    seconds: float
    cpu: float
    frames: int
    stages: dict[str, list[float]]


class _Stages:
    """Wall and thread-CPU seconds per stage, summed over threads, via wrappers."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def wrap(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
                with self._lock:
                    acc = self.seconds.setdefault(stage, [0.0, 0.0])
                    acc[0] += wall
                    acc[1] += cpu

        return timed


def _convert(root: Path, out: Path) -> _Run:
    """One timed conversion of the raw world into ``out``."""
    stages = _Stages()
    patches = [
        (nyu_blocks.NyuRawBlocks, "read"),
        (nyu_blocks.nyutools, "project_depth"),
        (nyu_blocks, "resize_frame"),
        (StoreWriter, "write_block"),
    ]
    names = ("read + decode", "project_depth", "resize", "zarr write")
    saved = [getattr(obj, attr) for obj, attr in patches]
    for (obj, attr), fn, name in zip(patches, saved, names, strict=True):
        setattr(obj, attr, stages.wrap(name, fn))
    opts = NyuPrepareOptions(size=SIZE, workers=WORKERS, progress=False, overwrite=True)
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        report = prepare_nyu(root, out, options=opts)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        for (obj, attr), fn in zip(patches, saved, strict=True):
            setattr(obj, attr, fn)
    return _Run(seconds, cpu, report.stores[0].frames, stages.seconds)


def _serial(root: Path) -> tuple[float, int]:
    """Baseline: read, project and resize every synced frame in one thread, nothing stored."""
    t0 = time.perf_counter()
    n = 0
    for scene in nyutools.list_scenes(root):
        for f in nyutools.sync_frames(scene):
            raw, rgb = scene.read_depth(f.depth), scene.read_rgb(str(f.rgb))
            nyu_blocks.convert_frame(raw, rgb, SIZE)
            n += 1
        scene.close()
    return time.perf_counter() - t0, n


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "raw"
        t0 = time.perf_counter()
        _make_world(root)
        print(f"world: {time.perf_counter() - t0:.1f} s to render", flush=True)
        runs, serial = [], []
        for _ in range(RUNS):
            runs.append(_convert(root, Path(tmp) / "out"))
            serial.append(_serial(root))
    best = min(runs, key=lambda r: r.seconds)
    base_s, base_n = min(serial)
    fps, base_fps = best.frames / best.seconds, base_n / base_s
    print(f"prepare-nyu   {best.frames} synced frames at {SIZE[0]}x{SIZE[1]}, {WORKERS} workers: "
          f"{best.seconds:.2f} s = {fps:.1f} frames/s (target >= {TARGET:.0f}); process CPU "
          f"{1000 * best.cpu / best.frames:.1f} ms/frame")  # fmt: skip
    print(f"serial loop   {base_n} frames, 1 thread, no store: {base_s:.2f} s = "
          f"{base_fps:.1f} frames/s")  # fmt: skip
    print(f"ratio         {fps / base_fps:.2f}x the serial loop")
    split = ", ".join(
        f"{k} {1000 * w / best.frames:.1f} / {1000 * c / best.frames:.1f}"
        for k, (w, c) in best.stages.items()
    )
    print(f"per frame     ms wall / thread CPU, summed over threads: {split}")
    print(f"              (zarr compresses in its own threads: its CPU is not in the caller's); "
          f"wall per frame {1000 * best.seconds / best.frames:.1f} ms")  # fmt: skip
    load = os.getloadavg()[0]
    print(f"machine       {os.cpu_count()} cores, load average {load:.1f} during the runs")


if __name__ == "__main__":
    main()
