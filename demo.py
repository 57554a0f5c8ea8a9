"""The end-to-end demo: synthesise worlds, prepare their stores, evaluate an untrained model,
train it, evaluate again.

It sits beside ``cli.py`` because it orchestrates every layer (``pipelines`` to make stores,
``train`` to use them), which no package below may do. :func:`run_demo` trains a random-init
``monodepth2-m`` at reduced resolution on the CPU, scored before and after a short run, with
metric tables and prediction PNGs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path

import torch

from train.engine.config import TrainConfig, apply_overrides
from train.engine.trainer import train
from train.eval.evaluate import EvalReport, evaluate_checkpoint, evaluate_networks
from train.methods import method_class, preset


@dataclass(frozen=True)
class DemoOptions:
    """Sizes of the demo (defaults fit in a few minutes on 2 CPU cores).

    ``frames`` per synthetic drive; stores are prepared at ``store_height x store_width``; the
    network trains at ``height x width`` for ``steps`` steps of ``batch_size`` at ``lr``, x0.1
    from epoch ``lr_step_epochs`` (the reference's step decay, compressed: training from random
    init on ~70 samples oscillates, the decay settles it). ``threads``: torch CPU threads (1
    makes the run bit-reproducible across machines; None = torch's default).
    """

    frames: int = 24
    store_height: int = 96
    store_width: int = 320
    height: int = 64
    width: int = 224
    steps: int = 300
    batch_size: int = 4
    lr: float = 1e-4
    lr_step_epochs: int = 13
    seed: int = 0
    threads: int | None = 1

    @classmethod
    def with_overrides(cls, **values: int | float | None) -> DemoOptions:
        """Defaults with the given non-None values replaced."""
        known = {f.name for f in fields(cls)}
        return replace(cls(), **{k: v for k, v in values.items() if v is not None and k in known})


@dataclass
class DemoResult:
    """Before/after reports and where the run and pictures are."""

    before: EvalReport
    after: EvalReport
    run_dir: str
    seconds: float

    @property
    def improvement(self) -> float:
        """Relative drop of abs_rel (0.5 = halved)."""
        return 1.0 - self.after.metrics["abs_rel"] / self.before.metrics["abs_rel"]


def demo_end_to_end(
    out: str | Path, options: DemoOptions = DemoOptions(), echo: Callable[[str], None] = print
) -> DemoResult:
    """``cli.py demo``: synthesise a KITTI-style and an NYU-style world, prepare their stores,
    then :func:`run_demo` on the KITTI stores."""
    from pipelines.prepare.kitti.prepare import KittiPrepareOptions, prepare_kitti
    from pipelines.prepare.nyu.prepare import NyuPrepareOptions, prepare_nyu
    from pipelines.synth import write_kitti, write_nyu_labeled

    out = Path(out)
    world, stores = out / "kitti_world", out / "kitti_stores"
    start = time.perf_counter()
    echo(f"[1/5] synthesising a KITTI-style world ({options.frames} frames x 3 drives)")
    write_kitti(world, frames=options.frames, seed=options.seed)
    echo(f"      {time.perf_counter() - start:.1f} s")
    echo("[2/5] prepare-kitti: eigen_zhou train/val and eigen test stores")
    t = time.perf_counter()
    size = (options.store_height, options.store_width)
    for split in ("eigen_zhou", "eigen"):
        prepare_kitti(
            world,
            world / "splits" / split,
            stores,
            KittiPrepareOptions(size=size, gt="velodyne", workers=1, progress=False),
        )
    echo(f"      {time.perf_counter() - t:.1f} s")
    echo("[3/5] NYU-style world (raw scenes + labeled .mat) and prepare-nyu")
    t = time.perf_counter()
    nyu = out / "nyu_world"
    write_nyu_labeled(nyu, frames=5, seed=options.seed)
    report = prepare_nyu(
        nyu / "raw",
        out / "nyu_stores",
        nyu / "nyu_depth_v2_labeled.mat",
        nyu / "splits.mat",
        NyuPrepareOptions(size=(96, 128), progress=False),
    )
    echo(str(report))
    echo(f"      {time.perf_counter() - t:.1f} s")
    return run_demo(stores, out, options, echo=echo, started=start)


def demo_config(options: DemoOptions) -> TrainConfig:
    """``monodepth2-m`` from random init at the demo's size, on the CPU, fp32."""
    return apply_overrides(
        preset("monodepth2-m"),
        {
            "pretrained": False,
            "height": options.height,
            "width": options.width,
            "batch_size": options.batch_size,
            "lr": options.lr,
            "scheduler_step": options.lr_step_epochs,
            "epochs": 10_000,
            "max_steps": options.steps,
            "workers": 0,
            "seed": options.seed,
            "device": "cpu",
            "log_every": 25,
            "val_batches": 4,
            "keep_epochs": 1,
        },
    )


def run_demo(
    stores: str | Path,
    out: str | Path,
    options: DemoOptions = DemoOptions(),
    echo: Callable[[str], None] = print,
    started: float | None = None,
) -> DemoResult:
    """Evaluate, train and evaluate again on ``stores/{train,val,test}.zarr``; write
    ``out/before/*.png``, ``out/after/*.png``, ``out/run/`` and ``out/demo.json``."""
    start = time.perf_counter() if started is None else started
    stores, out = Path(stores), Path(out)
    test = stores / "test.zarr"
    if options.threads:
        torch.set_num_threads(options.threads)
    config = demo_config(options)

    echo(f"[4/5] untrained monodepth2-m (random init, {config.height}x{config.width}) on {test}")
    t = time.perf_counter()
    method = method_class(config.method)(config)
    before = evaluate_networks(method, method.build_networks(), test, save_images=out / "before")
    echo(f"{before}\n      {time.perf_counter() - t:.1f} s")

    echo(f"[5/5] training {options.steps} steps, batch {options.batch_size}, lr {options.lr}")
    run_dir = out / "run"
    summary = train(config, stores / "train.zarr", run_dir, stores / "val.zarr", echo=echo)
    echo(str(summary))
    after = evaluate_checkpoint(
        run_dir / "checkpoints" / "last.pt",
        test,
        device="cpu",
        save_images=out / "after",
        json_path=out / "after.json",
    )
    echo(f"trained model:\n{after}")
    result = DemoResult(before, after, str(run_dir), time.perf_counter() - start)
    b, a = before.metrics["abs_rel"], after.metrics["abs_rel"]
    change = result.improvement
    word = f"{100 * change:.0f}% lower" if change >= 0 else f"{-100 * change:.0f}% higher"
    echo(
        f"abs_rel {b:.3f} -> {a:.3f} ({word}); "
        f"pictures in {out / 'before'} and {out / 'after'}; total {result.seconds:.0f} s"
    )
    (out / "demo.json").write_text(
        json.dumps(
            {
                "before": before.to_dict(),
                "after": after.to_dict(),
                "options": options.__dict__,
                "seconds": result.seconds,
            },
            indent=2,
        )
        + "\n"
    )
    return result
