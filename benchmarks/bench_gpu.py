"""GPU figures in one table (``benchmarks/gpu.sh``, ``make bench-gpu``; under 8 minutes on one GPU).

Synthesises a small KITTI-style world and prepares its stores (and, per preset, a toy store of
the preset's dataset at its resolution), then measures:

* training samples/s of every registered method (:func:`train.methods.methods`, the first preset
  of each and FeatDepth's depth stage ``featdepth-m``, random weights; and ``monodepth2-fm-m``)
  with fp32, bf16 autocast, bf16 + ``torch.compile``, bf16 + channels_last, and the peak GPU
  memory of the bf16 run;
* the streaming loader's samples/s into the GPU (workers decode, the device augments);
* DeepLabv3 (mobilenet_v3_large, random weights) masks, images/s;
* predict and exported-model latency at 192x640, batch 1 and 12: eager, TorchScript,
  ONNX through onnxruntime's CUDA provider (when onnxruntime-gpu is installed), TensorRT fp16
  (when torch-tensorrt is installed).

Without CUDA it prints one line and exits 0. ``--cpu-smoke`` runs every measurement that needs
no GPU once, at tiny sizes (96x128, batch 2, one step, no compile) on the CPU: a test that the
benchmark itself works.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from pipelines.loader import Augment, make_loader
from pipelines.store.toystore import ToySpec, write_toy_store
from train.engine.config import TrainConfig, apply_overrides
from train.engine.runtime import build_runtime
from train.engine.step import complete_samples, train_step
from train.eval.predict import DepthModel
from train.methods import depth_presets, method_class, methods, presets

VARIANTS = {
    "fp32": {"amp": False, "compile": False, "channels_last": False},
    "bf16": {"amp": True, "compile": False, "channels_last": False},
    "bf16+compile": {"amp": True, "compile": True, "channels_last": False},
    "bf16+channels_last": {"amp": True, "compile": False, "channels_last": True},
}


@dataclass
class Settings:
    """Sizes of one benchmark run (GPU defaults; :meth:`smoke` for the CPU check)."""

    device: torch.device
    steps: int = 10
    warmup: int = 3
    size: tuple[int, int] | None = None  # None: each preset's own resolution
    batch: int | None = None  # None: each preset's own batch size
    latency_size: tuple[int, int] = (192, 640)
    latency_batches: tuple[int, ...] = (1, 12)
    latency_runs: int = 20
    loader_batches: int = 40
    mask_images: int = 64
    workers: int = min(8, os.cpu_count() or 1)
    frames: int = 8  # per synthetic drive
    variants: tuple[str, ...] = tuple(VARIANTS)

    @classmethod
    def smoke(cls) -> Settings:
        return cls(
            device=torch.device("cpu"),
            steps=1,
            warmup=0,
            size=(96, 128),  # FeatDepth's smallest input (feature levels of >= 3 px)
            batch=2,
            latency_size=(64, 96),
            latency_batches=(1,),
            latency_runs=1,
            loader_batches=2,
            mask_images=2,
            workers=0,
            variants=("fp32",),
        )


class Table:
    """Rows of (measurement, setting, value) printed as one aligned table."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str]] = []

    def add(self, what: str, setting: str, value: str) -> None:
        self.rows.append((what, setting, value))
        print(f"  {what} | {setting} | {value}", file=sys.stderr, flush=True)

    def __str__(self) -> str:
        rows = [("measurement", "setting", "value"), *self.rows]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


STUDY_PRESETS = ("monodepth2-fm-m",)  # the feature-metric study: Monodepth2 + FeatDepth's term


def first_presets() -> dict[str, str]:
    """The first preset of every registered method, the first depth-predicting one too where
    that is another (FeatDepth's depth stage after its auto-encoder), and :data:`STUDY_PRESETS`,
    keyed by a label (the method's name, ``method/depth`` or the preset's name)."""
    out: dict[str, str] = {}
    for name, config in presets().items():
        if config.method not in methods():
            continue
        out.setdefault(config.method, name)
        depth = depth_presets(config.method)
        if depth and out[config.method] not in depth:
            out.setdefault(f"{config.method}/depth", depth[0])
    return out | {name: name for name in STUDY_PRESETS if name in presets()}


