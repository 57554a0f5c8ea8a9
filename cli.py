"""depthkit command line: prepare NYU Depth V2 / KITTI stores, train and evaluate depth models.

Every command parses options, calls one library function and prints. Bad input ends with one
clear ``error: ...`` line and a non-zero exit; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path

import typer

from cli_demo import register_demo_command
from cli_models import register_model_commands

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="NYU Depth V2 and KITTI into zarr stores; self-supervised and supervised depth training.",
)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    """depthkit: monocular depth research toolkit."""


# --------------------------------------------------------------------------- synthetic worlds
class SynthKind(str, Enum):
    nyu_raw = "nyu-raw"
    nyu_labeled = "nyu-labeled"
    kitti = "kitti"


@app.command()
def synth(
    kind: SynthKind = typer.Argument(..., help="Which world: nyu-raw, nyu-labeled or kitti."),
    out: Path = typer.Argument(..., help="Output folder (created)."),
    frames: int = typer.Option(None, "--frames", "-n", help="Frames per scene / drive."),
    seed: int = typer.Option(0, "--seed", help="Random seed: same seed, same files."),
    corrupt: bool = typer.Option(
        False, "--corrupt", help="nyu-raw: also write truncated / wrong-size files."
    ),
    truth: bool = typer.Option(
        True, "--truth/--no-truth", help="Save true depth and poses as truth.npz."
    ),
) -> None:
    """Write a small synthetic dataset in the real raw file formats, with known ground truth."""
    from pipelines.synth import write_world

    summary = write_world(kind.value, out, frames=frames, seed=seed, corrupt=corrupt, truth=truth)
    typer.echo(summary)


# ------------------------------------------------------------------------------- stores
@app.command()
def info(
    store: str = typer.Argument(..., help="Store path or fsspec URL."),
    verify: bool = typer.Option(False, "--verify", help="Check shapes, samples and values."),
) -> None:
    """Describe a store: dataset, split, sizes, sequences, samples, completeness, provenance."""
    from pipelines.store.inspect import info_report

    text, problems = info_report(store, verify)
    typer.echo(text)
    if problems:
        raise typer.Exit(1)


class SegArch(str, Enum):
    mobilenet_v3_large = "mobilenet_v3_large"
    resnet50 = "resnet50"
    resnet101 = "resnet101"


@app.command()
def masks(
    store: str = typer.Argument(..., help="Store path or fsspec URL (complete)."),
    arch: SegArch = typer.Option(SegArch.mobilenet_v3_large, "--arch", help="Backbone."),
    seg_weights: Path = typer.Option(
        None,
        "--seg-weights",
        help="Weights file (default: COCO-with-VOC-labels weights from the torch hub cache).",
    ),
    batch_size: int = typer.Option(16, "--batch-size", help="Images per forward pass."),
    device: str = typer.Option(None, "--device", help="cuda, cuda:1 or cpu (default: cuda)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Recompute every chunk."),
) -> None:
    """Fill the store's seg array with DeepLabv3 VOC class indices (resumable)."""
    from pipelines.passes.masks import compute_masks

    weights = "default" if seg_weights is None else seg_weights
    report = compute_masks(
        store, arch.value, weights, batch_size=batch_size, device=device, overwrite=overwrite
    )
    typer.echo(str(report))


# ------------------------------------------------------------------------------- prepare-kitti
class KittiGT(str, Enum):
    auto = "auto"
    velodyne = "velodyne"
    improved = "improved"


class MaskKind(str, Enum):
    none = "none"
    deeplabv3 = "deeplabv3"


ImageExt = Enum("ImageExt", {v: v for v in ("auto", "png", "jpg")}, type=str)
Resize = Enum("Resize", {v: v for v in ("area", "lanczos")}, type=str)


# Options both prepare commands share.
SEG_ARCH_OPTION = typer.Option(SegArch.mobilenet_v3_large, "--seg-arch", help="Backbone.")
SEG_WEIGHTS_OPTION = typer.Option(None, "--seg-weights", help="DeepLabv3 weights file.")
WORKERS_OPTION = typer.Option(None, "--workers", help="Local threads (default: all cores).")
SCHEDULER_OPTION = typer.Option(
    None, "--scheduler", help="dask.distributed scheduler address (tcp://host:8786)."
)
STORE_OVERWRITE_OPTION = typer.Option(
    False, "--overwrite", help="Replace stores made with other arguments (from scratch)."
)
CHUNK_OPTION = typer.Option(16, "--chunk", help="Frames per chunk.")
HINT_SIZE_OPTION = typer.Option("320x1024", "--hint-size", help="HxW the raw pairs are matched at.")


