"""The end-to-end demo: synthesise worlds, prepare their stores, evaluate an untrained model,
train it, evaluate again.

It sits beside ``cli.py`` because it orchestrates every layer (``pipelines`` to make stores,
``train`` to use them), which no package below may do. :func:`run_demo` trains a random-init
Monodepth2 on the stereo pairs with Depth Hints (``monodepth2-s`` + ``hints=true``) at reduced
resolution on the CPU, scored before and after a short run with the method's own protocol
(x5.4, the stereo factor), with metric tables, prediction PNGs and one side-by-side picture
per test frame (:mod:`train.eval.before_after`).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:  # the libraries are imported when the demo runs, not when the CLI starts
    from train.engine.config import TrainConfig
    from train.eval.evaluate import EvalReport


MIN_FRAMES = 4  # per synthetic drive: enough training samples for one batch of 4
DEMO_OUTPUTS = ("kitti_world", "kitti_stores", "nyu_world", "nyu_stores", "before", "after",
                "side_by_side", "run", "after.json", "demo.json")  # fmt: skip


@dataclass(frozen=True)
class DemoOptions:
    """Sizes of the demo (defaults fit in about 4 minutes of one CPU core; README, demo).

    ``frames`` per synthetic drive; stores are prepared at ``store_height x store_width``, with
    Depth Hints of train/val matched at ``hint_height x hint_width``; the network trains at
    ``height x width`` for ``steps`` steps of ``batch_size`` at ``lr``, x0.1 from epoch
    ``lr_step_epochs`` (the reference's step decay; the default 150 steps are about 9 epochs of
    the 70 training samples, so the rate stays constant unless ``steps`` is raised).
    ``threads``: torch CPU threads (1 makes the run bit-reproducible across machines; None =
    torch's default). Checked when made, before any work (ValueError naming the option).
    """

    frames: int = 24
    store_height: int = 96
    store_width: int = 320
    hint_height: int = 96
    hint_width: int = 320
    height: int = 64
    width: int = 224
    steps: int = 150
    batch_size: int = 4
    lr: float = 1e-4
    lr_step_epochs: int = 13
    seed: int = 0
    threads: int | None = 1

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"--steps must be at least 1 (got {self.steps})")
        if self.frames < MIN_FRAMES:
            raise ValueError(
                f"--frames {self.frames}: the demo's splits need at least {MIN_FRAMES} frames "
                "per drive"
            )
        for option, value in (("--height", self.height), ("--width", self.width)):
            if value % 32 or value < 64:
                raise ValueError(f"{option} {value}: must be a multiple of 32, at least 64")

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

    def headline(self) -> str:
        """``abs_rel A -> B (N% lower)`` (or ``higher``), the start of the demo's last line."""
        b, a = self.before.metrics["abs_rel"], self.after.metrics["abs_rel"]
        change = self.improvement
        word = f"{100 * change:.0f}% lower" if change >= 0 else f"{-100 * change:.0f}% higher"
        return f"abs_rel {b:.3f} -> {a:.3f} ({word})"


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
    echo(
        "[2/5] prepare-kitti: eigen_zhou train/val (with depth hints at "
        f"{options.hint_height}x{options.hint_width}) and eigen test stores"
    )
    t = time.perf_counter()
    size = (options.store_height, options.store_width)
    hint_size = (options.hint_height, options.hint_width)
    for split in ("eigen_zhou", "eigen"):
        how = {"gt": "velodyne", "hints": True, "hint_size": hint_size, "workers": 1}
        prepare_kitti(
            world, world / "splits" / split, stores,
            KittiPrepareOptions(size=size, progress=False, **how),
        )  # fmt: skip
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
    return run_demo(stores, out, options, echo=echo, started=start, truth=world / "truth.npz")


def demo_config(options: DemoOptions) -> TrainConfig:
    """``monodepth2-s`` with Depth Hints (``hints=true``) from random init at the demo's size,
    on the CPU, fp32 (why this recipe: README, demo)."""
    from train.engine.config import apply_overrides
    from train.methods import preset

    return apply_overrides(
        preset("monodepth2-s"),
        {
            "hints": True,
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
    truth: str | Path | None = None,
) -> DemoResult:
    """Evaluate, train and evaluate again on ``stores/{train,val,test}.zarr`` (train and val with
    ``hint_depth``); write ``out/before/*.png``, ``out/after/*.png``, ``out/side_by_side/*.png``
    (one per test frame: input, before, after, truth), ``out/run/`` and ``out/demo.json``.
    ``truth``: the world's ``truth.npz``, whose dense depth the side-by-side pictures show
    (without it, the test store's sparse ground truth)."""
    import torch

    from train.engine.trainer import train
    from train.eval import before_after as ba
    from train.eval.evaluate import evaluate_networks, load_checkpoint_method, write_json
    from train.methods import build_method

    start = time.perf_counter() if started is None else started
    stores, out = Path(stores), Path(out)
    test = stores / "test.zarr"
    if options.threads:
        torch.set_num_threads(options.threads)
    config = demo_config(options)

    echo(f"[4/5] untrained {config.preset} + depth hints (random init, {config.height}x"
         f"{config.width}) on {test}")  # fmt: skip
    t = time.perf_counter()
    method = build_method(config)
    nets = method.build_networks()
    before = evaluate_networks(method, nets, test, save_images=out / "before")
    echo(f"{before}\n      {time.perf_counter() - t:.1f} s")
    before_depths = ba.scaled_depths(method, nets, test, before)
    shape = {"before": ba.median_scaled_abs_rel(method, nets, test)}

    echo(f"[5/5] training {options.steps} steps, batch {options.batch_size}, lr {options.lr}")
    run_dir = out / "run"
    summary = train(config, stores / "train.zarr", run_dir, stores / "val.zarr", echo=echo)
    echo(str(summary))
    checkpoint = run_dir / "checkpoints" / "last.pt"
    trained, trained_nets = load_checkpoint_method(checkpoint)
    after = evaluate_networks(
        trained, trained_nets, test, save_images=out / "after", checkpoint=str(checkpoint)
    )
    write_json(after, out / "after.json")
    echo(f"trained model:\n{after}")
    shape["after"] = ba.median_scaled_abs_rel(trained, trained_nets, test)
    echo(f"shape only (per-image median scaling instead of the stereo factor): abs_rel "
         f"{shape['before']:.3f} -> {shape['after']:.3f}")  # fmt: skip
    after_depths = ba.scaled_depths(trained, trained_nets, test, after)
    folder = out / "side_by_side"
    written = ba.write_side_by_side(
        folder, test, before_depths, after_depths, (before, after), truth
    )
    result = DemoResult(before, after, str(run_dir), time.perf_counter() - start)
    echo(f"{result.headline()}; pictures in {out / 'before'}, {out / 'after'} and {folder} "
         f"({len(written)}); total {result.seconds:.0f} s")  # fmt: skip
    report = {"before": before.to_dict(), "after": after.to_dict()}
    report |= {"median_scaled_abs_rel": shape, "options": options.__dict__}
    report["seconds"] = result.seconds
    (out / "demo.json").write_text(json.dumps(report, indent=2) + "\n")
    return result


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse an ``out`` folder that holds a demo's outputs unless ``overwrite`` (which removes
    only those: :data:`DEMO_OUTPUTS`)."""
    found = [name for name in DEMO_OUTPUTS if (out / name).exists()]
    if not found:
        return
    if not overwrite:
        raise ValueError(
            f"{out} already holds a demo ({', '.join(found)}); pass --overwrite to replace it, "
            "or choose another --out"
        )
    for name in found:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def demo(
    out: Path = typer.Option(Path("demo_out"), "--out", help="Folder for worlds, stores, run."),
    steps: int = typer.Option(None, "--steps", help="Training steps (default: the demo's)."),
    frames: int = typer.Option(None, "--frames", help="Frames per synthetic drive."),
    height: int = typer.Option(None, "--height", help="Network input height."),
    width: int = typer.Option(None, "--width", help="Network input width."),
    seed: int = typer.Option(0, "--seed", help="Seed of the world and of the training."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace the outputs of an earlier demo in --out."
    ),
) -> None:
    """End to end on the CPU: synthetic KITTI and NYU worlds, prepare (with depth hints),
    evaluate, train, evaluate; side-by-side pictures of every test frame."""
    options = DemoOptions.with_overrides(
        steps=steps, frames=frames, height=height, width=width, seed=seed
    )
    check_out(out, overwrite)
    demo_end_to_end(out, options, echo=typer.echo)
