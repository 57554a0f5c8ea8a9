"""Feature-metric learning: (a) does FeatDepth's term help on textureless scenes, (b) its cost.

(a) The seed study's finding as a measurement, on two synthetic worlds with true depth:

* an indoor NYU world whose walls, floor and ceiling carry ``BENCH_FM_TEXTURE`` (default 0.05) of
  the usual texture contrast, furniture fully textured (``write_nyu_labeled(texture=...)``);
  raw-frame train store and the labeled test store (true depth) at ``BENCH_FM_NYU_SIZE``
  (default 96x128);
* the usual KITTI world (eigen_zhou train, eigen test) at ``BENCH_FM_KITTI_SIZE`` (96x320).

On each: train the auto-encoder (``featdepth-ae-nyu`` / ``featdepth-ae``, ResNet-18 FeatureNet from
random init, ``BENCH_FM_AE_STEPS`` = 200 steps, Adam 1e-4 constant, no warm-up: the run is shorter
than FeatDepth's 500-iteration warm-up), then ``monodepth2-nyu-m`` vs ``monodepth2-fm-nyu-m``
(``monodepth2-m`` vs ``monodepth2-fm-m``) from the same initial depth and pose weights (same seed;
the extractor is built last) for ``BENCH_FM_STEPS`` = 200 steps, batch 4, lr 1e-4 constant, on the
CPU. The only difference between the two runs is the feature-metric term (weight 1e-3, the frozen
stage-1 encoder as extractor). Scored with per-image median scaling against the true depth: NYU
protocol (Eigen crop, 1e-3..10 m) on the labeled test store; KITTI Garg crop (1e-3..80 m) on the
test drive. World, stores and runs live in ``BENCH_FM_DIR`` (default
``/tmp/depthkit_bench_featdepth``). Skip with ``BENCH_FM_LEARN=0``; ``BENCH_FM_WORLDS`` =
``nyu,kitti`` picks the worlds.

(b) CPU step time at batch 2, ``BENCH_FM_STEP_SIZE`` (default 192x640), random weights:
``monodepth2-fm-m`` over ``monodepth2-m`` (the cost of the feature term: the extractor's stem on
the target and both sources, one more warp; also with the whole extractor encoder run, as
FeatDepth does, though only its level 0 is used) and ``featdepth-m`` (ResNet-50 depth network
with FeatDepth's decoder and losses) over ``monodepth2-m``, measured alternately in one run.
On CUDA the same presets' samples/s with and without bf16 autocast and compile are rows of
``benchmarks/gpu.sh``.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import torch

from benchmarks.bench_densedepth import prepared_stores, time_interleaved
from benchmarks.bench_train import fake_batch, step_call, true_depth_abs_rel
from train.engine.config import TrainConfig, apply_overrides
from train.methods import Networks, preset

WORLDS = {
    # world: (auto-encoder preset, photometric preset, + feature-metric preset)
    "nyu": ("featdepth-ae-nyu", "monodepth2-nyu-m", "monodepth2-fm-nyu-m"),
    "kitti": ("featdepth-ae", "monodepth2-m", "monodepth2-fm-m"),
}
STEP_PRESETS = ("monodepth2-m", "monodepth2-fm-m", "featdepth-m")
WHOLE = "monodepth2-fm-m, whole encoder"  # the extractor as FeatDepth runs it: all 5 levels


def _size(name: str, default: str) -> tuple[int, int]:
    height, width = (int(v) for v in os.environ.get(name, default).split("x"))
    return height, width


# ------------------------------------------------------------------ (a) learning


def nyu_stores(root: Path, texture: float, size: tuple[int, int]) -> tuple[Path, Path]:
    """(raw train store, labeled test store with the world's true depth), cached."""
    frames = int(os.environ.get("BENCH_FM_NYU_FRAMES", "24"))
    stores = prepared_stores(root, frames, size, texture)
    return stores / "raw_train.zarr", stores / "labeled_test.zarr"


def kitti_stores(
    root: Path, size: tuple[int, int], *, frames: int | None = None, prev_frames: bool = False
) -> tuple[Path, Path, Path]:
    """(world, eigen_zhou train store, eigen test store), cached; ``frames`` per drive (default
    ``BENCH_FM_KITTI_FRAMES``, 12); ``prev_frames``: the test store holds each test frame's
    previous frame (``prepare-kitti --prev-frames``)."""
    from pipelines.prepare.kitti.prepare import KittiPrepareOptions, prepare_kitti
    from pipelines.synth import write_kitti

    suffix = "_prev" if prev_frames else ""
    world, out = root / "kitti_world", root / f"kitti_stores_{size[0]}x{size[1]}{suffix}"
    if not (world / "truth.npz").is_file():
        t = time.perf_counter()
        if frames is None:
            frames = int(os.environ.get("BENCH_FM_KITTI_FRAMES", "12"))
        write_kitti(world, frames=frames, seed=0)
        print(f"kitti world: {time.perf_counter() - t:.0f} s", flush=True)
    options = KittiPrepareOptions(size=size, gt="velodyne", progress=False, prev_frames=prev_frames)
    for split in ("eigen_zhou", "eigen"):
        prepare_kitti(world, world / "splits" / split, out, options)
    return world, out / "train.zarr", out / "test.zarr"


def run(config: TrainConfig, train_store: Path, out: Path) -> tuple[Path, float]:
    """Train ``config`` into ``out`` (afresh); (its last checkpoint, seconds)."""
    from train.engine.trainer import train

    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    train(config, train_store, out, progress=False, echo=lambda _: None)
    return out / "checkpoints" / "last.pt", time.perf_counter() - t


def score(world: str, checkpoint: Path, test: Path, kitti_world: Path | None) -> float:
    """Median-scaled abs_rel of a checkpoint against the world's true depth."""
    from train.eval.evaluate import evaluate_networks, load_checkpoint_method

    method, nets = load_checkpoint_method(checkpoint)
    if world == "kitti":
        assert kitti_world is not None
        return true_depth_abs_rel(kitti_world, test, method, nets)
    report = evaluate_networks(method, nets, test, protocol="nyu", scaling="median")
    return float(report.metrics["abs_rel"])


def bench_world(world: str, root: Path, ae_steps: int, steps: int) -> None:
    texture = float(os.environ.get("BENCH_FM_TEXTURE", "0.05"))
    if world == "nyu":
        size = _size("BENCH_FM_NYU_SIZE", "96x128")
        train_store, test = nyu_stores(root, texture, size)
        kitti_world, label = None, f"nyu (texture {texture:g})"
    else:
        size = _size("BENCH_FM_KITTI_SIZE", "96x320")
        kitti_world, train_store, test = kitti_stores(root, size)
        label = "kitti"
    common = {"pretrained": False, "height": size[0], "width": size[1], "batch_size": 4}
    common |= {"workers": 0, "device": "cpu", "log_every": 50, "keep_epochs": 1}
    common |= {"epochs": 10_000}
    ae_name, plain_name, fm_name = WORLDS[world]
    ae_config = apply_overrides(
        preset(ae_name),
        common | {"feature_layers": 18, "warmup_iters": 0, "lr_steps": (), "max_steps": ae_steps},
    )
    ae, seconds = run(ae_config, train_store, root / f"run_{world}_ae")
    print(f"{label}: auto-encoder {ae_steps} steps at {size[0]}x{size[1]}, {seconds:.0f} s",
          flush=True)  # fmt: skip
    depth = common | {"scheduler_step": 10_000, "max_steps": steps}
    results = {}
    for name, extra in ((plain_name, {}), (fm_name, {"feature_layers": 18, "extractor": str(ae)})):
        config = apply_overrides(preset(name), depth | extra)
        checkpoint, seconds = run(config, train_store, root / f"run_{world}_{name}")
        results[name] = score(world, checkpoint, test, kitti_world)
        print(f"{label}: {name} {steps} steps {seconds:.0f} s: median-scaled abs_rel "
              f"{results[name]:.3f}", flush=True)  # fmt: skip
    plain, fm = results[plain_name], results[fm_name]
    ratio = fm / plain
    print(f"{label}: + feature-metric / photometric only: {fm:.3f} / {plain:.3f} = {ratio:.3f}")


# ------------------------------------------------------------------ (b) step time


def _whole_extractor(nets: Networks) -> None:
    """Run the extractor's whole encoder, as FeatDepth does (depthkit stops at its stem)."""
    encoder = nets["extractor"].encoder
    nets["extractor"].forward = lambda image: _whole(encoder, image)


def bench_step_time(reps: int) -> None:
    height, width = _size("BENCH_FM_STEP_SIZE", "192x640")
    batch = fake_batch(2, height, width)
    steps = {}
    for name in (*STEP_PRESETS, WHOLE):
        config = apply_overrides(
            preset(name.split(",")[0]),
            {"pretrained": False, "batch_size": 2, "device": "cpu", "height": height,
             "width": width},
        )  # fmt: skip
        steps[name] = step_call(config, batch, _whole_extractor if name == WHOLE else None)
    median = time_interleaved(steps, reps)
    base = median["monodepth2-m"]
    print(
        f"step time CPU, batch 2, {height}x{width} ({torch.get_num_threads()} threads, median of "
        f"{reps}): " + ", ".join(f"{n} {s:.2f} s" for n, s in median.items())
    )
    print(
        f"ratios to monodepth2-m: monodepth2-fm-m {median['monodepth2-fm-m'] / base:.2f} "
        f"(with the whole extractor encoder, as FeatDepth: {median[WHOLE] / base:.2f}), "
        f"featdepth-m {median['featdepth-m'] / base:.2f}"
    )


def _whole(encoder: torch.nn.Module, image: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return encoder(image)[0]


def main() -> None:
    reps = int(os.environ.get("BENCH_FM_REPS", "3"))  # 0 skips (b)
    if reps > 0:
        bench_step_time(reps)
    if os.environ.get("BENCH_FM_LEARN", "1") == "0":
        return
    root = Path(os.environ.get("BENCH_FM_DIR", "/tmp/depthkit_bench_featdepth"))
    ae_steps = int(os.environ.get("BENCH_FM_AE_STEPS", "200"))
    steps = int(os.environ.get("BENCH_FM_STEPS", "200"))
    for world in os.environ.get("BENCH_FM_WORLDS", "nyu,kitti").split(","):
        bench_world(world, root, ae_steps, steps)


if __name__ == "__main__":
    main()
