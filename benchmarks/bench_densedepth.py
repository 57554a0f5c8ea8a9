"""DenseDepth: (a) supervised learning per loss choice, (b) CPU step time, (c) CUDA samples/s.

(a) Learning: synthesise a small NYU world (``write_nyu_labeled``: 3 scenes, the first one the
test split), ``prepare-nyu`` it, then train ``densedepth-nyu`` from the same random init once per
loss (``densedepth``, ``berhu``, ``silog``, ``l1``) for ``BENCH_DD_STEPS`` steps (default 75)
at ``BENCH_DD_SIZE`` (default 64x96), batch 2, Adam (AMSGrad) 1e-4, flips and channel swaps on,
on ``labeled_train.zarr``, with the engine's own step (:func:`train.engine.step.train_step`)
over the streaming loader (no checkpoints: the loop is the trainer's minus its bookkeeping).
Each is scored on ``labeled_test.zarr`` whose ``gt_depth`` is the world's TRUE depth (clipped
at 10 m) with the DenseDepth protocol (flip averaging, Eigen crop, pooled, metric) and, for a
scale-free view, the same protocol with per-image median scaling. World and stores are cached
in ``BENCH_DD_DIR`` (default ``/tmp/depthkit_bench_densedepth``). Skip with ``BENCH_DD_LEARN=0``.

(b) Step time on the CPU, batch 2, 480x640 (``BENCH_DD_REPS`` timed steps each after one
warm-up, default 2, ours and the baseline alternating): :func:`train_step` (on-device
augmentation: flip, channel swap, the target encoded and resized on the device) against a
baseline in the reference's style: per-sample numpy on the CPU as DenseDepth's ``data.py`` does
(``/255``, ``DepthNorm``, scikit-image ``resize`` of the image to 480x640 and of the target to
240x320 with anti-aliasing, ``BasicPolicy``-style mirror and channel swap in numpy), then
float64 -> float32 tensors, the same network (same initial weights) and the same loss formula,
Adam step.

(c) With CUDA: samples/s at batch 8, 480x640, with and without bf16 autocast and
``torch.compile``.
"""

from __future__ import annotations

import copy
import itertools
import os
import time
from pathlib import Path

import numpy as np
import torch

from train.engine.config import TrainConfig, apply_overrides
from train.engine.runtime import build_runtime
from train.engine.step import train_step
from train.losses.supervised import densedepth_loss
from train.methods import method_class, preset

LOSSES = ("densedepth", "berhu", "silog", "l1")
H, W = 480, 640

# ------------------------------------------------------------------ (b) step time


def fake_batch(batch: int, seed: int = 0):
    """A uint8 NYU-labeled-like Batch: RGB and dense ground truth at 480x640."""
    from pipelines.loader.batch import Batch

    g = torch.Generator().manual_seed(seed)
    return Batch(
        index=torch.arange(batch),
        row=torch.arange(batch),
        side=torch.zeros(batch, dtype=torch.int64),
        target=torch.randint(0, 256, (batch, 3, H, W), generator=g, dtype=torch.uint8),
        K=torch.eye(3).expand(batch, 3, 3).clone(),
        baseline=torch.zeros(batch),
        gt_depth=torch.rand(batch, H, W, generator=g) * 9.5 + 0.5,
        gt_size=torch.tensor([[H, W]] * batch, dtype=torch.int32),
    )


PERMUTATIONS = list(itertools.permutations(range(3)))


