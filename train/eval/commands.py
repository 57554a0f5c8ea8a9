"""The model commands: ``eval``, ``compare``, ``predict``, ``export`` and the ``import`` group.

``cli.py`` adds them to its app. Each parses options, calls one library function of
:mod:`train.eval` and prints.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer


class Scaling(str, Enum):
    auto = "auto"
    median = "median"
    stereo = "stereo"


def eval_(
    checkpoint: Path = typer.Argument(..., help="Checkpoint (.pt) written by `train`."),
    store: str = typer.Argument(..., help="Test store with ground truth (test.zarr)."),
    post_process: bool = typer.Option(False, "--post-process", help="Flip post-processing."),
    json_path: Path = typer.Option(None, "--json", help="Write the metrics as JSON here."),
    save_images: Path = typer.Option(
        None, "--save-images", help="Folder for PNGs: image / prediction / ground truth."
    ),
    scaling: Scaling = typer.Option(
        Scaling.auto,
        "--scaling",
        help="auto: the model's own rule (Monodepth2: x5.4 when trained with stereo, "
        "per-image median otherwise); median or stereo (x5.4) force one.",
    ),
    protocol: str = typer.Option(
        "auto", "--protocol", help="auto (store + model), eigen, eigen_benchmark, nyu, densedepth."
    ),
    edge_thresholds: str = typer.Option(
        "0.25,0.5,1", "--edge-thresholds", help="NYU edge F1 thresholds, comma-separated."
    ),
    report: Path = typer.Option(
        None, "--report", help="Write an HTML report (metrics, plots, best/worst images) here."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --report."),
    batch_size: int = typer.Option(16, "--batch-size", help="Images per forward pass."),
    device: str = typer.Option(
        None,
        "--device",
        help="cuda, cuda:1 or cpu (default: cuda when available, else the CPU, with a note).",
    ),
    overrides: list[str] = typer.Option(
        [], "--set", help="Predictor setting key=value, e.g. teacher=true (ManyDepth's teacher)."
    ),
) -> None:
    """Score a checkpoint on a test store (KITTI eigen / eigen_benchmark, NYU), print a table.

    Two-frame models (ManyDepth) need a test store with previous frames (prepare-kitti
    --prev-frames); test images without one get a black image, counted in the output."""
    from train.eval.evaluate import evaluate_checkpoint
    from train.eval.protocols import parse_thresholds

    result = evaluate_checkpoint(
        checkpoint,
        store,
        batch_size=batch_size,
        device=device,
        post_process=post_process,
        scaling=scaling.value,
        protocol=protocol,
        edge_thresholds=parse_thresholds(edge_thresholds),
        save_images=save_images,
        json_path=json_path,
        report_dir=report,
        overwrite=overwrite,
        echo=typer.echo,
        overrides=overrides,
    )
    typer.echo(str(result))


def compare(
    evaluations: list[str] = typer.Argument(
        ..., help="Eval JSON files (eval --json) or run folders (their newest eval JSON)."
    ),
    markdown: Path = typer.Option(None, "--markdown", help="Also write the table as Markdown."),
    csv_path: Path = typer.Option(None, "--csv", help="Also write the table as CSV."),
) -> None:
    """Print several evaluations side by side, one row each."""
    from train.eval.compare import compare as compare_evaluations

    typer.echo(compare_evaluations(evaluations, markdown=markdown, csv_path=csv_path).text())


def predict(
    checkpoint: Path = typer.Argument(..., help="Checkpoint (.pt): trained or imported."),
    inputs: list[Path] = typer.Argument(
        ..., help="Images (PNG/JPEG), folders of images, video files."
    ),
    out: Path = typer.Option(..., "--out", help="Output folder (created)."),
    height: int = typer.Option(None, "--height", help="Network height (default: training)."),
    width: int = typer.Option(None, "--width", help="Network width (default: training)."),
    post_process: bool = typer.Option(
        False, "--post-process", help="Flip averaging (the evaluation's blend)."
    ),
    value_range: str = typer.Option(
        None,
        "--range",
        help="Fixed colour range MIN:MAX in metres (video frames); metric models only: refused "
        "for relative-depth (median-scaled) models.",
    ),
    device: str = typer.Option(
        None,
        "--device",
        help="cuda, cuda:1 or cpu (default: cuda when available, else the CPU, with a note).",
    ),
    batch_size: int = typer.Option(8, "--batch-size", help="Images per forward pass."),
    intrinsics: str = typer.Option(
        None,
        "--intrinsics",
        help="Two-frame models (ManyDepth): fx,fy,cx,cy in input pixels, a .json (normalised "
        "3x3), a KITTI calib_cam_to_cam.txt or a .zarr store (default: the training camera).",
    ),
    overrides: list[str] = typer.Option(
        [], "--set", help="Predictor setting key=value, e.g. teacher=true (ManyDepth's teacher)."
    ),
) -> None:
    """Depth maps of images, folders and videos: NAME_depth.npy, 16-bit PNG (millimetres, or
    relative depth at the map's own scale given in NAME_depth.json), colour PNG.

    Two-frame models (ManyDepth) use each picture and the one before it in its video, folder
    or argument list (the first gets a black previous frame)."""
    from train.eval.predict import predict_files

    summary = predict_files(
        checkpoint,
        list(inputs),
        out,
        height=height,
        width=width,
        post_process=post_process,
        value_range=value_range,
        device=device,
        batch_size=batch_size,
        echo=typer.echo,
        intrinsics=intrinsics,
        overrides=overrides,
    )
    typer.echo(str(summary))


class ExportFormat(str, Enum):
    torchscript = "torchscript"
    onnx = "onnx"
    tensorrt = "tensorrt"


class Precision(str, Enum):
    fp32 = "fp32"
    fp16 = "fp16"


def export(
    checkpoint: Path = typer.Argument(..., help="Checkpoint (.pt): trained or imported."),
    out: Path = typer.Argument(..., help="Exported file (OUT.json describes it)."),
    fmt: ExportFormat = typer.Option(ExportFormat.torchscript, "--format", help="Format."),
    height: int = typer.Option(None, "--height", help="Input height (default: training)."),
    width: int = typer.Option(None, "--width", help="Input width (default: training)."),
    precision: Precision = typer.Option(Precision.fp32, "--precision", help="fp16: TensorRT."),
    device: str = typer.Option(
        None,
        "--device",
        help="Device to export on (default: cpu; for tensorrt cuda, refused without one).",
    ),
    overrides: list[str] = typer.Option(
        [], "--set", help="Predictor setting key=value, e.g. teacher=true (ManyDepth's teacher)."
    ),
) -> None:
    """Export RGB (B,3,H,W) in [0,1] -> depth (B,1,h,w), checked against the eager model
    (two-frame models: previous image, image, intrinsics (B,4,4))."""
    from train.eval.export import export_checkpoint

    report = export_checkpoint(
        checkpoint,
        out,
        fmt.value,
        height=height,
        width=width,
        precision=precision.value,
        device=device,
        overrides=overrides,
    )
    typer.echo(str(report))


import_app = typer.Typer(no_args_is_help=True, help="Published weights -> a depthkit checkpoint.")


@import_app.command("monodepth2")
def import_monodepth2(
    weights_dir: Path = typer.Argument(
        ..., help="Release folder: encoder.pth, depth.pth [, pose_encoder.pth, pose.pth]."
    ),
    out: Path = typer.Option(..., "--out", help="Checkpoint to write (.pt)."),
    preset: str = typer.Option(
        "monodepth2-m", "--preset", help="monodepth2-m, monodepth2-s or monodepth2-ms."
    ),
) -> None:
    """monodepth2's released weights (mono_640x192/ ...) -> a checkpoint."""
    from train.eval.release import import_monodepth2 as run

    typer.echo(str(run(weights_dir, out, preset)))


@import_app.command("featdepth")
def import_featdepth(
    checkpoint_file: Path = typer.Argument(..., help="FeatDepth's mmcv checkpoint (.pth)."),
    out: Path = typer.Option(..., "--out", help="Checkpoint to write (.pt)."),
    preset: str = typer.Option(None, "--preset", help="A featdepth preset (default: the first)."),
) -> None:
    """FeatDepth's released weights (DepthEncoder./DepthDecoder. keys) -> a checkpoint."""
    from train.eval.release import import_featdepth as run

    typer.echo(str(run(checkpoint_file, out, preset)))


@import_app.command("litemono")
def import_litemono(
    weights_dir: Path = typer.Argument(
        ..., help="Release folder: encoder.pth, depth.pth [, pose_encoder.pth, pose.pth]."
    ),
    out: Path = typer.Option(..., "--out", help="Checkpoint to write (.pt)."),
    variant: str = typer.Option(None, "--variant", help="Override the variant read from weights."),
    preset: str = typer.Option(None, "--preset", help="A litemono preset (default: by size)."),
) -> None:
    """Lite-Mono's released weights (lite-mono_640x192/ ...) -> a checkpoint."""
    from train.eval.release_litemono import import_litemono as run

    typer.echo(str(run(weights_dir, out, variant, preset)))


@import_app.command("manydepth")
def import_manydepth(
    weights_dir: Path = typer.Argument(
        ...,
        help="Release folder: encoder.pth, depth.pth, pose_encoder.pth, pose.pth "
        "[, mono_encoder.pth, mono_depth.pth].",
    ),
    out: Path = typer.Option(..., "--out", help="Checkpoint to write (.pt)."),
    preset: str = typer.Option("manydepth-m", "--preset", help="manydepth-m or manydepth-hr-m."),
) -> None:
    """ManyDepth's released weights (KITTI_MR/, KITTI_HR/ ...) -> a checkpoint."""
    from train.eval.release_manydepth import import_manydepth as run

    typer.echo(str(run(weights_dir, out, preset)))
