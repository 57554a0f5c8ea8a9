"""depthkit command line: prepare NYU Depth V2 / KITTI stores, train and evaluate depth models.

Every command parses options, calls one library function and prints. Bad input ends with one
clear ``error: ...`` line and a non-zero exit; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path

import typer

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
    from pipelines.inspect import info_report

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
    from pipelines.masks import compute_masks

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


@app.command("prepare-kitti")
def prepare_kitti(
    kitti_root: Path = typer.Argument(..., help="KITTI raw root (holds the date folders)."),
    split_dir: Path = typer.Argument(
        ..., help="monodepth2 split folder: train_files.txt, val_files.txt and/or test_files.txt."
    ),
    out_dir: Path = typer.Argument(..., help="Output folder: train.zarr, val.zarr, test.zarr."),
    size: str = typer.Option(
        "192x640",
        "--size",
        help="Stored image size HxW (cv2.INTER_AREA shrinking, INTER_CUBIC enlarging).",
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
    seg_arch: SegArch = typer.Option(SegArch.mobilenet_v3_large, "--seg-arch", help="Backbone."),
    seg_weights: Path = typer.Option(None, "--seg-weights", help="DeepLabv3 weights file."),
    skip_missing: bool = typer.Option(
        False, "--skip-missing", help="Drop split lines whose files are missing (listed)."
    ),
    workers: int = typer.Option(None, "--workers", help="Local threads (default: all cores)."),
    scheduler: str = typer.Option(
        None, "--scheduler", help="dask.distributed scheduler address (tcp://host:8786)."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace stores made with other arguments (from scratch)."
    ),
    chunk: int = typer.Option(16, "--chunk", help="Frames per chunk."),
) -> None:
    """KITTI raw + split files -> schema v1 stores (resumable: re-run the same command)."""
    from pipelines.kitti_prepare import KittiPrepareOptions, prepare_kitti
    from pipelines.runner import parse_size

    options = KittiPrepareOptions(
        size=parse_size(size),
        gt=gt.value,
        masks=masks.value,
        seg_arch=seg_arch.value,
        seg_weights=None if seg_weights is None else str(seg_weights),
        skip_missing=skip_missing,
        workers=workers,
        scheduler=scheduler,
        overwrite=overwrite,
        chunk=chunk,
    )
    typer.echo(str(prepare_kitti(kitti_root, split_dir, out_dir, options)))


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
