"""Lite-Mono against Monodepth2: (a) learning on the synthetic KITTI world, (b) CPU step time.

(a) The usual synthetic KITTI world (``write_kitti``, eigen_zhou train store, eigen test store
at 96x320, cached in ``BENCH_LM_DIR``, default ``/tmp/depthkit_bench_litemono``).
``monodepth2-m`` and ``litemono-m`` (and any preset in ``BENCH_LM_PRESETS``) train at
``BENCH_LM_SIZE`` (default 64x224, as ``bench_train`` and the demo) from random weights (no
ImageNet for either: Lite-Mono's ImageNet encoder is a separate download) with the same seed,
store, batch (4), number of steps (``BENCH_LM_STEPS``, default 300) and learning rate (1e-4
constant: Monodepth2's step decay and Lite-Mono's cosine cycle are both far beyond the run).
Each keeps its own optimiser (Adam / AdamW with weight decay 1e-2), losses and scales (4 / 3)
and Lite-Mono its drop path 0.2. The loop is the trainer's (the streaming loader, the engine's
step, generators re-seeded from (seed, step)) without its checkpoints, which on this world's
7-step epochs would cost more than the steps. Scored with per-image median scaling against the
world's true depth (Garg crop, 1e-3..80 m). Skip with ``BENCH_LM_LEARN=0``.

(b) CPU step time (batch 2, ``BENCH_LM_STEP_SIZE``, default 192x640, random weights, float32,
``BENCH_LM_REPS`` timed steps after a warm-up, default 3, alternating): ``litemono-m``,
``litemono-8m-m`` and ``litemono-tiny-m`` over ``monodepth2-m``. On CUDA the training samples/s
and the export latency are rows of ``benchmarks/gpu.sh``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from benchmarks.bench_densedepth import time_interleaved
from benchmarks.bench_featdepth import kitti_stores
from benchmarks.bench_train import fake_batch, step_call, true_depth_abs_rel
from train.engine.config import TrainConfig, apply_overrides
from train.engine.distributed import seed_step
from train.engine.runtime import build_runtime
from train.engine.step import train_step
from train.methods import build_method, preset

BASELINE = "monodepth2-m"
STEP_PRESETS = ("monodepth2-m", "litemono-m", "litemono-8m-m", "litemono-tiny-m")


def _size(name: str, default: str) -> tuple[int, int]:
    height, width = (int(v) for v in os.environ.get(name, default).split("x"))
    return height, width


def same_schedule(name: str) -> dict[str, object]:
    """Overrides that give ``name`` a constant learning rate of 1e-4."""
    if preset(name).method == "litemono":
        return {"lr_depth": (1e-4, 1e-4, 31), "lr_pose": (1e-4, 1e-4, 31)}
    return {"lr": 1e-4, "scheduler_step": 10_000}


def learn(config: TrainConfig, train_store: Path, steps: int) -> tuple[object, object, float]:
    """``steps`` training steps of ``config`` (the trainer's loop without checkpoints); returns
    (method, networks in eval mode, seconds)."""
    from pipelines.loader import make_loader

    cpu = torch.device("cpu")
    method = build_method(config)
    nets = method.build_networks(cpu)
    runtime = build_runtime(config, method, nets, cpu)
    optimisers = method.optimisers(nets)
    request = method.loader_request()
    loader = make_loader(
        train_store, config.batch_size, workers=0, seed=config.seed, frames=request.frames,
        extras=request.extras, drop_last=True,
    )  # fmt: skip
    generators = {"augment": torch.Generator(), "noise": torch.Generator(cpu)}
    done, epoch, start = 0, 0, time.perf_counter()
    nets.train(True)
    while done < steps:
        loader.dataset.set_epoch(epoch)
        for batch in loader:
            seed_step(generators, config.seed, 0, done)
            result = train_step(
                runtime, method, optimisers, batch, generators["augment"], generators["noise"]
            )
            done += result is not None
            if done >= steps:
                break
        for spec in optimisers:  # constant rates here, stepped as the trainer does
            spec.scheduler.step()
        epoch += 1
    nets.train(False)
    return method, nets, time.perf_counter() - start


def bench_learning() -> None:
    root = Path(os.environ.get("BENCH_LM_DIR", "/tmp/depthkit_bench_litemono"))
    steps = int(os.environ.get("BENCH_LM_STEPS", "300"))
    size = _size("BENCH_LM_SIZE", "64x224")
    names = os.environ.get("BENCH_LM_PRESETS", f"{BASELINE},litemono-m").split(",")
    world, train_store, test = kitti_stores(root, (96, 320))
    common = {"pretrained": False, "height": size[0], "width": size[1], "batch_size": 4}
    common |= {"workers": 0, "device": "cpu", "seed": 0}
    results = {}
    for name in names:
        config = apply_overrides(preset(name), common | same_schedule(name))
        untrained = build_method(config)
        before = true_depth_abs_rel(world, test, untrained, untrained.build_networks())
        method, nets, seconds = learn(config, train_store, steps)
        results[name] = true_depth_abs_rel(world, test, method, nets)
        print(
            f"kitti {size[0]}x{size[1]}: {name} {steps} steps, batch 4, {seconds:.0f} s: "
            f"median-scaled abs_rel vs true depth {before:.3f} -> {results[name]:.3f}",
            flush=True,
        )
    base = results.get(BASELINE)
    for name, value in results.items():
        if name != BASELINE and base:
            print(f"{name} / {BASELINE} abs_rel: {value:.3f} / {base:.3f} = {value / base:.3f}")


def bench_step_time(reps: int) -> None:
    height, width = _size("BENCH_LM_STEP_SIZE", "192x640")
    batch = fake_batch(2, height, width)
    steps = {}
    for name in STEP_PRESETS:
        changes = {"pretrained": False, "batch_size": 2, "device": "cpu", "amp": False}
        config = apply_overrides(preset(name), changes | {"height": height, "width": width})
        steps[name] = step_call(config, batch)
    median = time_interleaved(steps, reps)
    base = median[BASELINE]
    print(
        f"step time CPU, batch 2, {height}x{width} ({torch.get_num_threads()} threads, median of "
        f"{reps}): " + ", ".join(f"{n} {s:.2f} s" for n, s in median.items())
    )
    print(
        f"ratios to {BASELINE}: "
        + ", ".join(f"{n} {s / base:.2f}" for n, s in median.items() if n != BASELINE)
    )


def main() -> None:
    reps = int(os.environ.get("BENCH_LM_REPS", "3"))  # 0 skips (b)
    if reps > 0:
        bench_step_time(reps)
    if os.environ.get("BENCH_LM_LEARN", "1") != "0":
        bench_learning()


if __name__ == "__main__":
    main()