@app.command()
def hints(
    store: str = typer.Argument(..., help="Two-view KITTI store (complete), e.g. train.zarr."),
    kitti_root: Path = typer.Option(..., "--kitti-root", help="KITTI raw root of the store."),
    hint_size: str = HINT_SIZE_OPTION,
    workers: int = WORKERS_OPTION,
    scheduler: str = SCHEDULER_OPTION,
    overwrite: bool = typer.Option(False, "--overwrite", help="Recompute every chunk."),
) -> None:
    """Fill hint_depth with Depth Hints' fused-SGM hints of the raw pairs (resumable)."""
    from pipelines.passes.hints_pass import compute_hints

    how = {"hint_size": hint_size, "workers": workers, "scheduler": scheduler}
    typer.echo(str(compute_hints(store, kitti_root, overwrite=overwrite, **how)))


@app.command("prepare-kitti")
def prepare_kitti_command(
    kitti_root: Path = typer.Argument(..., help="KITTI raw root (holds the date folders)."),
    split_dir: Path = typer.Argument(
        ..., help="monodepth2 split folder: train_files.txt, val_files.txt and/or test_files.txt."
    ),
    out_dir: Path = typer.Argument(..., help="Output folder: train.zarr, val.zarr, test.zarr."),
    size: str = typer.Option("192x640", "--size", help="Stored image size HxW."),
    resize: Resize = typer.Option(
        "area", "--resize", help="area: cv2.INTER_AREA; lanczos: PIL LANCZOS, monodepth2's bytes."
    ),
    image_ext: ImageExt = typer.Option(
        "auto", "--image-ext", help="Colour images: auto (per frame .png, else .jpg), png, jpg."
    ),
    gt: KittiGT = typer.Option(
        KittiGT.auto,
        "--gt",
        help="Test ground truth: velodyne (eigen, vel_depth=True), improved (eigen_benchmark "
        "annotated PNGs) or auto (improved when every test line has its PNG).",
    ),
    masks: MaskKind = typer.Option(
        MaskKind.none,
        "--masks",
        help="deeplabv3: fill seg of train/val stores afterwards (needs the DeepLabv3 weights "
        "in the torch hub cache or --seg-weights; checked before converting). Default none: "
        "seg stays 255 (run `masks` later).",
    ),
    seg_arch: SegArch = SEG_ARCH_OPTION,
    seg_weights: Path = SEG_WEIGHTS_OPTION,
    hints_: bool = typer.Option(False, "--hints", help="Also fill hint_depth of train/val."),
    hint_size: str = HINT_SIZE_OPTION,
    skip_missing: bool = typer.Option(
        False, "--skip-missing", help="Drop split lines whose files are missing (listed)."
    ),
    prev_frames: bool = typer.Option(False, "--prev-frames", help="Test store: + previous frames."),
    workers: int = WORKERS_OPTION,
    scheduler: str = SCHEDULER_OPTION,
    overwrite: bool = STORE_OVERWRITE_OPTION,
    chunk: int = CHUNK_OPTION,
) -> None:
    """KITTI raw + split files -> schema v1 stores (resumable: re-run the same command)."""
    from pipelines.prepare.kitti.prepare import KittiPrepareOptions, prepare_kitti
    from pipelines.store.runner import parse_size

    options = KittiPrepareOptions(
        size=parse_size(size),
        gt=gt.value,
        image_ext=image_ext.value,
        resize=resize.value,
        masks=masks.value,
        seg_arch=seg_arch.value,
        seg_weights=None if seg_weights is None else str(seg_weights),
        hints=hints_,
        hint_size=parse_size(hint_size),
        skip_missing=skip_missing,
        prev_frames=prev_frames,
        workers=workers,
        scheduler=scheduler,
        overwrite=overwrite,
        chunk=chunk,
    )
    typer.echo(str(prepare_kitti(kitti_root, split_dir, out_dir, options)))


