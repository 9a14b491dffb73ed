"""`cycletrans models ...`: list, show, import, pull and remove named styles (see cycletrans.styles)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from cycletrans.cli.app import app, err_console, info, make_progress, show_progress

models_app = typer.Typer(help="Manage named styles: list, show, import .pth files, pull published models, remove.",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("list")
def list_command(
    all_: bool = typer.Option(False, "--all", "-a", help="Also list the published models that can be pulled."),
    as_json: bool = typer.Option(False, "--json", help="Print the list as JSON on stdout."),
) -> None:
    """List installed styles (your store first, then those shipped with cycletrans)."""
    from cycletrans import styles

    rows = styles.catalogue(include_published=all_)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        info(f"no styles installed in {styles.user_store()}; add one with `cycletrans export RUN --name NAME`, "
             "`cycletrans models import FILE.pth --name NAME` or `cycletrans models pull NAME` (see --all)")
        return
    from rich.table import Table

    table = Table(title=f"styles ({styles.user_store()})", title_justify="left")
    for column in ("name", "from → to", "directions", "where", "aliases"):
        table.add_column(column)
    for row in rows:
        where = row["origin"] if row["installed"] else f"cycletrans models pull {row['name']}"
        directions = ", ".join(d + (" (+fp16)" if d in row["fp16"] else "") for d in row["directions"])
        table.add_row(row["name"], f"{row['source']} → {row['target']}", directions, where, ", ".join(row["aliases"]))
    err_console.print(table)


@models_app.command("show")
def show_command(name: str = typer.Argument(..., help="Style name or alias, or a style folder / .onnx path.")) -> None:
    """Print a style's card (domains, provenance, export errors, ...) as JSON on stdout."""
    from cycletrans import styles

    path = Path(name)
    style = styles.resolve_style(None, path) if path.exists() else styles.resolve_style(name, None)
    files = sorted(p.name for p in style.folder.iterdir() if p.suffix == ".onnx") if style.folder else [style.file.name]
    typer.echo(json.dumps({**style.card, "origin": style.origin, "path": str(style.folder or style.file),
                           "files": files}, indent=2, ensure_ascii=False))


@models_app.command("import")
def import_command(
    file: Path = typer.Argument(..., help="A cycletrans checkpoint (.pt) or a reference generator (.pth, e.g. latest_net_G.pth)."),
    name: str = typer.Option(None, "--name", "-n", help="Style name; default: the file name without extension."),
    source: str = typer.Option(None, "--source", help="Source domain name for a single generator (default: from the name, 'a2b')."),
    target: str = typer.Option(None, "--target", help="Target domain name for a single generator."),
    fp16: bool = typer.Option(True, "--fp16/--no-fp16", help="Also write fp16 variants for GPUs."),
    force: bool = typer.Option(False, "--force", "-f", help="Replace an existing style of that name."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No notices on stderr."),
) -> None:
    """Convert a PyTorch weights file to ONNX and register it as a style.

    Only plain tensors are loaded: a file holding other Python objects (which could run code) is refused.
    """
    from cycletrans import styles

    with make_progress(quiet) as progress:
        task = progress.add_task("importing", total=None)  # one or two directions: not known before loading
        result = styles.import_pth(file, name, source_domain=source, target_domain=target, fp16=fp16,
                                   overwrite=force, log=lambda m: (info(m, quiet), progress.advance(task)))
    info(f"style {result.name!r} written to {result.folder}", quiet)


@models_app.command("pull")
def pull_command(
    name: str = typer.Argument(..., help="A published model (e.g. horse2zebra) or its alias (e.g. zebra)."),
    fp16: bool = typer.Option(True, "--fp16/--no-fp16", help="Also write fp16 variants for GPUs."),
    force: bool = typer.Option(False, "--force", "-f", help="Fetch and replace even if installed."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or notices on stderr."),
) -> None:
    """Download one of the CycleGAN authors' published generators and register it.

    $CYCLETRANS_MODEL_URL overrides the server. An interrupted download resumes where it stopped.
    """
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    from cycletrans import styles

    full = styles.canonical_name(name)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn(), console=err_console, disable=not show_progress(quiet)) as bar:
        task = bar.add_task(full, total=None)
        result = styles.pull(name, overwrite=force, fp16=fp16, log=lambda m: info(m, quiet),
                             progress=lambda done, total: bar.update(task, completed=done, total=total))
    info(f"style {result.name!r} written to {result.folder}", quiet)


@models_app.command("remove")
def remove_command(name: str = typer.Argument(..., help="Style name (or alias) in your store.")) -> None:
    """Delete a style from your store (styles shipped with cycletrans are never deleted)."""
    from cycletrans import styles

    folder = styles.remove(name)
    info(f"removed {folder}")
