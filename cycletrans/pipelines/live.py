"""Live translation: newest frame from a FrameSource → translator → side-by-side preview window and/or a
recording, with fps and latency measured as it goes.

The translator runs in the caller's thread (OpenCV windows must be driven from there too); the source is read
in its own thread (see cycletrans.media.camera) and the recording is encoded in another, so neither slows the
model down.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from cycletrans.errors import DeviceError, InputError
from cycletrans.fsutil import atomic_path
from cycletrans.media.camera import CapturedFrame, FrameSource
from cycletrans.media.video import VideoWriter, check_encoder, fit_size

WINDOW = "cycletrans live (q quit, s snapshot, 1-9 style)"
LIVE_TIME_BASE = Fraction(1, 1000)  # live recordings are stamped with wall-clock milliseconds
RECORD_CODEC = "libx264"


@dataclass
class Meter:
    """Frames per second and latency, smoothed over the last second or so."""

    fps: float = 0.0
    latency_ms: float = 0.0
    _last: float | None = None

    def tick(self, captured_at: float) -> None:
        now = time.perf_counter()
        latency = (now - captured_at) * 1000
        if self._last is not None:
            rate = 1.0 / max(now - self._last, 1e-6)
            self.fps = rate if self.fps == 0 else 0.9 * self.fps + 0.1 * rate
        self.latency_ms = latency if self.latency_ms == 0 else 0.9 * self.latency_ms + 0.1 * latency
        self._last = now


class Recorder:
    """Encodes output frames to `path` in a background thread, so a slow disk never holds up the model."""

    def __init__(self, path: Path, width: int, height: int, *, fps: float | None, from_file: bool,
                 codec: str = RECORD_CODEC, crf: int = 18):
        # A file source keeps its own timing (frame index / fps); a live one is stamped with wall-clock time.
        self.rate = Fraction(fps).limit_denominator(1001) if fps else Fraction(30)
        self.time_base = 1 / self.rate if from_file else LIVE_TIME_BASE
        self.from_file = from_file
        self._writer = VideoWriter(path, width, height, rate=self.rate, time_base=self.time_base, codec=codec,
                                   crf=crf)
        self._queue: queue.Queue = queue.Queue(maxsize=16)
        self._start: float | None = None
        self._last_pts = -1
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._encode, daemon=True, name="record")
        self._thread.start()

    @property
    def frames(self) -> int:
        return self._writer.frames

    def add(self, rgb: np.ndarray, frame: CapturedFrame) -> None:
        if self._error is not None:
            raise self._error
        if self.from_file:
            pts = frame.index
        else:
            self._start = frame.captured_at if self._start is None else self._start
            pts = round((frame.captured_at - self._start) / self.time_base)
        pts = self._last_pts = max(pts, self._last_pts + 1)
        self._queue.put((rgb, pts))

    def _encode(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._writer.write(item[0], item[1], self.time_base)
                except BaseException as err:  # noqa: BLE001 - raised in the caller's thread by add()/close()
                    self._error = err

    def close(self) -> None:
        """Encode what is queued and finish the file."""
        self._queue.put(None)
        self._thread.join()
        self._writer.close()
        if self._error is not None:
            raise self._error


def run_live(source: FrameSource, styles: Sequence[str], load: Callable[[str], Any], *, record: Path | None = None,
             window: bool = True, max_frames: int | None = None, max_size: int | None = None, stable: bool = False,
             snapshot_dir: Path | None = None, progress: Any = None, quiet: bool = False,
             notice: Callable[[str], None] = lambda message: None,
             should_stop: threading.Event | None = None) -> dict:
    """Translate `source` live until it ends, `max_frames` were shown, q is pressed, Ctrl-C or `should_stop`.

    styles: names the number keys switch between; `load(name)` returns a translator (an object with
        `.translate(frames)` or a callable) and is called once per style, when first needed.
    record: write the translated frames there (H.264 mp4, atomically, when the run ends).
    Returns {"source", "frames", "dropped", "fps", "latency_ms", "record", "status"}.
    """
    if window:
        _check_display()
    if record is not None:
        _check_record_path(Path(record), source)
    from cycletrans.pipelines.video import progress_reporter

    session = _Session(source, styles, load, max_size, stable, snapshot_dir, notice)
    report = progress_reporter(progress, quiet or window, source.name, max_frames or 0)
    should_stop = should_stop or threading.Event()
    started = time.perf_counter()
    with contextlib.ExitStack() as finish:  # a recording appears whole when the run ends, or not at all
        if record is not None:
            session.recorder = Recorder(finish.enter_context(atomic_path(record)), session.width, session.height,
                                        fps=source.fps, from_file=source.kind == "file")
            finish.callback(session.recorder.close)
        try:
            for frame in source:
                keep_going = session.step(frame, window)
                report(session.shown, max_frames)
                if not keep_going or (max_frames and session.shown >= max_frames) or should_stop.is_set():
                    break
        except KeyboardInterrupt:  # the usual way to end a headless live run: keep what was recorded
            pass
        finally:
            report(None, None)
            if window:
                import cv2
                cv2.destroyAllWindows()
    seconds = time.perf_counter() - started
    return {
        "source": source.name, "frames": session.shown, "dropped": source.dropped,
        "fps": round(session.shown / seconds, 2) if seconds > 0 else 0.0,
        "latency_ms": round(session.meter.latency_ms, 1), "record": str(record) if record is not None else None,
        "status": "ok",
    }


class _Session:
    """The per-frame work of a live run and the state it keeps: current style, stabiliser, meter, recorder."""

    def __init__(self, source, styles, load, max_size, stable, snapshot_dir, notice):
        self.styles, self.load, self.notice = list(styles), load, notice
        self.snapshot_dir = snapshot_dir or Path.cwd()
        self.width, self.height = fit_size(source.width, source.height, max_size)
        self.loaded: dict[str, Callable] = {}
        self.current = 0
        self.translate = self._translator(self.styles[0])
        self.stabilizer = None
        if stable:
            from cycletrans.stabilize import TemporalStabilizer
            self.stabilizer = TemporalStabilizer()
        self.recorder: Recorder | None = None
        self.meter, self.shown = Meter(), 0

    def _translator(self, name: str) -> Callable:
        if name not in self.loaded:
            engine = self.load(name)
            self.loaded[name] = engine.translate if hasattr(engine, "translate") else engine
        return self.loaded[name]

    def step(self, frame: CapturedFrame, window: bool) -> bool:
        """Translate, record and show one frame; False when the user asked to quit."""
        import cv2

        rgb = frame.rgb
        if (self.width, self.height) != (rgb.shape[1], rgb.shape[0]):
            rgb = cv2.resize(rgb, (self.width, self.height), interpolation=cv2.INTER_AREA)
        out = np.asarray(self.translate([rgb])[0])
        if self.stabilizer is not None:
            out = self.stabilizer(rgb, out)
        if self.recorder is not None:
            self.recorder.add(out, frame)
        self.meter.tick(frame.captured_at)
        self.shown += 1
        return self._show(rgb, out) if window else True

    def _show(self, rgb: np.ndarray, out: np.ndarray) -> bool:
        import cv2

        name = self.styles[self.current]
        caption = f"{name}  {self.meter.fps:4.1f} fps  {self.meter.latency_ms:4.0f} ms"
        cv2.imshow(WINDOW, _side_by_side(rgb, out, caption))
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27):  # q or Esc
            return False
        if key == ord("s"):
            self.notice(f"snapshot: {_snapshot(rgb, out, self.snapshot_dir, name)}")
        choice = key - ord("1")
        if 0 <= choice < len(self.styles) and choice != self.current:
            self.current = choice
            self.notice(f"style: {self.styles[choice]}")
            self.translate = self._translator(self.styles[choice])
            if self.stabilizer is not None:
                self.stabilizer.reset()
        return True


def _check_record_path(record: Path, source: FrameSource) -> None:
    """Refuse a recording name that would fail only once frames are flowing, or overwrite the source."""
    if record.is_dir() or not record.suffix:
        raise InputError(f"{record}: give the recording a video file name such as out.mp4")
    if source.kind == "file" and record.resolve() == Path(source.source).resolve():
        raise InputError(f"{record}: would overwrite the source; choose another --record name")
    check_encoder(RECORD_CODEC, record.suffix)  # e.g. out.gif or out.txt: one line, not an FFmpeg traceback


def _check_display() -> None:
    """OpenCV's Qt window aborts the whole process without a display; say so first."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise DeviceError("no display for the preview window; use --no-window (with --record to keep the output)")


