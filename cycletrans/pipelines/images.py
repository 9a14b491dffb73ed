"""Images through the engine: which files to translate and where each result goes (`collect_sources`,
`plan_outputs`), and the run itself (`translate_images`), where decoding and encoding happen in background
threads while the engine works, so the network never waits on the disk.

A bad file is one failed item, never the end of the run; inputs are never written over.
"""

from __future__ import annotations

import glob
import os
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from cycletrans.errors import CycletransError, InputError
from cycletrans.media.images import (DEFAULT_QUALITY, decode_image_bytes, encode_image, format_extension, format_of,
                                     is_image_path, read_image, write_image)

_GLOB_CHARS = frozenset("*?[")


def video_extensions() -> frozenset[str]:
    from cycletrans.media.video import VIDEO_EXTENSIONS  # imported here: PyAV only once inputs are collected

    return VIDEO_EXTENSIONS


# -- what to translate -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One input file; `root` is the folder it was found under (its path below root is mirrored in the output
    folder), None for a file named directly."""

    path: Path
    kind: str  # "image" or "video"
    root: Path | None = None

    @property
    def relative(self) -> Path:
        return self.path.relative_to(self.root) if self.root is not None else Path(self.path.name)


def _kind(path: Path, videos: frozenset[str]) -> str | None:
    if is_image_path(path):
        return "image"
    return "video" if path.suffix.lower() in videos else None


def _walk(root: Path, videos: frozenset[str], exclude: Path | None, skip_tag: str | None) -> list[Source]:
    """Media files under `root` (sorted, hidden files and `exclude` skipped, and files named like an output of
    this style, `*.<skip_tag>.*`, which a previous run wrote beside its inputs)."""
    found = []
    exclude = exclude.resolve() if exclude is not None else None
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and (exclude is None or (here / d).resolve() != exclude))
        for name in sorted(filenames):
            path = here / name
            kind = _kind(path, videos)
            if name.startswith(".") or kind is None or (skip_tag and path.stem.endswith(f".{skip_tag}")):
                continue
            found.append(Source(path, kind, root))
    return found


def _glob_root(pattern: str) -> Path | None:
    """The folder before the first wildcard of a pattern (`photos/**/*.jpg` → `photos`), mirrored like a folder."""
    parts = Path(pattern).parts
    static = []
    for part in parts[:-1]:
        if _GLOB_CHARS & set(part):
            break
        static.append(part)
    return Path(*static) if static else None


def collect_sources(inputs: Iterable[str | os.PathLike], *, exclude: Path | None = None,
                    skip_tag: str | None = None, listed: bool = False) -> list[Source]:
    """Expand files, folders (recursively) and globs (also quoted ones) into media files.

    InputError for an input that does not exist or matches nothing. With `listed` (paths read from stdin) every
    entry is taken as a file, even a missing one, so that it fails as one item; relative entries are mirrored
    below the current folder.
    """
    videos = video_extensions()
    sources: list[Source] = []
    for entry in inputs:
        path = Path(entry).expanduser()
        if listed:
            relative = not path.is_absolute() and ".." not in path.parts
            sources.append(Source(path, _kind(path, videos) or "image", Path(".") if relative else None))
        elif path.is_dir():
            sources += _walk(path, videos, exclude, skip_tag)
        elif path.is_file():
            sources.append(Source(path, _kind(path, videos) or "image"))
        elif _GLOB_CHARS & set(str(entry)):
            matches = sorted(glob.glob(str(path), recursive=True))
            root = _glob_root(str(path))
            files = [Path(m) for m in matches if Path(m).is_file() and _kind(Path(m), videos)]
            if not files:
                raise InputError(f"{entry}: no images or videos match")
            sources += [Source(f, _kind(f, videos), root if root is not None and f.is_relative_to(root) else None)
                        for f in files]
        else:
            raise InputError(f"{entry}: no such file or folder")
    return sources


# -- where results go ----------------------------------------------------------------------------------------------


def output_is_file(output: Path, sources: Sequence[Source]) -> bool:
    """Whether `-o` names one output file rather than a folder: a name with an image/video extension that is not
    an existing folder, for a single input named directly."""
    if output.is_dir() or str(output).endswith(("/", os.sep)):
        return False
    if is_image_path(output) and format_of(output) is None:  # -o out.gif: not a folder named out.gif either
        raise InputError(f"-o {output}: cannot write {output.suffix} images; name a .png, .jpg, .webp, .bmp or "
                         ".tif file, or a folder")
    has_extension = format_of(output) is not None or output.suffix.lower() in video_extensions()
    if has_extension and (len(sources) != 1 or sources[0].root is not None):
        raise InputError(f"-o {output} names one file, but there are {len(sources)} inputs; give a folder")
    if not has_extension and output.exists():
        raise InputError(f"-o {output} is an existing file, not a folder; give a folder or an image/video name")
    return has_extension


def _output_suffix(source: Source, fmt: str | None) -> str:
    if source.kind == "video":
        return source.path.suffix
    if fmt is not None:
        return format_extension(fmt)
    return source.path.suffix if format_of(source.path) else ".png"  # gif, ppm, ... are written as png


def plan_outputs(sources: Sequence[Source], output: Path | None, *, tag: str,
                 fmt: str | None = None) -> list[tuple[Source, Path]]:
    """Pair every source with its output path.

    No `output`: beside the input as NAME.<tag>.EXT. A folder: the sources' tree mirrored under it. A file (one
    input): that file. An output that would land beside its own input carries the tag too, so an input is never
    written over (even with -o set to the input folder), and two inputs never share an output (a.jpg and a.png
    both written as png: a.png keeps the plain name, the other becomes a.jpg.png).
    """
    inputs = {_key(s.path) for s in sources}
    if output is not None and output_is_file(output, sources):
        if _key(output) in inputs:
            raise InputError(f"-o {output} is the input itself; cycletrans never overwrites an input")
        return [(sources[0], output)]

    def place(source: Source) -> tuple[Path, bool, str]:
        """(folder, tagged, suffix) of a source's output."""
        suffix = _output_suffix(source, fmt)
        if output is None:
            return source.path.parent, True, suffix
        folder = (output / source.relative).parent
        return folder, _key(folder) == _key(source.path.parent), suffix  # beside its input: keep the two apart

    def name(source: Source, tagged: bool, suffix: str, extra: str = "") -> str:
        return f"{source.path.stem}{extra}{f'.{tag}' if tagged else ''}{suffix}"

    places = [place(s) for s in sources]
    claimed = set(inputs)
    result: list[Path | None] = [None] * len(sources)
    # Sources whose extension already matches their output's keep the plain name; the others yield.
    order = sorted(range(len(sources)), key=lambda i: sources[i].path.suffix.lower() != places[i][2].lower())
    for i in order:
        source, (folder, tagged, suffix) = sources[i], places[i]
        target = folder / name(source, tagged, suffix)
        extension = source.path.suffix.lower().lstrip(".") or "file"
        n = 1
        while _key(target) in claimed:  # a.jpg beside a.png, both written as png: a.jpg.png
            target = folder / name(source, tagged, suffix, f".{extension}" + (f"-{n}" if n > 1 else ""))
            n += 1
        claimed.add(_key(target))
        result[i] = target
    return list(zip(sources, result))  # type: ignore[arg-type]