# ------------------------------------------------------------------------------- train / eval
@app.command()
def train(
    preset: str = typer.Option(
        None, "--preset", help="A preset listed above (optional with --resume)."
    ),
    train_store: str = typer.Option(..., "--train", help="Training store (train.zarr)."),
    val_store: str = typer.Option(None, "--val", help="Validation store, checked every epoch."),
    out: Path = typer.Option(..., "--out", help="Run folder: checkpoints, logs, config.json."),
    set_: list[str] = typer.Option(
        [], "--set", help="Override any config field: --set key=value (repeatable)."
    ),
    epochs: int = typer.Option(None, "--epochs", help="Epochs."),
    max_steps: int = typer.Option(None, "--max-steps", help="Stop after this many steps."),
    batch_size: int = typer.Option(
        None,
        "--batch-size",
        help="Samples per step and process: under torchrun the global batch is this times the "
        "number of processes.",
    ),
    height: int = typer.Option(None, "--height", help="Network input height (multiple of 32)."),
    width: int = typer.Option(None, "--width", help="Network input width (multiple of 32)."),
    lr: float = typer.Option(None, "--lr", help="Learning rate."),
    workers: int = typer.Option(None, "--workers", help="Loader worker processes."),
    pretrained: bool = typer.Option(
        None, "--pretrained/--no-pretrained", help="ImageNet encoders (local torch cache)."
    ),
    device: str = typer.Option(None, "--device", help="cuda, cuda:1 or cpu (default: cuda)."),
    amp: bool = typer.Option(None, "--amp/--no-amp", help="bf16 autocast where supported."),
    compile_: bool = typer.Option(None, "--compile/--no-compile", help="torch.compile."),
    exact: bool = typer.Option(
        None, "--exact", help="float32 (no bf16/TF32), no compile; checks the store's recipe."
    ),
    sync_bn: bool = typer.Option(
        None, "--sync-bn/--no-sync-bn", help="SyncBatchNorm across torchrun processes (CUDA)."
    ),
    keep_epochs: int = typer.Option(
        None, "--keep-epochs", help="Weights-only epoch_NNN.pt files kept (newest; 0 = all)."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue OUT/checkpoints/last.pt."),
    init: Path = typer.Option(
        None, "--init", help="Start from this checkpoint's network weights (fresh optimiser)."
    ),
    stages: str = typer.Option(
        None, "--stages", help="autoencoder, depth or all (OUT/autoencoder then OUT/depth)."
    ),
) -> None:
    """Train a method from stores; resumable with --resume.

    \b
    Methods: monodepth2 (self-supervised, mono / stereo / both; optional feature-metric
    term), featdepth (stage autoencoder, then stage depth with the frozen stage-1 encoder),
    segdepth (+ a U-Net on disp), densedepth (supervised), manydepth (+ frame -1 at test).
    Presets:
      monodepth2-m      monodepth2, KITTI eigen_zhou, frames 0 -1 +1, 192x640
      monodepth2-s      monodepth2, KITTI eigen_full, frames 0 s (stereo), 192x640
      monodepth2-ms     monodepth2, KITTI eigen_zhou, frames 0 -1 +1 s, 192x640
      monodepth2-nyu-m  monodepth2, NYU raw, frames 0 -1 +1, 288x384, store intrinsics
      segdepth-m, segdepth-nyu-m   segdepth, as monodepth2-m / -nyu-m (seg from `masks`)
      depthhints-s, depthhints-ms  as monodepth2-s / -ms + hints, lr step 5 (from `hints`)
      densedepth-nyu    densedepth, NYU labeled (in-painted gt_depth), 480x640, batch 8
      densedepth-nyu-raw  densedepth, NYU raw prepared with --fill, 480x640, batch 8
      (densedepth: --set loss=densedepth|berhu|silog|l1, channel_swap_prob=0.25, input_pool=1)
      featdepth-ae, featdepth-ae-nyu  featdepth autoencoder: KITTI 256x800, NYU raw 192x480
      featdepth-m, featdepth-ms  featdepth depth stage, KITTI, 320x1024 (-ms: + stereo, x36)
      monodepth2-fm-m, monodepth2-fm-s, monodepth2-fm-nyu-m (NYU raw, 192x480): Monodepth2
        + the feature-metric term; these and featdepth-m/-ms need --set extractor=AE/last.pt
      manydepth-m, manydepth-hr-m  manydepth, KITTI, 192x640 / 320x1024 (--prev-frames test)

    --batch-size is per process: under torchrun the global batch is it times the number of
    processes (the header printed at the start says both, and which of the reference's choices
    the run departs from). --set key=value reaches any config field, method fields too
    (--set disparity_smoothness=1e-2 or --set params.disparity_smoothness=1e-2).
    """
    from train.engine.trainer import run_config
    from train.engine.trainer import train as run_training

    flags = {
        "epochs": epochs,
        "max_steps": max_steps,
        "batch_size": batch_size,
        "height": height,
        "width": width,
        "lr": lr,
        "workers": workers,
        "pretrained": pretrained,
        "device": device,
        "amp": amp,
        "compile": compile_,
        "exact": exact,
        "sync_bn": sync_bn,
        "keep_epochs": keep_epochs,
    }
    overrides = [*set_, *(f"{k}={v}" for k, v in flags.items() if v is not None)]
    if stages is None:
        config = run_config(preset, overrides, out, resume)
        run = run_training(config, train_store, out, val_store, resume=resume, init=init)
        typer.echo(str(run))
        return
    from train.engine.stages import ALL, train_stages

    if stages == ALL and preset is None:
        raise ValueError("--stages all needs --preset (also with --resume)")
    config = run_config(preset, overrides, out, resume)
    runs = train_stages(config, stages, train_store, out, val_store, resume=resume, init=init)
    for run in runs:
        typer.echo(str(run))


# ------------------------------------------------------------------------------- prepare-nyu
@app.command("prepare-nyu")
def prepare_nyu(
    raw_root: Path = typer.Argument(..., help="NYU raw root: scene folders and/or .zip files."),
    out_dir: Path = typer.Argument(
        ..., help="Output folder: raw_train.zarr, raw_val.zarr, labeled_train/test.zarr."
    ),
    labeled: Path = typer.Option(
        None, "--labeled", help="nyu_depth_v2_labeled.mat: labeled stores, test scenes excluded."
    ),
    splits: Path = typer.Option(None, "--splits", help="splits.mat (with --labeled)."),
    glob: str = typer.Option(None, "--glob", help="Only scenes whose name matches, e.g. 'bed*'."),
    size: str = typer.Option(
        "288x384",
        "--size",
        help="Raw store image size HxW (image INTER_AREA, depth nearest neighbour).",
    ),
    stride: int = typer.Option(1, "--stride", help="Keep every K-th synced frame of a scene."),
    neighbour_gap: int = typer.Option(
        1,
        "--neighbour-gap",
        help="Sample neighbours at -/+ G kept frames (G*stride synced frames); samples need both.",
    ),
    fill: bool = typer.Option(
        False, "--fill/--no-fill", help="Store colorization in-painted depth (~0.6 s/frame)."
    ),
    val_fraction: float = typer.Option(
        0.0, "--val-fraction", help="Fraction of raw scenes for raw_val.zarr (by name hash)."
    ),
    include_test_scenes: bool = typer.Option(
        False, "--include-test-scenes", help="Keep raw scenes that hold labeled test images."
    ),
    masks: MaskKind = typer.Option(
        MaskKind.none,
        "--masks",
        help="deeplabv3: fill seg of the raw stores afterwards (needs the DeepLabv3 weights in "
        "the torch hub cache or --seg-weights; checked before converting). Default none: seg "
        "stays 255 (run `masks` later).",
    ),
    seg_arch: SegArch = SEG_ARCH_OPTION,
    seg_weights: Path = SEG_WEIGHTS_OPTION,
    workers: int = WORKERS_OPTION,
    scheduler: str = SCHEDULER_OPTION,
    overwrite: bool = STORE_OVERWRITE_OPTION,
    chunk: int = CHUNK_OPTION,
) -> None:
    """NYU Depth V2 raw scenes (+ labeled .mat) -> schema v1 stores (resumable: re-run it)."""
    from pipelines.prepare.nyu.prepare import NyuPrepareOptions, prepare_nyu
    from pipelines.store.runner import parse_size

    options = NyuPrepareOptions(
        size=parse_size(size),
        stride=stride,
        neighbour_gap=neighbour_gap,
        fill=fill,
        val_fraction=val_fraction,
        include_test_scenes=include_test_scenes,
        glob=glob,
        masks=masks.value,
        seg_arch=seg_arch.value,
        seg_weights=None if seg_weights is None else str(seg_weights),
        workers=workers,
        scheduler=scheduler,
        overwrite=overwrite,
        chunk=chunk,
    )
    typer.echo(str(prepare_nyu(raw_root, out_dir, labeled, splits, options)))


# ----------------------------------------------------- predict, export, import, compare
register_model_commands(app)
register_demo_command(app)


# ------------------------------------------------------------------------------- entry point
def main(argv: list[str] | None = None) -> None:
    """Run the CLI; turn exceptions from bad input into one ``error:`` line and exit code 1.

    Usage errors are Typer's own (exit code 2). ``--debug`` may appear anywhere.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    try:
        typer.main.get_command(app).main(args=args, prog_name="depthkit", standalone_mode=True)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 - the whole point is one clean line
        if debug:
            raise
        name = "" if isinstance(e, (ValueError, OSError, KeyError)) else f"{type(e).__name__}: "
        typer.echo(f"error: {name}{e}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
