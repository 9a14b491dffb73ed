"""`cycletrans export`: turn a training run's generators into a registered style (ONNX, fp32 + fp16)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from cycletrans.cli.app import app, info, make_progress


@app.command("export")
def export_command(
    run: Path = typer.Argument(..., help="A training run folder (its newest good checkpoint is used) or one checkpoint file."),
    name: str = typer.Option(None, "--name", "-n", help="Style name to register; default: the run folder's name."),
    out: Path = typer.Option(None, "--out", "-o", help="Write the style folder here instead of registering it in the store."),
    fp16: bool = typer.Option(True, "--fp16/--no-fp16", help="Also write fp16 variants for GPUs (InstanceNorm stays fp32)."),
    force: bool = typer.Option(False, "--force", "-f", help="Replace an existing style of that name."),
    as_json: bool = typer.Option(False, "--json", help="Print what was exported as JSON on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No notices on stderr."),
) -> None:
    """Export a training run's two generators to ONNX and register them as a style.

    G (A→B) becomes forward.onnx, F (B→A) reverse.onnx, plus fp16 variants; each is checked against PyTorch.
    """
    from cycletrans.export import export_run

    with make_progress(quiet) as progress:
        task = progress.add_task("exporting", total=2 * (2 if fp16 else 1))  # per direction: fp32 (+ fp16)

        def step(message: str) -> None:
            info(message, quiet)
            progress.advance(task)

        result = export_run(run, name, fp16=fp16, overwrite=force, out=out, log=step)
    info(f"style {result.name!r} ({result.card['domains']['source']} ↔ {result.card['domains']['target']}) "
         f"written to {result.folder}", quiet)
    if as_json:
        typer.echo(json.dumps({"name": result.name, "path": str(result.folder), "card": result.card}, indent=2))