def toy_store(root: Path, config: TrainConfig, batch: int) -> str:
    """A toy store of ``config``'s dataset at its resolution with enough complete samples."""
    path = root / f"toy_{config.dataset}_{config.height}x{config.width}.zarr"
    if not path.exists():
        frames = max(8, batch + 4)
        spec = ToySpec(
            dataset=config.dataset,
            n_sequences=1,
            frames_per_sequence=frames,
            image_size=(config.height, config.width),
            chunk=8,
            seg=True,  # every method's extras: SegDepth's masks, Depth Hints' hints
            hints=config.dataset == "kitti-raw",
        )
        write_toy_store(path, spec)
    return str(path)


def bench_training(table: Table, s: Settings, root: Path) -> None:
    for preset_name in first_presets().values():
        base = presets()[preset_name]
        changes: dict[str, object] = {"pretrained": False, "device": str(s.device), "workers": 0}
        if s.size is not None:
            changes |= {"height": s.size[0], "width": s.size[1]}
        if s.batch is not None:
            changes["batch_size"] = s.batch
        base = apply_overrides(base, changes)
        label = f"train {preset_name} {base.height}x{base.width} b{base.batch_size}"
        store = toy_store(root, base, base.batch_size)
        for variant in s.variants:
            if s.device.type != "cuda" and VARIANTS[variant]["compile"]:
                table.add(label, variant, "n/a (compile measured on CUDA only)")
                continue
            try:
                rate, peak, first = train_rate(apply_overrides(base, VARIANTS[variant]), store, s)
            except Exception as e:  # noqa: BLE001 - one failing variant must not end the table
                table.add(label, variant, f"failed: {type(e).__name__}: {str(e)[:80]}")
                continue
            value = f"{rate:.1f} samples/s"
            if variant == "bf16+compile":
                value += f" (first step {first:.0f} s)"
            table.add(label, variant, value)
            if variant == "bf16" and peak is not None:
                table.add(label, "peak GPU memory (bf16)", f"{peak / 2**30:.2f} GiB")


