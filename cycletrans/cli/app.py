"""The Typer app every command module registers on, and what the commands share: the stderr console and the
progress bar that stays quiet when asked to or when stderr is not a terminal."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

from cycletrans import __version__

app = typer.Typer(
    name="cycletrans",
    help="Unpaired image-to-image translation (CycleGAN): train, export, and apply to images, videos and cameras.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Everything for humans goes to stderr, so that stdout stays clean for data (--json, `-o -`).
err_console = Console(stderr=True, highlight=False)


def show_progress(quiet: bool) -> bool:
    """Progress bars only for a person at a terminal."""
    return not quiet and sys.stderr.isatty()


def make_progress(quiet: bool, *extra_columns) -> Progress:
    """A rich progress bar on stderr; disabled (prints nothing) with --quiet or when stderr is not a terminal."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), *extra_columns,
        TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
        console=err_console, disable=not show_progress(quiet), transient=False,
    )


def info(message: str, quiet: bool = False) -> None:
    """A one-line notice on stderr (suppressed by --quiet)."""
    if not quiet:
        err_console.print(message, markup=False)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cycletrans {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Unpaired image-to-image translation (CycleGAN): train, export, and apply to images, videos and cameras."""
