"""Monodepth2 training: (a) does self-supervised mono training recover depth, (b) step time.

(a) Learning: synthesise a KITTI-style world (forward motion 0.8 m/frame), prepare its stores,
train ``monodepth2-m`` from random init for ``BENCH_TRAIN_STEPS`` steps (default 1200; lr 1e-4,
x0.1 from epoch ``BENCH_TRAIN_LR_STEP`` = 60, i.e. step ~1020; about 16 min on 2 cores) at
``BENCH_TRAIN_SIZE`` (default 64x224) on the CPU, and report abs_rel (per-image median scaling,
Garg crop, 1e-3..80 m) of the test drive against the world's TRUE dense depth (``truth.npz``),
before and after. Target <= 0.15. The world and stores are cached in ``BENCH_TRAIN_DIR``
(default ``/tmp/depthkit_bench_train``). Skip with ``BENCH_TRAIN_LEARN=0``.

(b) Step time on the CPU at batch 2, 192x640, mono: :func:`train.engine.step.train_step` (on-device
augmentation included) against a baseline written here in the reference's style: inputs as a
dict keyed by tuples (``("color", f, s)``, ``("K", s)``...), fp32, contiguous NCHW, per scale
and per source frame warps and losses in Python loops, identity losses recomputed per scale.
Same networks (same initial weights), same loss formulas. With CUDA, also samples/s on the GPU
with and without bf16 autocast and ``torch.compile``.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pipelines.loader import Batch
from train.engine.config import TrainConfig, apply_overrides
from train.engine.runtime import build_runtime
from train.engine.step import train_step
from train.geometry import backproject, disp_to_depth, project
from train.losses import photometric_error, smoothness_loss
from train.methods import Networks, method_class, preset

# ------------------------------------------------------------------ (b) step time


def fake_batch(batch: int, height: int, width: int, seed: int = 0):
    """A uint8 Batch with prev/next frames at the network size (no store needed)."""
    from pipelines.loader.batch import Batch

    g = torch.Generator().manual_seed(seed)

    def image() -> torch.Tensor:
        return torch.randint(0, 256, (batch, 3, height, width), generator=g, dtype=torch.uint8)

    k = torch.tensor([[0.58 * width, 0, width / 2], [0, 1.92 * height, height / 2], [0, 0, 1]])
    return Batch(
        index=torch.arange(batch),
        row=torch.arange(batch),
        side=torch.zeros(batch, dtype=torch.int64),
        target=image(),
        K=k.expand(batch, 3, 3).clone(),
        baseline=torch.full((batch,), 0.54),
        prev=image(),
        next=image(),
        has_prev=torch.ones(batch, dtype=torch.bool),
        has_next=torch.ones(batch, dtype=torch.bool),
    )


def reference_inputs(batch, config: TrainConfig) -> dict:
    """The reference loader's output: dict keyed by tuples, float pyramids, K per scale."""
    inputs: dict = {}
    names = {0: batch.target, -1: batch.prev, 1: batch.next}
    for f, img in names.items():
        x = img.float().contiguous() / 255.0
        for s in range(config.params.scales):
            size = (config.height // 2**s, config.width // 2**s)
            xs = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
            inputs[("color", f, s)] = xs
            inputs[("color_aug", f, s)] = xs.clone()
    for s in range(config.params.scales):
        K = torch.eye(4).repeat(len(batch), 1, 1)
        K[:, 0, 0], K[:, 0, 2] = 0.58 * (config.width // 2**s), 0.5 * (config.width // 2**s)
        K[:, 1, 1], K[:, 1, 2] = 1.92 * (config.height // 2**s), 0.5 * (config.height // 2**s)
        inputs[("K", s)] = K
        inputs[("inv_K", s)] = torch.linalg.pinv(K)
    return inputs


def reference_step(models, optimiser, inputs: dict, config: TrainConfig) -> float:
    """monodepth2 ``process_batch`` + ``compute_losses`` structure, fp32, loops per frame."""
    outputs: dict = {}
    disps = models["depth"](inputs[("color_aug", 0, 0)]).disps
    for s, d in enumerate(disps):
        outputs[("disp", s)] = d
    for f in config.params.frame_ids[1:]:
        pair = [inputs[("color_aug", f, 0)], inputs[("color_aug", 0, 0)]]
        if f > 0:
            pair = pair[::-1]
        pose = models["pose"](torch.cat(pair, 1))
        outputs[("cam_T_cam", 0, f)] = pose.matrix(invert=f < 0)
    h, w = config.height, config.width
    for s in range(config.params.scales):
        disp = F.interpolate(outputs[("disp", s)], (h, w), mode="bilinear", align_corners=False)
        _, depth = disp_to_depth(disp, config.params.min_depth, config.params.max_depth)
        outputs[("depth", 0, s)] = depth
        for f in config.params.frame_ids[1:]:
            cam_points = backproject(depth, inputs[("inv_K", 0)])
            grid = project(cam_points, inputs[("K", 0)], outputs[("cam_T_cam", 0, f)], h, w)
            outputs[("color", f, s)] = F.grid_sample(
                inputs[("color", f, 0)], grid, padding_mode="border", align_corners=True
            )
    total = 0.0
    target = inputs[("color", 0, 0)]
    for s in range(config.params.scales):
        reprojection = torch.cat(
            [
                photometric_error(outputs[("color", f, s)], target)
                for f in config.params.frame_ids[1:]
            ],
            1,
        )
        identity = torch.cat(
            [
                photometric_error(inputs[("color", f, 0)], target)
                for f in config.params.frame_ids[1:]
            ],
            1,
        )
        identity = identity + torch.randn(identity.shape) * 1e-5
        to_optimise, _ = torch.min(torch.cat((identity, reprojection), 1), 1)
        loss = to_optimise.mean()
        disp = outputs[("disp", s)]
        mean_disp = disp.mean(2, True).mean(3, True)
        smooth = smoothness_loss(disp / (mean_disp + 1e-7), inputs[("color", 0, s)], False)
        total = total + loss + config.params.disparity_smoothness * smooth / (2**s)
    total = total / config.params.scales
    optimiser.zero_grad()
    total.backward()
    optimiser.step()
    return float(total.detach())


def time_calls(fn, reps: int) -> float:
    """Median seconds of ``reps`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def step_call(
    config: TrainConfig, batch: Batch, patch: Callable[[Networks], None] | None = None
) -> Callable[[], object]:
    """One CPU training step of ``config`` on ``batch``, as a call for the interleaved timers:
    networks, runtime, optimisers and a fixed generator built once; ``patch(nets)`` may change
    the networks first."""
    cpu = torch.device("cpu")
    method = method_class(config.method)(config)
    nets = method.build_networks(cpu)
    if patch is not None:
        patch(nets)
    runtime = build_runtime(config, method, nets, cpu)
    optimisers = method.optimisers(nets)
    generator = torch.Generator().manual_seed(0)
    return lambda: train_step(runtime, method, optimisers, batch, generator)


def bench_step_time(reps: int = 3) -> None:
    config = apply_overrides(
        preset("monodepth2-m"), {"pretrained": False, "batch_size": 2, "device": "cpu"}
    )
    batch = fake_batch(2, config.height, config.width)
    cpu = torch.device("cpu")

    method = method_class(config.method)(config)
    models = method.build_networks(cpu)
    ref_models = copy.deepcopy(models)
    runtime = build_runtime(config, method, models, cpu)
    optimisers = method.optimisers(models)
    ref_optimiser = method.optimisers(ref_models)[0].optimiser
    generator = torch.Generator().manual_seed(0)
    ours = time_calls(lambda: train_step(runtime, method, optimisers, batch, generator), reps)
    inputs = reference_inputs(batch, config)
    ref = time_calls(lambda: reference_step(ref_models, ref_optimiser, inputs, config), reps)
    print(
        f"step time CPU, batch 2, 192x640, mono ({torch.get_num_threads()} threads): "
        f"ours {ours:.2f} s (augmentation included), reference style {ref:.2f} s, "
        f"ratio {ours / ref:.2f} (target <= 1.0)"
    )
    if torch.cuda.is_available():
        bench_cuda(config)


def bench_cuda(config: TrainConfig, steps: int = 20) -> None:
    batch_size = 12
    batch = fake_batch(batch_size, config.height, config.width).to("cuda")
    for amp, compiled in ((False, False), (True, False), (False, True), (True, True)):
        cfg = apply_overrides(
            config, {"amp": amp, "compile": compiled, "batch_size": batch_size, "device": "cuda"}
        )
        dev = torch.device("cuda")
        method = method_class(cfg.method)(cfg)
        models = method.build_networks(dev)
        runtime = build_runtime(cfg, method, models, dev)
        optimisers = method.optimisers(models)
        g = torch.Generator().manual_seed(0)
        for _ in range(3):
            train_step(runtime, method, optimisers, batch, g)
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(steps):
            train_step(runtime, method, optimisers, batch, g)
        torch.cuda.synchronize()
        rate = steps * batch_size / (time.perf_counter() - t)
        print(f"CUDA batch {batch_size} 192x640 amp={amp} compile={compiled}: {rate:.1f} samples/s")


# ------------------------------------------------------------------ (a) learning


def true_depth_abs_rel(world: Path, test_store: Path, method, models) -> float:
    """abs_rel (median scaled, Garg crop, 1e-3..80 m) of a method's ``models`` on the synthetic
    test drive against the world's true dense depth (``truth.npz``), inputs from the test store."""
    from train.eval.evaluate import predict_depths
    from train.eval.metrics import eigen_metrics

    truth = np.load(world / "truth.npz")
    gt = [d.astype(np.float32) for d in truth["2011_09_26/2011_09_26_drive_0002_sync/depth"]]
    preds = predict_depths(method.predictor(models), method.config, test_store)
    return eigen_metrics(gt, 1.0 / preds.depths, stereo=False)["abs_rel"]


def bench_learning() -> None:
    from pipelines.prepare.kitti.prepare import KittiPrepareOptions, prepare_kitti
    from pipelines.synth import write_kitti
    from train.engine.trainer import train
    from train.eval.evaluate import load_checkpoint_method

    root = Path(os.environ.get("BENCH_TRAIN_DIR", "/tmp/depthkit_bench_train"))
    steps = int(os.environ.get("BENCH_TRAIN_STEPS", "1200"))
    height, width = (int(v) for v in os.environ.get("BENCH_TRAIN_SIZE", "64x224").split("x"))
    frames = int(os.environ.get("BENCH_TRAIN_FRAMES", "24"))
    world, stores = root / f"world_{frames}", root / f"stores_{frames}"
    if not (world / "truth.npz").is_file():
        write_kitti(world, frames=frames, seed=0)
    for split in ("eigen_zhou", "eigen"):
        prepare_kitti(
            world,
            world / "splits" / split,
            stores,
            KittiPrepareOptions(size=(96, 320), gt="velodyne", progress=False),
        )
    config = apply_overrides(
        preset("monodepth2-m"),
        {
            "pretrained": False,
            "height": height,
            "width": width,
            "batch_size": 4,
            "epochs": 10_000,
            "scheduler_step": int(os.environ.get("BENCH_TRAIN_LR_STEP", "60")),
            "max_steps": steps,
            "workers": 0,
            "device": "cpu",
            "log_every": 50,
            "keep_epochs": 1,
        },
    )
    test = stores / "test.zarr"
    method = method_class(config.method)(config)
    before = true_depth_abs_rel(world, test, method, method.build_networks())
    run = root / f"run_{steps}_{height}x{width}"
    t = time.perf_counter()
    summary = train(config, stores / "train.zarr", run, progress=False, echo=lambda _: None)
    after = true_depth_abs_rel(
        world, test, *load_checkpoint_method(run / "checkpoints" / "last.pt")
    )
    print(
        f"learning: {summary.steps} steps at {height}x{width}, batch 4, "
        f"{time.perf_counter() - t:.0f} s; abs_rel vs true depth (median scaled, Garg crop): "
        f"untrained {before:.3f} -> trained {after:.3f} (target <= 0.15)"
    )


def main() -> None:
    bench_step_time()
    if os.environ.get("BENCH_TRAIN_LEARN", "1") != "0":
        bench_learning()


if __name__ == "__main__":
    main()