def reference_inputs(batch, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """DenseDepth ``data.py`` style: per sample in numpy float64, then stacked tensors."""
    from skimage.transform import resize

    images = batch.target.permute(0, 2, 3, 1).numpy()
    depths = batch.gt_depth.numpy()
    xs, ys = [], []
    for image, depth in zip(images, depths, strict=True):
        x = np.clip(image / 255, 0, 1)
        y = 1000.0 / np.clip(depth[..., None] * 100, 10, 1000)  # DepthNorm of centimetres
        x = resize(x, (H, W), preserve_range=True, mode="reflect", anti_aliasing=True)
        y = resize(y, (H // 2, W // 2), preserve_range=True, mode="reflect", anti_aliasing=True)
        if rng.random() < 0.5:  # mirror
            x, y = x[:, ::-1], y[:, ::-1]
        if rng.random() < 0.5:  # channel swap
            x = x[..., list(PERMUTATIONS[rng.integers(len(PERMUTATIONS))])]
        xs.append(x)
        ys.append(y)
    x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float().contiguous()
    y = torch.from_numpy(np.stack(ys)).permute(0, 3, 1, 2).float().contiguous()
    return x, y


def reference_step(net, optimiser, batch, rng: np.random.Generator) -> float:
    x, y = reference_inputs(batch, rng)
    loss = densedepth_loss(y, net(x))
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    return float(loss.detach())


def time_interleaved(fns: dict[str, object], reps: int) -> dict[str, float]:
    """Median seconds per call of each function, after one warm-up call each; the calls
    alternate (a, b, a, b, ...) so that a change of machine load hits both alike."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: float(np.median(v)) for name, v in times.items()}


def bench_step_time(reps: int) -> None:
    config = apply_overrides(
        preset("densedepth-nyu"), {"pretrained": False, "batch_size": 2, "device": "cpu"}
    )
    cpu = torch.device("cpu")
    batch = fake_batch(2)
    method = method_class(config.method)(config)
    nets = method.build_networks(cpu)
    ref_nets = copy.deepcopy(nets)
    runtime = build_runtime(config, method, nets, cpu)
    optimisers = method.optimisers(nets)
    ref_optimiser = method.optimisers(ref_nets)[0].optimiser
    generator = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    net = ref_nets["depth"]
    times = time_interleaved(
        {
            "ours": lambda: train_step(runtime, method, optimisers, batch, generator),
            "ref": lambda: reference_step(net, ref_optimiser, batch, rng),
        },
        reps,
    )
    ours, ref = times["ours"], times["ref"]
    t = time.perf_counter()
    reference_inputs(batch, rng)
    data = time.perf_counter() - t
    print(
        f"step time CPU, batch 2, 480x640 ({torch.get_num_threads()} threads, median of {reps}): "
        f"ours {ours:.2f} s (augmentation included), reference style {ref:.2f} s (of which "
        f"{data:.2f} s numpy data path), ratio {ours / ref:.2f} (target <= 1.0)",
        flush=True,
    )


def bench_cuda(steps: int = 10, batch_size: int = 8) -> None:
    if not torch.cuda.is_available():
        print("CUDA samples/s: no CUDA device, skipped")
        return
    dev = torch.device("cuda")
    batch = fake_batch(batch_size).to(dev)
    for amp, compiled in ((False, False), (True, False), (False, True), (True, True)):
        changes = {"pretrained": False, "batch_size": batch_size, "device": "cuda"}
        cfg = apply_overrides(preset("densedepth-nyu"), changes | {"amp": amp, "compile": compiled})
        method = method_class(cfg.method)(cfg)
        nets = method.build_networks(dev)
        runtime = build_runtime(cfg, method, nets, dev)
        optimisers = method.optimisers(nets)
        g = torch.Generator().manual_seed(0)
        for _ in range(3):
            train_step(runtime, method, optimisers, batch, g)
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(steps):
            train_step(runtime, method, optimisers, batch, g)
        torch.cuda.synchronize()
        rate = steps * batch_size / (time.perf_counter() - t)
        print(f"CUDA batch {batch_size} 480x640 amp={amp} compile={compiled}: {rate:.1f} samples/s")


# ------------------------------------------------------------------ (a) learning


def prepared_stores(
    root: Path, frames: int, size: tuple[int, int] = (96, 128), texture: float = 1.0
) -> Path:
    """The synthetic NYU world's stores (cached): ``raw_train.zarr`` at ``size``,
    ``labeled_train.zarr``, ``labeled_test.zarr``; ``texture`` as in ``write_nyu_labeled``."""
    from pipelines.prepare.nyu.prepare import NyuPrepareOptions, prepare_nyu
    from pipelines.synth import write_nyu_labeled

    tag = "" if texture == 1.0 else f"_t{texture:g}"
    world = root / f"world_{frames}{tag}"
    sized = "" if size == (96, 128) else f"_{size[0]}x{size[1]}"
    stores = root / f"stores_{frames}{tag}{sized}"
    if not (world / "splits.mat").is_file():
        write_nyu_labeled(world, frames=frames, seed=0, texture=texture)
    options = NyuPrepareOptions(size=size, chunk=8, progress=False)
    prepare_nyu(
        world / "raw", stores, world / "nyu_depth_v2_labeled.mat", world / "splits.mat", options
    )
    return stores


def learn(config: TrainConfig, train_store: Path, steps: int) -> tuple[object, object, float]:
    """``steps`` engine steps from the config's seed; returns (method, networks, last loss)."""
    from pipelines.loader import make_loader

    cpu = torch.device("cpu")
    method = method_class(config.method)(config)
    nets = method.build_networks(cpu)
    runtime = build_runtime(config, method, nets, cpu)
    optimisers = method.optimisers(nets)
    request = method.loader_request()
    loader = make_loader(
        train_store, config.batch_size, workers=0, seed=config.seed, frames=(),
        extras=request.extras, drop_last=True,
    )  # fmt: skip
    generator = torch.Generator().manual_seed(config.seed)
    done, loss, epoch = 0, float("nan"), 0
    nets.train(True)
    while done < steps:
        loader.dataset.set_epoch(epoch)
        for batch in loader:
            loss = float(train_step(runtime, method, optimisers, batch, generator).loss)
            done += 1
            if done >= steps:
                break
        epoch += 1
    nets.train(False)
    return method, nets, loss


def scores(method, nets, test_store: Path) -> str:
    from train.eval.evaluate import evaluate_networks

    metric = evaluate_networks(method, nets, test_store, protocol="densedepth").metrics
    scaled = evaluate_networks(method, nets, test_store, protocol="densedepth", scaling="median")
    return (
        f"abs_rel {metric['abs_rel']:.3f}, rmse {metric['rmse']:.3f}, a1 {metric['a1']:.3f}, "
        f"mSSIM {metric['mssim']:.3f}, F1@0.25 {metric['f1@0.25']:.3f}; "
        f"median-scaled abs_rel {scaled.metrics['abs_rel']:.3f}"
    )


def bench_learning() -> None:
    root = Path(os.environ.get("BENCH_DD_DIR", "/tmp/depthkit_bench_densedepth"))
    steps = int(os.environ.get("BENCH_DD_STEPS", "75"))
    height, width = (int(v) for v in os.environ.get("BENCH_DD_SIZE", "64x96").split("x"))
    frames = int(os.environ.get("BENCH_DD_FRAMES", "24"))
    losses = os.environ.get("BENCH_DD_LOSSES", ",".join(LOSSES)).split(",")
    stores = prepared_stores(root, frames)
    base = apply_overrides(
        preset("densedepth-nyu"),
        {"pretrained": False, "height": height, "width": width, "batch_size": 2},
    )
    base = apply_overrides(base, {"workers": 0, "device": "cpu"})
    test = stores / "labeled_test.zarr"
    method = method_class(base.method)(base)
    print(f"learning, untrained: {scores(method, method.build_networks(), test)}", flush=True)
    for loss in losses:
        t = time.perf_counter()
        config = apply_overrides(base, {"loss": loss})
        method, nets, last = learn(config, stores / "labeled_train.zarr", steps)
        print(
            f"learning, loss={loss}: {steps} steps at {height}x{width}, batch 2, "
            f"{time.perf_counter() - t:.0f} s, last loss {last:.3f}; {scores(method, nets, test)}",
            flush=True,
        )


def main() -> None:
    bench_step_time(int(os.environ.get("BENCH_DD_REPS", "2")))
    bench_cuda()
    if os.environ.get("BENCH_DD_LEARN", "1") != "0":
        bench_learning()


if __name__ == "__main__":
    main()
