"""The ``demo`` command: everything end to end on synthetic data (what ``make demo`` runs).

Registered on the main app by :func:`register_demo_command`; the work is :mod:`demo`'s.
"""

from __future__ import annotations

from pathlib import Path

import typer


def demo(
    out: Path = typer.Option(Path("demo_out"), "--out", help="Folder for worlds, stores, run."),
    steps: int = typer.Option(None, "--steps", help="Training steps (default: the demo's)."),
    frames: int = typer.Option(None, "--frames", help="Frames per synthetic drive."),
    height: int = typer.Option(None, "--height", help="Network input height."),
    width: int = typer.Option(None, "--width", help="Network input width."),
    seed: int = typer.Option(0, "--seed", help="Seed of the world and of the training."),
) -> None:
    """End to end on the CPU: synthetic KITTI and NYU worlds, prepare, evaluate, train, evaluate."""
    from demo import DemoOptions, demo_end_to_end

    options = DemoOptions.with_overrides(
        steps=steps, frames=frames, height=height, width=width, seed=seed
    )
    demo_end_to_end(out, options, echo=typer.echo)


def register_demo_command(app: typer.Typer) -> None:
    """Add ``demo`` to ``app``."""
    app.command()(demo)
