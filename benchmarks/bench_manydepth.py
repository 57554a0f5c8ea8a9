"""ManyDepth on the synthetic KITTI world: (a) learning against Monodepth2, (b) its step cost.

(a) A KITTI world with ``BENCH_MD_FRAMES`` (default 12) frames per drive, its eigen_zhou train
store and its eigen test store with previous frames (``prepare-kitti --prev-frames``) at
``BENCH_MD_SIZE`` (default 96x320); the networks run at ``BENCH_MD_NET`` (default 64x224, as the
demo and ``bench_train`` train). ``monodepth2-m`` and ``manydepth-m`` train from random weights
with the same seed, data, batch (4) and number of steps (``BENCH_MD_STEPS``, default 300), Adam
1e-4 without decay, on the CPU. ManyDepth freezes its teacher and pose networks at
epoch ``BENCH_MD_FREEZE`` (default: three quarters of the run, as 15 of 20 epochs). Scored
against the world's true depth (per-image median scaling, Garg crop, 1e-3..80 m): Monodepth2,
ManyDepth from (previous, current) pairs (the first test frame has no previous frame: black, as
the reference evaluates), and ManyDepth's single-frame teacher (``--set teacher=true``). World,
stores and runs live in ``BENCH_MD_DIR`` (default ``/tmp/depthkit_bench_manydepth``). Skip with
``BENCH_MD_LEARN=0``.

(b) CPU step time at batch 2, ``BENCH_MD_STEP_SIZE`` (default 192x640), random weights:
``manydepth-m`` (three ResNet-18 networks and a 96-bin cost volume) over ``monodepth2-m``,
measured alternately in one run (``BENCH_MD_REPS`` steps each, default 3; 0 skips). On CUDA the
training samples/s of ``manydepth-m`` is a row of ``benchmarks/gpu.sh``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from benchmarks.bench_densedepth import time_interleaved
from benchmarks.bench_featdepth import kitti_stores, run
from benchmarks.bench_train import fake_batch, step_call, true_depth_abs_rel
from train.engine.config import apply_overrides
from train.methods import preset

PRESETS = ("monodepth2-m", "manydepth-m")


def _size(name: str, default: str) -> tuple[int, int]:
    height, width = (int(v) for v in os.environ.get(name, default).split("x"))
    return height, width


def bench_learning(root: Path, steps: int) -> None:
    from pipelines import open_store
    from train.eval.evaluate import load_checkpoint_method

    frames = int(os.environ.get("BENCH_MD_FRAMES", "12"))
    size = _size("BENCH_MD_SIZE", "96x320")
    world, train_store, test = kitti_stores(root, size, frames=frames, prev_frames=True)
    size = _size("BENCH_MD_NET", "64x224")
    batch = 4
    per_epoch = max(1, open_store(train_store).n_samples // batch)
    epochs = -(-steps // per_epoch)
    freeze = int(os.environ.get("BENCH_MD_FREEZE", str(max(1, (3 * epochs) // 4))))
    common = {"pretrained": False, "height": size[0], "width": size[1], "batch_size": batch}
    common |= {"workers": 0, "device": "cpu", "log_every": 50, "keep_epochs": 1}
    common |= {"epochs": 10_000, "scheduler_step": 10_000, "max_steps": steps}
    print(
        f"learning: {steps} steps ({per_epoch} per epoch), batch {batch}, {size[0]}x{size[1]}, "
        f"lr 1e-4 constant, seed 0; manydepth freezes its teacher at epoch {freeze}",
        flush=True,
    )
    scores: dict[str, float] = {}
    for name in PRESETS:
        extra = {"freeze_teacher_epoch": freeze} if name == "manydepth-m" else {}
        config = apply_overrides(preset(name), common | extra)
        checkpoint, seconds = run(config, train_store, root / f"run_{name}")
        variants = [(name, [])]
        if name == "manydepth-m":
            variants.append(("manydepth-m teacher", ["teacher=true"]))
        for label, overrides in variants:
            method, nets = load_checkpoint_method(checkpoint, overrides=overrides)
            scores[label] = true_depth_abs_rel(world, test, method, nets)
            print(f"{label}: {steps} steps {seconds:.0f} s: median-scaled abs_rel "
                  f"{scores[label]:.3f}", flush=True)  # fmt: skip
    base = scores["monodepth2-m"]
    print(
        f"manydepth / monodepth2 abs_rel: {scores['manydepth-m'] / base:.3f} (multi-frame), "
        f"{scores['manydepth-m teacher'] / base:.3f} (its teacher)"
    )


def bench_step_time(reps: int) -> None:
    height, width = _size("BENCH_MD_STEP_SIZE", "192x640")
    batch = fake_batch(2, height, width)
    steps = {}
    for name in PRESETS:
        config = apply_overrides(
            preset(name),
            {"pretrained": False, "batch_size": 2, "device": "cpu", "height": height,
             "width": width},
        )  # fmt: skip
        steps[name] = step_call(config, batch)
    median = time_interleaved(steps, reps)
    print(
        f"step time CPU, batch 2, {height}x{width} ({torch.get_num_threads()} threads, median of "
        f"{reps}): "
        + ", ".join(f"{n} {s:.2f} s" for n, s in median.items())
        + f"; manydepth-m / monodepth2-m {median['manydepth-m'] / median['monodepth2-m']:.2f}"
    )


def main() -> None:
    reps = int(os.environ.get("BENCH_MD_REPS", "3"))
    if reps > 0:
        bench_step_time(reps)
    if os.environ.get("BENCH_MD_LEARN", "1") == "0":
        return
    root = Path(os.environ.get("BENCH_MD_DIR", "/tmp/depthkit_bench_manydepth"))
    bench_learning(root, int(os.environ.get("BENCH_MD_STEPS", "300")))


if __name__ == "__main__":
    main()