def _key(path: Path) -> str:
    """Compare paths as the file system will: absolute, and without case (macOS and Windows ignore it)."""
    return os.path.normcase(os.path.abspath(path)).lower()


# -- running -----------------------------------------------------------------------------------------------------


@dataclass
class ItemResult:
    """What happened to one input; `to_json()` is one line of `apply --json`."""

    input: str
    output: str | None
    status: str  # "ok", "skipped" or "failed"
    size: tuple[int, int] | None = None  # output width, height
    ms: float = 0.0
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def to_json(self) -> dict[str, Any]:
        return {**self.extra, "input": self.input, "output": self.output,
                "size": list(self.size) if self.size else None, "ms": round(self.ms, 1), "status": self.status,
                "error": self.error}


@dataclass
class _Decoded:
    source: Path
    output: Path
    rgb: np.ndarray
    alpha: np.ndarray | None
    ms: float


def _reason(err: BaseException) -> str:
    """One line for a failed item: our own messages as they are, anything else with its type."""
    if isinstance(err, CycletransError):
        return str(err)
    return f"{type(err).__name__}: {err}".splitlines()[0]


def _done(result: ItemResult) -> Future:
    future: Future = Future()
    future.set_result(result)
    return future


def _decode(source: Path, output: Path) -> _Decoded | ItemResult:
    start = time.perf_counter()
    try:
        rgb, alpha = read_image(source)
    except Exception as err:  # a bad file is one failed item
        return ItemResult(str(source), str(output), "failed", ms=_ms(start), error=_reason(err))
    return _Decoded(source, output, rgb, alpha, _ms(start))


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def fit_alpha(alpha: np.ndarray | None, rgb: np.ndarray) -> np.ndarray | None:
    """The input's alpha at the output's size (they differ when the engine downscaled with max_size)."""
    if alpha is None or alpha.shape[:2] == rgb.shape[:2]:
        return alpha
    import cv2

    return cv2.resize(alpha, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_AREA)


