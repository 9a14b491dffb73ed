"""The command line: thin Typer commands over the library API. `main` maps user errors to one line and an exit
code (see cycletrans.errors); anything else is a bug and keeps its traceback."""

from __future__ import annotations

import sys

from cycletrans.cli.app import app, err_console
from cycletrans.errors import EXIT_INTERRUPTED, CycletransError

# Each module registers its commands on `app`; they import heavy libraries (torch, onnxruntime) only when run.
from cycletrans.cli import train, export, apply, live, evaluate, models  # noqa: E402,F401  (--help lists them in this order)

def main(argv: list[str] | None = None) -> None:
    try:
        app(args=argv, prog_name="cycletrans")
    except CycletransError as err:
        err_console.print(f"cycletrans: error: {err}", markup=False, soft_wrap=True)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        err_console.print("cycletrans: interrupted", markup=False)
        sys.exit(EXIT_INTERRUPTED)
