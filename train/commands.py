"""The training command: ``train``, with the methods and presets of the registries in its help.

``cli.py`` adds it to its app. It parses options, calls :func:`train.engine.trainer.train` (or
:func:`train.engine.stages.train_stages`) with the evaluation's validation, and prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from typer.core import TyperCommand

TRAIN_NOTES = """\
--batch-size is per process: under torchrun the global batch is it times the number of
processes (the header printed at the start says both, and which of the reference's choices the
run departs from). --set key=value reaches any config field, method fields too (--set
disparity_smoothness=1e-2 or --set params.disparity_smoothness=1e-2). Methods and presets come
from the registries, plug-ins included (DEPTHKIT_PLUGINS, docs/extending.md)."""


def info(
    store: str = typer.Argument(
        None, help="Store path or fsspec URL (none: list the methods and presets)."
    ),
    verify: bool = typer.Option(
        False,
        "--verify",
        help="Check metadata, that every chunk exists and reads (checksums), samples and values.",
    ),
    quick: bool = typer.Option(
        False, "--quick", help="With --verify: read no chunk (metadata, chunk files, samples)."
    ),
) -> None:
    """Describe a store: dataset, split, sizes, sequences, samples, completeness, ground truth,
    provenance."""
    if store is None:
        from train.methods import method_listing, plugin_modules

        typer.echo(method_listing().replace("\b\n", ""))
        loaded = plugin_modules()
        typer.echo(f"\nPlug-ins: {', '.join(loaded) if loaded else 'none'}")
        return
    from pipelines.store.inspect import info_report

    text, problems = info_report(store, verify, quick)
    typer.echo(text)
    if problems:
        raise typer.Exit(1)


class RegistryHelp(TyperCommand):
    """A command whose help lists the registered methods and presets when it is shown (so plain
    runs do not import every method)."""

    def format_help(self, ctx: typer.Context, formatter: Any) -> None:
        from train.methods import method_listing

        self.help = f"{self.help}\n\n{method_listing()}\n\n{TRAIN_NOTES}"
        super().format_help(ctx, formatter)


def train(
    preset: str = typer.Option(
        None, "--preset", help="A preset listed above (optional with --resume)."
    ),
    train_store: str = typer.Option(
        None, "--train", help="Training store (train.zarr; --resume takes the run's own)."
    ),
    val_store: str = typer.Option(None, "--val", help="Validation store, checked every epoch."),
    out: Path = typer.Option(
        ..., "--out", help="Run folder: checkpoints, logs, config.json (refused if it holds a run)."
    ),
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
    device: str = typer.Option(
        None,
        "--device",
        help="cuda, cuda:1 or cpu (default: cuda when there is one, else the CPU).",
    ),
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
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Continue the run in OUT with its own stores and settings (only --epochs, "
        "--max-steps, --device and --workers may change).",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the run in OUT."),
    init: Path = typer.Option(
        None, "--init", help="Start from this checkpoint's network weights (fresh optimiser)."
    ),
    stages: str = typer.Option(
        None, "--stages", help="autoencoder, depth or all (OUT/autoencoder then OUT/depth)."
    ),
) -> None:
    """Train a method from stores; resumable with --resume."""
    from train.engine.launch import TrainRequest, launch
    from train.eval.validation import depth_scorer

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
    request = TrainRequest(
        out=out,
        preset=preset,
        train_store=train_store,
        val_store=val_store,
        flags=flags,
        sets=tuple(set_),
        resume=resume,
        overwrite=overwrite,
        init=None if init is None else str(init),
        stages=stages,
    )
    runs = launch(request, scorer=depth_scorer, echo=typer.echo)
    for run in runs:
        typer.echo(str(run))
    stopped = [getattr(run, "summary", run).stopped for run in runs]
    if any(stopped):
        raise typer.Exit(143 if "SIGTERM" in stopped else 130)