def _side_by_side(source: np.ndarray, output: np.ndarray, caption: str) -> np.ndarray:
    """Input | output as one BGR image for cv2.imshow, with the caption in the top-left corner."""
    import cv2

    if output.shape != source.shape:
        output = cv2.resize(output, (source.shape[1], source.shape[0]))
    both = cv2.cvtColor(np.hstack([source, output]), cv2.COLOR_RGB2BGR)
    scale = max(0.4, source.shape[0] / 720)
    for color, thickness in (((0, 0, 0), 3), ((255, 255, 255), 1)):  # outlined, readable on any background
        cv2.putText(both, caption, (8, int(24 * scale) + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, color,
                    thickness, cv2.LINE_AA)
    return both


def _snapshot(source: np.ndarray, output: np.ndarray, folder: Path, style: str) -> Path:
    from PIL import Image

    path = Path(folder) / f"snapshot-{style}-{time.strftime('%Y%m%d-%H%M%S')}.png"
    with atomic_path(path) as tmp:
        Image.fromarray(np.hstack([source, output])).save(tmp, format="PNG")
    return path


def open_source(camera: int, source: str | None) -> FrameSource:
    """`--source` when given (camera index, URL or file), else `--camera N`. InputError when it cannot be opened."""
    return FrameSource(source if source is not None else camera)
