"""`cycletrans apply`: translate images, videos, folders, globs or stdin with a style.

Thin: it resolves the style, expands the inputs and plans the outputs (cycletrans.pipelines.images), builds the
Engine, and reports. Images go through the threaded image pipeline; each video through
cycletrans.pipelines.video.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import List, Optional

import typer

from cycletrans.cli.app import app, err_console, info, make_progress
from cycletrans.errors import EXIT_SOME_FAILED, CycletransError, InputError

FORMATS = ("png", "jpg", "webp")


def _format(value: str | None) -> str | None:
    if value is None:
        return None
    value = {"jpeg": "jpg"}.get(value.lower(), value.lower())
    if value not in FORMATS:
        raise CycletransError(f"--format {value}: choose one of {', '.join(FORMATS)}")
    return value


@app.command()
def apply(
    inputs: List[str] = typer.Argument(..., help="Images, videos, folders (recursive), globs, or - (paths on stdin; "
                                                 "image bytes on stdin with -o -)."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Output folder (input trees are mirrored), "
                                         "a file for one input, or - for stdout. Default: beside each input as "
                                         "NAME.<style>.EXT."),
    style: Optional[str] = typer.Option(None, "--style", "-s", help="Installed style name or alias (default: the style named 'default')."),
    model: Optional[Path] = typer.Option(None, "--model", help="An .onnx file or style folder instead of --style."),
    reverse: bool = typer.Option(False, "--reverse", help="Use the style's other generator (reverse.onnx)."),
    device: str = typer.Option("auto", "--device", help="auto, cuda, tensorrt or cpu."),
    batch: int = typer.Option(1, "--batch", min=1, help="Frames of one size run together (helps on GPUs)."),
    tile: Optional[int] = typer.Option(None, "--tile", min=0, help="Translate images larger than N px in N×N "
                                       "overlapping tiles (0: never; default: only images over 16 MP)."),
    max_size: Optional[int] = typer.Option(None, "--max-size", min=8, help="Downscale so the longest side is at most N."),
    fmt: Optional[str] = typer.Option(None, "--format", help="Image output format: png, jpg or webp "
                                      "(default: from the output name, else the input's)."),
    quality: int = typer.Option(95, "--quality", min=1, max=100, help="jpg/webp quality."),
    skip_existing: bool = typer.Option(False, "--skip-existing", help="Leave outputs that already exist alone."),
    json_lines: bool = typer.Option(False, "--json", help="One JSON line per item on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or notices."),
    stable: bool = typer.Option(False, "--stable", help="Videos: temporally stabilised output (less flicker)."),
    codec: str = typer.Option("libx264", "--codec", help="Videos: output video codec."),
    crf: int = typer.Option(18, "--crf", min=0, max=63, help="Videos: constant rate factor (lower is better)."),
) -> None:
    """Translate images, videos and folders with a style (e.g. `cycletrans apply photos/ --style monet -o out/`)."""
    from cycletrans.engine import MIN_TILE, Engine
    from cycletrans.media.images import format_of, looks_like_image
    from cycletrans.pipelines.images import collect_sources, plan_outputs
    from cycletrans.styles import resolve_style

    fmt = _format(fmt)
    if tile is not None and 0 < tile < MIN_TILE:
        raise CycletransError(f"--tile {tile}: tiles must be at least {MIN_TILE} px (or 0 for never)")
    if json_lines and output == "-":
        raise CycletransError("--json and -o - both want stdout; choose one")
    if "-" in inputs and len(inputs) > 1:
        raise CycletransError("- (stdin) must be the only input")
    chosen = resolve_style(style, model)
    chosen.model_path(reverse=reverse)  # a missing direction is a usage error, before any work
    tag = f"{chosen.name}-reverse" if reverse else chosen.name

    def engine() -> Engine:
        return Engine.for_style(chosen, reverse=reverse, device=device, batch_size=batch, tile=tile,
                                max_size=max_size, notice=lambda message: info(f"cycletrans: {message}", quiet))

    stdin_bytes = None
    listed = False
    if inputs == ["-"]:
        data = sys.stdin.buffer.read()
        if output == "-" or looks_like_image(data):
            stdin_bytes = data
        else:
            inputs, listed = [line.strip() for line in data.decode(errors="replace").splitlines() if line.strip()], True
    if stdin_bytes is not None:
        if output is None or Path(output).is_dir() or (output != "-" and format_of(output) is None):
            raise CycletransError("image bytes on stdin need -o FILE (with an image extension) or -o -")
        _apply_bytes(engine(), stdin_bytes, output, fmt or format_of(output), quality, json_lines)
        return

    out_path = Path(output) if output not in (None, "-") else None
    sources = collect_sources(inputs, exclude=out_path, skip_tag=tag, listed=listed)
    if not sources:
        raise InputError(f"nothing to do: no images or videos in {', '.join(inputs) or 'the paths on stdin'}")
    if output == "-":
        if len(sources) != 1 or sources[0].kind != "image":
            raise CycletransError("-o - writes one image to stdout; give a single image")
        _apply_bytes(engine(), _read_input(sources[0].path), "-", fmt or format_of(sources[0].path), quality,
                     json_lines)
        return
    plan = plan_outputs(sources, out_path, tag=tag, fmt=fmt)
    _apply_files(engine(), plan, fmt=fmt, quality=quality, skip_existing=skip_existing, json_lines=json_lines,
                 quiet=quiet, video_options={"stable": stable, "codec": codec, "crf": crf, "max_size": max_size})


def _read_input(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise InputError(f"{path}: {err.strerror or err}") from None


def _apply_bytes(engine, data: bytes, output: str, fmt: str | None, quality: int, json_lines: bool) -> None:
    """One image's bytes → stdout (`-o -`) or one file; `fmt` None keeps the input's format."""
    from cycletrans.fsutil import atomic_write_bytes
    from cycletrans.pipelines.images import translate_image_bytes

    encoded, result = translate_image_bytes(engine, data, fmt=fmt, quality=quality)
    if output == "-":
        sys.stdout.buffer.write(encoded)
        sys.stdout.buffer.flush()
        return
    atomic_write_bytes(output, encoded)
    result.output = output
    if json_lines:
        print(json.dumps(result.to_json()), flush=True)


def _apply_files(engine, plan, *, fmt, quality: int, skip_existing: bool, json_lines: bool, quiet: bool,
                 video_options: dict) -> None:
    from cycletrans.pipelines.images import translate_images

    images = [(s.path, dst) for s, dst in plan if s.kind == "image"]
    videos = [(s.path, dst) for s, dst in plan if s.kind == "video"]
    results = []
    start = time.perf_counter()
    with make_progress(quiet) as progress:
        task = progress.add_task("apply", total=len(plan))

        def report(result) -> None:
            results.append(result)
            if json_lines:
                print(json.dumps(result.to_json()), flush=True)
            progress.advance(task)

        if images:
            translate_images(engine, images, fmt=fmt, quality=quality, skip_existing=skip_existing,
                             on_result=report)
        for source, dst in videos:
            report(_apply_video(engine, source, dst, skip_existing, progress, quiet, video_options))

    failed = [r for r in results if not r.ok]
    done = sum(r.status == "ok" for r in results)
    skipped = sum(r.status == "skipped" for r in results)
    summary = f"cycletrans: {done} translated" + (f", {skipped} skipped" if skipped else "")
    info(f"{summary}, {len(failed)} failed in {time.perf_counter() - start:.1f} s ({engine.provider})", quiet)
    if failed:
        err_console.print(f"cycletrans: {len(failed)} of {len(results)} items failed:", markup=False)
        for result in failed:
            err_console.print(f"  {result.error}" if result.error and result.error.startswith(result.input)
                              else f"  {result.input}: {result.error}", markup=False, soft_wrap=True)
        raise typer.Exit(EXIT_SOME_FAILED)


def _apply_video(engine, source: Path, dst: Path, skip_existing: bool, progress, quiet: bool, options: dict):
    """One video through cycletrans.pipelines.video; any problem is this item's failure, not the run's."""
    from cycletrans.pipelines.images import ItemResult

    if skip_existing and dst.exists():
        return ItemResult(str(source), str(dst), "skipped")
    from cycletrans.pipelines.video import VideoInterrupted, translate_video

    start = time.perf_counter()

    try:
        summary = translate_video(engine, source, dst, progress=progress, quiet=quiet, **options)
    except VideoInterrupted as stop:  # Ctrl-C: say where the playable part went, then stop the run (exit 130)
        kept = stop.result.get("output")
        err_console.print(f"cycletrans: interrupted; {stop.result.get('frames', 0)} frames of {source} kept in {kept}"
                          if kept else f"cycletrans: interrupted during {source}", markup=False, soft_wrap=True)
        raise
    except Exception as err:  # PyAV raises many kinds; one broken video must not stop the others
        reason = str(err) if isinstance(err, CycletransError) else f"{source}: {type(err).__name__}: {err}"
        return ItemResult(str(source), str(dst), "failed", ms=(time.perf_counter() - start) * 1000,
                          error=reason.splitlines()[0])
    summary = dict(summary or {})
    status = summary.pop("status", "ok")
    size = summary.pop("size", None)
    return ItemResult(str(source), str(summary.pop("output", dst)), status,
                      size=tuple(size) if size else None, ms=(time.perf_counter() - start) * 1000,
                      error=summary.pop("error", None), extra=summary)
