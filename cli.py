"""depthkit command line: prepare NYU Depth V2 / KITTI stores, train and evaluate depth models.

This file is the entry point: it composes the command groups from where they belong
(:mod:`pipelines.commands`: data; :mod:`train.commands`: training; :mod:`train.eval.commands`:
models; :mod:`demo`: the demo). Every command parses options, calls one library function and
prints. Bad input ends with one clear ``error: ...`` line and a non-zero exit; ``--debug`` shows
the traceback instead.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer._click import exceptions as usage  # Typer's own click (vendored)

import demo
import pipelines.commands as data
import train.commands as training
import train.eval.commands as models

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


# The command groups, each defined where it belongs, in the order --help lists them.
app.command()(data.synth)
app.command()(training.info)
app.command()(data.masks)
app.command()(data.hints)
app.command("prepare-kitti")(data.prepare_kitti)
app.command(cls=training.RegistryHelp)(training.train)
app.command("prepare-nyu")(data.prepare_nyu)
app.command("eval")(models.eval_)
app.command()(models.compare)
app.command()(models.predict)
app.command()(models.export)
app.command()(demo.demo)
app.add_typer(models.import_app, name="import")


# ------------------------------------------------------------------------------- entry point
def main(argv: list[str] | None = None) -> None:
    """Run the CLI: bad input (a usage error or an exception from a library function) ends with
    one ``error:`` line, exit code 2 for usage errors and 1 otherwise; ``--debug`` (anywhere)
    shows the traceback instead."""
    args = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    try:
        code = _plain_flags(typer.main.get_command(app)).main(
            args=args, prog_name="depthkit", standalone_mode=False
        )
    except usage.NoArgsIsHelpError as e:
        typer.echo(e.ctx.get_help() if e.ctx else str(e))
        code = 0
    except usage.UsageError as e:
        if debug:
            raise
        command = e.ctx.command_path if e.ctx else "depthkit"
        message = e.format_message().rstrip(".")
        typer.echo(f"error: {message} (see: {command} --help)", err=True)
        code = e.exit_code
    except (KeyboardInterrupt, typer.Abort):
        typer.echo("interrupted", err=True)
        code = 130
    except Exception as e:  # noqa: BLE001 - the whole point is one clean line
        if debug:
            raise
        name = "" if isinstance(e, (ValueError, OSError, KeyError)) else f"{type(e).__name__}: "
        typer.echo(f"error: {name}{e}", err=True)
        code = 1
    sys.exit(code if isinstance(code, int) else 0)


def _plain_flags(command: Any) -> Any:
    """``command`` (and its subcommands) with on/off flags shown without a ``<bool>`` type in
    ``--help`` (they take no value)."""
    for param in command.params:
        if getattr(param, "is_flag", False):
            param.metavar = ""
    own_help = command.get_help_option

    def help_option(ctx: typer.Context) -> Any:
        option = own_help(ctx)
        if option is not None:
            option.metavar = ""
        return option

    command.get_help_option = help_option
    for sub in getattr(command, "commands", {}).values():
        _plain_flags(sub)
    return command


if __name__ == "__main__":
    main()
