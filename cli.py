"""depthkit command line: prepare NYU Depth V2 / KITTI stores, train and evaluate depth models.

Every command parses options, calls one library function and prints. Bad input ends with one
clear ``error: ...`` line and a non-zero exit; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path

import click
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


# ------------------------------------------------------------------------------- entry point
def main(argv: list[str] | None = None) -> None:
    """Run the CLI; turn exceptions from bad input into one ``error:`` line and exit code 1."""
    args = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in args
    command = typer.main.get_command(app)
    try:
        command.main(args=args, prog_name="depthkit", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
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
