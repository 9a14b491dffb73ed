"""`cycletrans eval`: score a style on a paired test set with the paper's metrics (cycletrans.evaluate)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from cycletrans.cli.app import app, err_console, info, make_progress
from cycletrans.errors import EXIT_SOME_FAILED, InputError


@app.command("eval")
def eval_command(
    data: Optional[Path] = typer.Argument(None, metavar="[DATA]", help="A data folder with testA/ and testB/ (paired by file name)."),
    style: Optional[str] = typer.Option(None, "--style", "-s", help="Style name (see `cycletrans models list`)."),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="An .onnx file or a style folder."),
    input_dir: Optional[Path] = typer.Option(None, "--input", "-i", help="Input images (instead of DATA/testA)."),
    target_dir: Optional[Path] = typer.Option(None, "--target", "-t", help="What each input should become, paired by file name (instead of DATA/testB). Without it, only the cycle errors."),
    reverse: bool = typer.Option(False, "--reverse", "-r", help="Evaluate the reverse direction (F: testB → testA)."),
    task: str = typer.Option("auto", help="labels (segmentation scores), image (PSNR/SSIM/L1) or auto (labels if the targets have few colours)."),
    palette: Optional[Path] = typer.Option(None, help="palette.json of the label classes (default: one in or beside the test folders, else the targets' colours)."),
    cycle: bool = typer.Option(True, "--cycle/--no-cycle", help="Also measure cycle-reconstruction errors (needs both directions)."),
    inception: Optional[Path] = typer.Option(None, help="A local ONNX Inception feature extractor (input N×3×H×W RGB in [0, 1], output N×D) for FID and KID; never downloaded."),
    device: str = typer.Option("auto", help="auto, cuda, tensorrt or cpu."),
    batch_size: int = typer.Option(8, min=1, help="Images per inference batch."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No table, notices or progress bar on stderr."),
) -> None:
    """Score a style on paired test images: per-pixel/per-class accuracy and class IoU for label maps, PSNR, SSIM
    and L1 for images, the cycle-reconstruction errors, and FID/KID with a local --inception model (paper 5.1.1).

    Example: cycletrans eval datasets/labels2scenes --style scenes --reverse
    """
    from cycletrans.engine import Engine
    from cycletrans.evaluate import FolderEvaluation, InceptionFeatures, resolve_folders
    from cycletrans.styles import resolve_style

    source, target = resolve_folders(data, input_dir, target_dir, reverse)
    plan = FolderEvaluation(source, target, task=task, palette=palette)
    chosen = resolve_style(style, model)
    said: set[str] = set()

    def notice(message: str) -> None:  # both engines may say the same thing (e.g. "running on CPU"): say it once
        if message not in said:
            said.add(message)
            info(message, quiet)

    translate = Engine.for_style(chosen, reverse=reverse, device=device, batch_size=batch_size, notice=notice)
    inverse = None
    if cycle and ("forward" if reverse else "reverse") in chosen.directions:
        inverse = Engine.for_style(chosen, reverse=not reverse, device=device, batch_size=batch_size, notice=notice)
    if target is None and inverse is None:
        raise InputError("nothing to evaluate: without --target only the cycle errors can be measured, and they need "
                         "a style with both directions")
    features = InceptionFeatures(inception, device) if inception is not None else None

    with make_progress(quiet) as progress:
        bar = progress.add_task("evaluating", total=plan.total(inverse is not None))
        report = plan.run(translate.translate, inverse.translate if inverse else None, cycle=inverse is not None,
                          features=features, batch_size=batch_size, on_progress=lambda n: progress.advance(bar, n))
    report = {"style": chosen.name, "direction": "reverse" if reverse else "forward", **report}
    for item in report["skipped"]:
        info(f"skipped {item['file']}: {item['error']}", quiet)
    if not quiet:
        err_console.print(_table(report))
        for note in report["notes"]:
            info(note)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    if report["skipped"]:
        raise typer.Exit(EXIT_SOME_FAILED)


def _table(report: dict):
    """The report as a rich table: one row per metric, per-class rows indented under label scores."""
    from rich.table import Table

    direction = "F (reverse)" if report["direction"] == "reverse" else "G (forward)"
    table = Table(title=f"{report['style']}: {direction}, {report['input']} → {report['target'] or '(no targets)'}",
                  title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")

    def scores(prefix: str, found: dict) -> None:
        table.add_row(f"{prefix}per-pixel accuracy", f"{found['pixel_accuracy']:.3f}")
        table.add_row(f"{prefix}per-class accuracy", f"{found['class_accuracy']:.3f}")
        table.add_row(f"{prefix}class IoU", f"{found['class_iou']:.3f}")

    metrics = report["metrics"]
    if "pixel_accuracy" in metrics:
        scores("", metrics)
        for name, per in metrics["per_class"].items():
            if per["accuracy"] is not None or per["iou"] is not None:
                table.add_row(f"  {name}", f"acc {_num(per['accuracy'])}  IoU {_num(per['iou'])}")
    if "psnr" in metrics:
        table.add_row("PSNR (dB, 100 = identical)", f"{metrics['psnr']:.2f}")
        table.add_row("SSIM", f"{metrics['ssim']:.4f}")
        table.add_row("L1 (on [0, 1])", f"{metrics['l1']:.4f}")
    if "fcn_score" in metrics:
        scores("FCN score: ", metrics["fcn_score"])
        scores("FCN score of the real targets: ", metrics["fcn_score_real"])
    if "fid" in metrics:
        table.add_row("FID (outputs vs targets)", f"{metrics['fid']:.3f}")
        table.add_row("KID (outputs vs targets)", f"{metrics['kid']:.4f}")
    if "images" in metrics:
        table.add_row("pairs scored", str(metrics["images"]))
    for side, found in report["cycle"].items():
        forward_cycle = (side == "input") != (report["direction"] == "reverse")
        formula = "|F(G(x)) − x|" if forward_cycle else "|G(F(y)) − y|"
        table.add_row(f"cycle error {formula} on the {side}s", f"{_num(found['l1'], 4)} ({found['images']} images)")
    return table


def _num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"
