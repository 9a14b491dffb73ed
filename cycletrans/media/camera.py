"""Live frame sources through OpenCV: a camera index, a stream URL (rtsp://, http://, ...) or a video file.

A background thread reads the source. For a camera or stream it keeps only the newest frame, so when the model
is slower than the camera, stale frames are dropped and latency stays at one frame instead of growing; a file is
read in full, in order, with nothing dropped. Frames come out as uint8 H×W×3 RGB.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # OpenCV's FFmpeg: no log lines; we say what failed
os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from cycletrans.errors import InputError  # noqa: E402

OPEN_TIMEOUT_MS = 10_000  # a stream URL that answers nothing is given up after this long


@dataclass
class CapturedFrame:
    rgb: np.ndarray
    index: int  # position in the source, counting dropped frames too
    captured_at: float  # time.perf_counter() when it was read (a file's: when handed out), for latency


def source_kind(source: str | int) -> str:
    """'camera' for an index, 'stream' for a URL, 'file' otherwise."""
    if isinstance(source, int) or str(source).isdigit():
        return "camera"
    return "stream" if "://" in str(source) else "file"


class FrameSource:
    """Open `source` (camera index, URL or file path); raises InputError with one line when it cannot be opened or
    gives no frame. Iterate, or call `read()`, for CapturedFrames; None / end of iteration when it ends."""

    def __init__(self, source: str | int):
        self.kind = source_kind(source)
        self.source = int(source) if self.kind == "camera" else str(source)
        self.name = f"camera {self.source}" if self.kind == "camera" else str(self.source)
        if self.kind == "file" and not Path(self.source).is_file():
            raise InputError(f"{self.source}: no such file")
        self._capture = self._open()
        self.fps = float(self._capture.get(cv2.CAP_PROP_FPS) or 0) or None
        ok, first = self._capture.read()
        if not ok or first is None:
            self._capture.release()
            raise InputError(f"{self.name}: opened, but gives no frames")
        self.height, self.width = first.shape[:2]
        self.read_count = 1
        self._first = CapturedFrame(_to_rgb(first), 0, time.perf_counter())
        self._stop = threading.Event()
        self._ended = False
        if self.kind == "file":
            self._queue: queue.Queue = queue.Queue(maxsize=8)
        else:
            self._latest: CapturedFrame | None = None
            self._fresh = threading.Condition()
        self._returned = 0
        self._thread = threading.Thread(target=self._read_loop, daemon=True, name="capture")
        self._thread.start()

    def _open(self) -> cv2.VideoCapture:
        if self.kind == "camera":
            capture = cv2.VideoCapture(self.source)
            what = f"camera {self.source}: cannot be opened (no camera with that index, or it is in use)"
        else:
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, OPEN_TIMEOUT_MS]
            capture = cv2.VideoCapture(self.source, cv2.CAP_FFMPEG, params)
            what = f"{self.source}: cannot be opened as a video stream" if self.kind == "stream" else \
                f"{self.source}: not a readable video"
        if not capture.isOpened():
            capture.release()
            raise InputError(what)
        return capture

    @property
    def dropped(self) -> int:
        """Frames read from a live source but never handed out because a newer one came first."""
        return max(0, self.read_count - self._returned) if self.kind != "file" else 0

    def _read_loop(self) -> None:
        if self.kind == "file":
            self._put_file(self._first)
        else:
            self._put_latest(self._first)
        index = 1
        try:
            while not self._stop.is_set():
                ok, bgr = self._capture.read()
                if not ok or bgr is None:
                    break
                self.read_count += 1
                frame = CapturedFrame(_to_rgb(bgr), index, time.perf_counter())
                index += 1
                if self.kind == "file":
                    if not self._put_file(frame):
                        break
                else:
                    self._put_latest(frame)
        finally:
            # Released here, by the only thread that reads it: close() may give up waiting on a stalled stream,
            # and releasing a VideoCapture in the middle of its read() crashes inside FFmpeg.
            self._capture.release()
            self._ended = True
            if self.kind == "file":
                self._put_file(None)
            else:
                with self._fresh:
                    self._fresh.notify_all()

    def _put_file(self, frame: CapturedFrame | None) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(frame, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _put_latest(self, frame: CapturedFrame) -> None:
        with self._fresh:
            self._latest = frame  # the older one, if never read, is dropped here
            self._fresh.notify_all()

    def read(self) -> CapturedFrame | None:
        """The next frame: for a file, the next in order; live, the newest one not handed out yet (waits for it).
        None when the source has ended."""
        if self.kind == "file":
            while True:
                try:
                    frame = self._queue.get(timeout=0.1)
                except queue.Empty:
                    if self._stop.is_set():
                        return None
                    continue
                if frame is None:
                    self._queue.put(None)  # stay ended for later calls
                else:
                    self._returned += 1
                    frame.captured_at = time.perf_counter()  # read ahead on purpose: its wait is not latency
                return frame
        with self._fresh:
            while self._latest is None:
                if self._ended or self._stop.is_set():
                    return None
                self._fresh.wait(timeout=0.1)
            frame, self._latest = self._latest, None
            self._returned += 1
            return frame

    def __iter__(self):
        while (frame := self.read()) is not None:
            yield frame

    def close(self) -> None:
        """Stop reading; the capture is released by the reading thread as soon as its current read returns."""
        self._stop.set()
        self._thread.join(timeout=2)

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _to_rgb(bgr: np.ndarray) -> np.ndarray:
    if bgr.ndim == 2:
        return cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
