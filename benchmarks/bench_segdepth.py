"""Learning: Monodepth2 vs SegDepth (mono), and Monodepth2 stereo with vs without Depth Hints.

A synthetic KITTI world written with its true object masks (``write_kitti(masks=True)``), its
eigen_zhou train store (96 x 320) with ``seg`` filled from those masks
(:func:`pipelines.passes.fill_true_masks`, no DeepLabv3 weights needed) and ``hint_depth`` from
the Depth Hints pass (fused SGM at 320 x 1024 on the raw pairs), and its eigen test store. Four
runs from random init, same seed (so the same initial depth and pose weights), same steps
(``BENCH_SEG_STEPS``, default 150), batch 4, lr 1e-4 constant, at ``BENCH_SEG_SIZE`` (64x224),
on the CPU:

* ``monodepth2-m`` vs ``segdepth-m`` (the U-Net with its own Adam 1e-3, alpha 5e-4);
* ``monodepth2-s`` vs ``monodepth2-s`` with ``hints=true`` (the only difference: the hint term).

Scored on the test drive against the world's true dense depth (Garg crop, 1e-3..80 m): abs_rel
with per-image median scaling for all, and with the fixed x5.4 for the stereo runs (their own
rule). World and stores are cached in ``BENCH_SEG_DIR`` (default ``/tmp/depthkit_bench_segdepth``).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np

from pipelines.passes import compute_hints, fill_true_masks
from pipelines.prepare.kitti.prepare import KittiPrepareOptions, prepare_kitti
from pipelines.store import open_store
from pipelines.synth import write_kitti
from train.engine.config import apply_overrides
from train.engine.trainer import train
from train.eval.evaluate import load_checkpoint_method, predict_depths
from train.eval.metrics import eigen_metrics
from train.methods import preset

TEST_DRIVE = "2011_09_26/2011_09_26_drive_0002_sync"
RUNS = (
    ("monodepth2-m", {}),
    ("segdepth-m", {}),
    ("monodepth2-s", {}),
    ("monodepth2-s", {"hints": True}),
)


def stores(root: Path, frames: int) -> tuple[Path, Path]:
    """The world (with masks) and its stores (train with seg and hint_depth, val, test)."""
    world, out = root / f"world_{frames}", root / f"stores_{frames}"
    if not (world / "masks.npz").is_file():
        t = time.perf_counter()
        write_kitti(world, frames=frames, seed=0, masks=True)
        print(f"world: {frames} frames x 3 drives with true masks, {time.perf_counter() - t:.0f} s")
    options = KittiPrepareOptions(size=(96, 320), gt="velodyne", progress=False)
    for split in ("eigen_zhou", "eigen"):
        prepare_kitti(world, world / "splits" / split, out, options)
    train_store = out / "train.zarr"
    computed = open_store(train_store).attrs.get("computed", {})
    if not computed.get("seg"):
        fill_true_masks(train_store, world)
    if not computed.get("hint_depth"):
        t = time.perf_counter()
        report = compute_hints(train_store, world, progress=False)
        print(f"{report} ({time.perf_counter() - t:.0f} s)")
    return world, out


def abs_rel(run: Path, world: Path, test: Path) -> tuple[float, float]:
    """(median-scaled, x5.4) abs_rel of a run's last checkpoint against the true depth."""
    method, nets = load_checkpoint_method(run / "checkpoints" / "last.pt")
    truth = np.load(world / "truth.npz")
    gt = [d.astype(np.float32) for d in truth[f"{TEST_DRIVE}/depth"]]
    preds = predict_depths(method.predictor(nets), method.config, test)
    disps = 1.0 / preds.depths
    median = eigen_metrics(gt, disps, stereo=False)["abs_rel"]
    return median, eigen_metrics(gt, disps, stereo=True)["abs_rel"]


def main() -> None:
    root = Path(os.environ.get("BENCH_SEG_DIR", "/tmp/depthkit_bench_segdepth"))
    steps = int(os.environ.get("BENCH_SEG_STEPS", "150"))
    height, width = (int(v) for v in os.environ.get("BENCH_SEG_SIZE", "64x224").split("x"))
    frames = int(os.environ.get("BENCH_SEG_FRAMES", "12"))
    world, out = stores(root, frames)
    common = {
        "pretrained": False,
        "height": height,
        "width": width,
        "batch_size": 4,
        "epochs": 10_000,
        "scheduler_step": 10_000,
        "max_steps": steps,
        "workers": 0,
        "device": "cpu",
        "log_every": 50,
        "keep_epochs": 1,
    }
    results = {}
    for name, extra in RUNS:
        label = name + ("+hints" if extra.get("hints") else "")
        config = apply_overrides(preset(name), {**common, **extra})
        run = root / f"run_{label}_{steps}_{height}x{width}"
        shutil.rmtree(run, ignore_errors=True)
        t = time.perf_counter()
        summary = train(config, out / "train.zarr", run, progress=False, echo=lambda _: None)
        seconds = time.perf_counter() - t
        results[label] = abs_rel(run, world, out / "test.zarr")
        median, fixed = results[label]
        print(f"{label:<18} {summary.steps} steps {seconds:5.0f} s: abs_rel median-scaled "
              f"{median:.3f}, x5.4 {fixed:.3f}")  # fmt: skip
    m, s = results["monodepth2-m"][0], results["segdepth-m"][0]
    print(f"segdepth / monodepth2 (mono, median-scaled abs_rel): {s:.3f} / {m:.3f} = {s / m:.3f}")
    plain, hinted = results["monodepth2-s"][1], results["monodepth2-s+hints"][1]
    print(
        f"with / without hints (stereo, x5.4 abs_rel): {hinted:.3f} / {plain:.3f} = "
        f"{hinted / plain:.3f}"
    )


if __name__ == "__main__":
    main()
