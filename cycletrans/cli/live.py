"""`cycletrans live`: translate a camera, stream or video file as it plays, with a side-by-side preview."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from cycletrans.cli.app import app, info
from cycletrans.errors import CycletransError


@app.command()
def live(
    style: Optional[str] = typer.Option(None, "--style", "-s", help="Style name, or several as a,b,c: keys 1-9 "
                                        "switch between them (default: the style named default)."),
    model: Optional[Path] = typer.Option(None, "--model", help="An .onnx file or style folder instead of --style."),
    camera: int = typer.Option(0, "--camera", min=0, help="Camera index."),
    source: Optional[str] = typer.Option(None, "--source", help="A stream URL (rtsp://, http://) or a video file "
                                         "instead of a camera; a file is played in full, frame by frame."),
    record: Optional[Path] = typer.Option(None, "--record", help="Also write the translated frames to this .mp4."),
    window: bool = typer.Option(True, "--window/--no-window", help="Show the preview window (q quit, s snapshot, "
                                "1-9 style)."),
    frames: Optional[int] = typer.Option(None, "--frames", min=1, help="Stop after N frames."),
    stable: bool = typer.Option(False, "--stable", help="Temporally stabilised output (less flicker)."),
    reverse: bool = typer.Option(False, "--reverse", help="Use the style's other generator (reverse.onnx)."),
    device: str = typer.Option("auto", "--device", help="auto, cuda, tensorrt or cpu."),
    max_size: Optional[int] = typer.Option(None, "--max-size", min=8, help="Downscale frames so the longest side "
                                           "is at most N (faster)."),
    as_json: bool = typer.Option(False, "--json", help="Print a summary (frames, fps, latency) as JSON on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or notices."),
) -> None:
    """Translate a webcam (default 0), a stream URL or a video file live, e.g. `cycletrans live --style monet`.

    The newest camera frame is always the one translated, so latency does not grow when the model is slow.
    """
    from cycletrans.engine import Engine
    from cycletrans.pipelines.live import open_source, run_live
    from cycletrans.styles import resolve_style

    names = [name.strip() for name in style.split(",") if name.strip()] if style else [None]
    if model is not None and style is not None:
        raise CycletransError("give --style or --model, not both")
    if len(names) > 9:
        raise CycletransError("--style: at most 9 styles (keys 1-9)")
    styles = {}
    for name in names:  # resolve them all now: a typo is a usage error before the camera opens
        chosen = resolve_style(name, model)
        chosen.model_path(reverse=reverse)
        styles[chosen.name] = chosen

    def load(name: str) -> Engine:
        return Engine.for_style(styles[name], reverse=reverse, device=device,
                                notice=lambda message: info(f"cycletrans: {message}", quiet))

    with open_source(camera, source) as frames_in:
        info(f"cycletrans: {frames_in.name} ({frames_in.width}x{frames_in.height}) → {', '.join(styles)}"
             + ("" if window or record or frames else "; no window and no --record: Ctrl-C to stop"), quiet)
        summary = run_live(frames_in, list(styles), load, record=record, window=window, max_frames=frames,
                           max_size=max_size, stable=stable, quiet=quiet,
                           notice=lambda message: info(f"cycletrans: {message}", quiet))
    info(f"cycletrans: {summary['frames']} frames at {summary['fps']:.1f} fps, latency {summary['latency_ms']:.0f} ms"
         + (f", {summary['dropped']} stale frames dropped" if summary["dropped"] else "")
         + (f"; recorded to {summary['record']}" if summary["record"] else ""), quiet)
    if as_json:
        typer.echo(json.dumps(summary))