def _encode(item: _Decoded, rgb: np.ndarray, infer_ms: float, fmt: str | None, quality: int) -> ItemResult:
    start = time.perf_counter()
    try:
        write_image(item.output, rgb, fit_alpha(item.alpha, rgb), fmt=fmt or format_of(item.output) or "png",
                    quality=quality)
    except Exception as err:
        return ItemResult(str(item.source), str(item.output), "failed", ms=item.ms + infer_ms + _ms(start),
                          error=_reason(err))
    return ItemResult(str(item.source), str(item.output), "ok", size=(rgb.shape[1], rgb.shape[0]),
                      ms=item.ms + infer_ms + _ms(start))


def _infer(engine, items: list[_Decoded]) -> list[np.ndarray | BaseException]:
    """The batch through the engine; when the batch fails, each item alone, so one bad item fails by itself."""
    try:
        return engine.translate([item.rgb for item in items])
    except Exception as err:
        if len(items) == 1:
            return [err]
    outputs: list[np.ndarray | BaseException] = []
    for item in items:
        try:
            outputs.append(engine.translate_one(item.rgb))
        except Exception as err:
            outputs.append(err)
    return outputs


def translate_images(engine, tasks: Sequence[tuple[Path, Path]], *, fmt: str | None = None,
                     quality: int = DEFAULT_QUALITY, skip_existing: bool = False, workers: int | None = None,
                     on_result: Callable[[ItemResult], None] | None = None) -> list[ItemResult]:
    """Translate image files: `tasks` are (source, output) pairs, e.g. from `plan_outputs`.

    Decoding runs ahead in a thread pool and encoding behind in another, both bounded, while the engine runs
    batches of `engine.batch_size`. Results come back (and go to `on_result`) in the order of `tasks`. `fmt`
    overrides the format the output's extension names.
    """
    workers = workers or max(2, min(4, os.cpu_count() or 1))
    batch_size = max(1, getattr(engine, "batch_size", 1))
    lookahead = batch_size + 2 * workers  # decoded frames waiting: bounded memory
    results: list[ItemResult] = []
    todo = iter(tasks)
    decoding: deque[Future] = deque()
    writing: deque[Future] = deque()

    def emit_finished(block: bool) -> None:
        while writing and (block or writing[0].done() or len(writing) > lookahead):
            result = writing.popleft().result()
            results.append(result)
            if on_result is not None:
                on_result(result)

    with ThreadPoolExecutor(workers, thread_name_prefix="cycletrans-decode") as decoders, \
            ThreadPoolExecutor(workers, thread_name_prefix="cycletrans-encode") as encoders:

        def refill() -> None:
            while len(decoding) < lookahead:
                task = next(todo, None)
                if task is None:
                    return
                source, output = Path(task[0]), Path(task[1])
                if skip_existing and output.exists():
                    decoding.append(_done(ItemResult(str(source), str(output), "skipped")))
                else:
                    decoding.append(decoders.submit(_decode, source, output))

        def flush(entries: list[_Decoded | ItemResult]) -> None:
            frames = [e for e in entries if isinstance(e, _Decoded)]
            start = time.perf_counter()
            outputs = iter(_infer(engine, frames) if frames else [])
            infer_ms = _ms(start) / max(1, len(frames))
            for entry in entries:
                if isinstance(entry, ItemResult):
                    writing.append(_done(entry))
                    continue
                out = next(outputs)
                if isinstance(out, BaseException):
                    writing.append(_done(ItemResult(str(entry.source), str(entry.output), "failed",
                                                    ms=entry.ms + infer_ms, error=_reason(out))))
                else:
                    writing.append(encoders.submit(_encode, entry, out, infer_ms, fmt, quality))
            emit_finished(block=False)

        refill()
        pending: list[_Decoded | ItemResult] = []
        while decoding:
            entry = decoding.popleft().result()
            refill()
            pending.append(entry)
            if sum(isinstance(e, _Decoded) for e in pending) >= batch_size or not decoding:
                flush(pending)
                pending = []
        emit_finished(block=True)
    return results


def translate_image_bytes(engine, data: bytes, *, fmt: str | None = None,
                          quality: int = DEFAULT_QUALITY) -> tuple[bytes, ItemResult]:
    """One image as bytes in and bytes out (`apply - -o -`); the format is `fmt`, else the input's, else png."""
    start = time.perf_counter()
    rgb, alpha, source_fmt = decode_image_bytes(data)
    out = engine.translate_one(rgb)
    encoded = encode_image(out, fit_alpha(alpha, out), fmt or source_fmt or "png", quality)
    return encoded, ItemResult("-", "-", "ok", size=(out.shape[1], out.shape[0]), ms=_ms(start))