def train_rate(config: TrainConfig, store: str, s: Settings) -> tuple[float, int | None, float]:
    """(samples/s, peak memory in bytes or None, seconds of the first step)."""
    method = method_class(config.method)(config)
    nets = method.build_networks(s.device)
    optimisers = method.optimisers(nets)
    runtime = build_runtime(config, method, nets, s.device)
    request = method.loader_request()
    loader = make_loader(
        store,
        config.batch_size,
        workers=0,
        shuffle=False,
        frames=request.frames,
        extras=request.extras,
    )
    batch = complete_samples(next(iter(loader)), request)  # host batch, as the trainer feeds it
    generator = torch.Generator().manual_seed(0)
    noise = torch.Generator(s.device).manual_seed(0)
    if s.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(s.device)
    first = 0.0
    if config.compile:  # the first step compiles: timed on its own
        start = time.perf_counter()
        train_step(runtime, method, optimisers, batch, generator, noise)
        _sync(s.device)
        first = time.perf_counter() - start
    for _ in range(s.warmup):
        train_step(runtime, method, optimisers, batch, generator, noise)
    _sync(s.device)
    samples, start = 0, time.perf_counter()
    for _ in range(s.steps):
        result = train_step(runtime, method, optimisers, batch, generator, noise)
        samples += 0 if result is None else result.samples
    _sync(s.device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(s.device) if s.device.type == "cuda" else None
    return samples / max(seconds, 1e-9), peak, first


def world_store(root: Path, s: Settings) -> str:
    """A synthetic KITTI world prepared at 192x640 (the GPU run); a toy store for the smoke."""
    if s.device.type != "cuda":
        config = apply_overrides(presets()["monodepth2-m"], {"height": 64, "width": 96})
        return toy_store(root, config, 4)
    from pipelines.prepare.kitti.prepare import KittiPrepareOptions, prepare_kitti
    from pipelines.synth import write_kitti

    world = root / "kitti_world"
    write_kitti(world, frames=s.frames, seed=0, truth=False)
    options = KittiPrepareOptions(size=(192, 640), workers=s.workers or None, progress=False)
    prepare_kitti(world, world / "splits" / "eigen_zhou", root / "stores", options)
    return str(root / "stores" / "train.zarr")


def bench_loader(table: Table, s: Settings, store: str) -> None:
    base = presets()["monodepth2-ms"]
    batch = s.batch or base.batch_size
    size = s.size or (base.height, base.width)
    config = apply_overrides(base, {"pretrained": False, "height": size[0], "width": size[1]})
    augment = Augment(method_class(config.method)(config).augment_config())
    loader = make_loader(store, batch, workers=s.workers, frames=("prev", "next", "stereo"))
    generator = torch.Generator().manual_seed(0)
    samples, epoch, start = 0, 0, None
    seen = 0
    while seen < s.loader_batches + 2:
        loader.dataset.set_epoch(epoch)
        for b in loader:
            draw = augment.draw(b, generator, train=True)  # on the host, as the trainer does
            b = b.to(s.device, non_blocking=True)
            augment(b, draw=draw.to(s.device))
            seen += 1
            if seen == 2:  # the workers have started
                _sync(s.device)
                start, samples = time.perf_counter(), 0
            elif seen > 2:
                samples += len(b)
            if seen >= s.loader_batches + 2:
                break
        epoch += 1
    _sync(s.device)
    seconds = time.perf_counter() - (start or time.perf_counter())
    table.add(
        "loader into the device (mono+stereo)",
        f"{size[0]}x{size[1]} b{batch}, {s.workers} workers",
        f"{samples / max(seconds, 1e-9):.1f} samples/s",
    )


def bench_masks(table: Table, s: Settings) -> None:
    import numpy as np

    from pipelines.passes.masks import build_segmenter, segment

    h, w = s.size or (192, 640)
    model = build_segmenter("mobilenet_v3_large", weights=None, device=s.device)
    images = np.random.default_rng(0).integers(0, 255, (s.mask_images, h, w, 3), dtype=np.uint8)
    segment(model, images[: min(4, len(images))], batch_size=4)  # warm-up
    _sync(s.device)
    start = time.perf_counter()
    segment(model, images, batch_size=16)
    _sync(s.device)
    rate = len(images) / max(time.perf_counter() - start, 1e-9)
    table.add("DeepLabv3 masks (mobilenet_v3_large)", f"{h}x{w} b16", f"{rate:.1f} images/s")


def bench_latency(table: Table, s: Settings, root: Path) -> None:
    h, w = s.latency_size
    config = apply_overrides(
        presets()["monodepth2-m"], {"pretrained": False, "height": h, "width": w}
    )
    method = method_class(config.method)(config)
    model = DepthModel(method.predictor(method.build_networks(s.device))).eval()
    runners: dict[str, Callable[[int], Callable[[], object] | str]] = {
        "predict (eager fp32)": lambda b: _eager(model, b, s, torch.float32),
        "TorchScript": lambda b: _torchscript(model, b, s, root),
        "ONNX (onnxruntime CUDA)" if s.device.type == "cuda" else "ONNX (onnxruntime CPU)": (
            lambda b: _onnx(model, b, s, root)
        ),
        "TensorRT fp16": lambda b: _tensorrt(model, b, s),
    }
    if s.device.type == "cuda":
        runners["predict (eager bf16 autocast)"] = lambda b: _eager(model, b, s, torch.bfloat16)
    for name, make in runners.items():
        for batch in s.latency_batches:
            try:
                run = make(batch)
            except Exception as e:  # noqa: BLE001 - report, keep going
                run = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:80]}"
            if isinstance(run, str):
                table.add(f"latency {name}", f"{h}x{w} b{batch}", run)
                continue
            if s.latency_runs > 1:
                run()  # warm-up
            _sync(s.device)
            times = []
            for _ in range(s.latency_runs):
                start = time.perf_counter()
                run()
                _sync(s.device)
                times.append(time.perf_counter() - start)
            times.sort()
            ms = 1000 * times[len(times) // 2]
            table.add(f"latency {name}", f"{h}x{w} b{batch}", f"{ms:.2f} ms (median)")


def _input(batch: int, s: Settings) -> torch.Tensor:
    return torch.rand(batch, 3, *s.latency_size, generator=torch.Generator().manual_seed(0)).to(
        s.device
    )


def _eager(model: DepthModel, batch: int, s: Settings, dtype: torch.dtype):
    x = _input(batch, s)

    def run() -> object:
        with (
            torch.inference_mode(),
            torch.autocast(s.device.type, dtype=torch.bfloat16, enabled=dtype == torch.bfloat16),
        ):
            return model(x)

    return run


def _torchscript(model: DepthModel, batch: int, s: Settings, root: Path):
    from train.eval.export import export_model

    path = root / "bench.ts"
    if not path.exists():
        export_model(model, path, "torchscript", s.latency_size, device=s.device)
    loaded = torch.jit.load(str(path), map_location=s.device)
    x = _input(batch, s)

    def run() -> object:
        with torch.inference_mode():
            return loaded(x)

    return run


def _onnx(model: DepthModel, batch: int, s: Settings, root: Path):
    import importlib.util

    if importlib.util.find_spec("onnxruntime") is None:
        return "n/a (onnxruntime not installed)"
    import onnxruntime

    provider = "CUDAExecutionProvider" if s.device.type == "cuda" else "CPUExecutionProvider"
    if provider not in onnxruntime.get_available_providers():
        return f"n/a ({provider} not available: pip install onnxruntime-gpu)"
    from train.eval.export import export_model

    path = root / "bench.onnx"
    if not path.exists():
        export_model(model.cpu(), path, "onnx", s.latency_size)
        model.to(s.device)
    session = onnxruntime.InferenceSession(str(path), providers=[provider])
    x = _input(batch, s).cpu().numpy()
    return lambda: session.run(None, {"image": x})


def _tensorrt(model: DepthModel, batch: int, s: Settings):
    import importlib.util

    if s.device.type != "cuda":
        return "n/a (needs CUDA)"
    if importlib.util.find_spec("torch_tensorrt") is None:
        return "n/a (torch-tensorrt not installed)"
    import torch_tensorrt

    x = _input(batch, s)
    compiled = torch_tensorrt.compile(
        model,
        ir="dynamo",
        inputs=[torch_tensorrt.Input(tuple(x.shape), dtype=torch.float32)],
        enabled_precisions={torch.float16},
    )

    def run() -> object:
        with torch.inference_mode():
            return compiled(x)

    return run


def main(argv: list[str] | tuple[str, ...] = ()) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/gpu.sh", description=__doc__.split("\n")[0])
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny CPU run of every part")
    args = parser.parse_args(list(argv))
    if not args.cpu_smoke and not torch.cuda.is_available():
        print("bench_gpu: no CUDA device on this machine; nothing measured (--cpu-smoke to test)")
        return 0
    s = Settings.smoke() if args.cpu_smoke else Settings(device=torch.device("cuda"))
    if s.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    start = time.perf_counter()
    table = Table()
    with tempfile.TemporaryDirectory(prefix="depthkit_bench_gpu_") as tmp:
        root = Path(tmp)
        store = world_store(root, s)
        bench_training(table, s, root)
        bench_loader(table, s, store)
        bench_masks(table, s)
        bench_latency(table, s, root)
    name = torch.cuda.get_device_name(s.device) if s.device.type == "cuda" else "CPU smoke"
    print(f"depthkit GPU benchmark on {name} ({time.perf_counter() - start:.0f} s)")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
