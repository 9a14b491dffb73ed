"""Translate a video file: decode → translate (batched) → [stabilise] → encode, as stages joined by bounded
queues, so that the model never waits for the disk and memory stays flat however long the video is.

    decode thread ─► caller's thread: translator(batch) ─► [stabilise thread] ─► encode thread: encode frames,
                                                                                  interleave copied audio/subtitles

Ctrl-C (or `should_stop`) stops reading; what was already translated is encoded and the file is finished and
kept as `<name>.partial<ext>` beside the requested output, playable, with its audio cut at the same point.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from cycletrans.errors import CycletransError, InputError
from cycletrans.fsutil import atomic_path
from cycletrans.media.video import SidePackets, TimedFrame, VideoReader, VideoWriter, check_encoder

Frames = Sequence[np.ndarray]
Translator = Callable[[Frames], list]  # or any object with .translate(frames)

_END = object()  # end-of-stream marker on the queues


class VideoInterrupted(KeyboardInterrupt):
    """Ctrl-C during a video: raised after the partial file was saved; `result` describes it."""

    def __init__(self, result: dict):
        super().__init__(f"interrupted after {result['frames']} frames (kept in {result['output']})")
        self.result = result


class _Stopped(Exception):
    """Internal: the run ended early; the partial file is already in place."""


def partial_path(dst: Path) -> Path:
    """Where an interrupted run keeps what it did: `out.mp4` → `out.partial.mp4`."""
    return dst.with_name(f"{dst.stem}.partial{dst.suffix}")


def translate_video(engine: Any, src: str | os.PathLike, dst: str | os.PathLike, *, stable: bool = False,
                    codec: str = "libx264", crf: int = 18, max_size: int | None = None, progress: Any = None,
                    quiet: bool = False, batch_size: int | None = None,
                    should_stop: threading.Event | None = None) -> dict:
    """Translate every frame of `src` with `engine` and write `dst`, keeping frame count, timestamps, rotation
    and every audio and subtitle stream (copied, not re-encoded).

    engine: an object with `.translate(frames) -> frames` (cycletrans.engine.Engine) or such a callable.
    progress: a rich Progress (a task is added to it), a callable `(done, total)`, or None for a bar of our own
        on stderr unless `quiet`.
    should_stop: set it (from another thread) to stop early, like Ctrl-C but without raising.

    Returns {"input", "output", "status": "ok"|"partial", "frames", "size", "fps", "seconds", "error", "notes"}.
    Raises InputError for a missing, unreadable or unsupported input or codec; VideoInterrupted (a
    KeyboardInterrupt) on Ctrl-C, after the partial file was saved.
    """
    src, dst = Path(src), Path(dst)
    translate = engine.translate if hasattr(engine, "translate") else engine
    batch = max(1, batch_size or getattr(engine, "batch_size", 1) or 1)
    if dst.suffix == "":
        raise InputError(f"{dst}: give the output a video extension such as .mp4")
    if src.exists() and dst.exists() and dst.samefile(src) or partial_path(dst).resolve() == src.resolve():
        raise InputError(f"{dst}: would overwrite the input; choose another output name")
    check_encoder(codec, dst.suffix)
    started = time.perf_counter()
    with VideoReader(src, max_size=max_size) as reader:
        run = _Run(reader, translate, batch, stable, progress, quiet, should_stop or threading.Event())
        try:
            with atomic_path(dst) as tmp:
                writer = VideoWriter(tmp, reader.width, reader.height, rate=reader.info.rate,
                                     time_base=reader.info.time_base, codec=codec, crf=crf, like=reader)
                run.execute(writer)
                if run.stopped:
                    if run.done == 0:
                        raise _Stopped  # nothing worth keeping
                    with atomic_path(partial_path(dst)) as kept:
                        os.replace(tmp, kept)
                    raise _Stopped
            output, status = dst, "ok"
        except _Stopped:
            output, status = (partial_path(dst) if run.done else None), "partial"
    seconds = time.perf_counter() - started
    notes = list(run.notes)
    if reader.damaged:
        notes.append(f"{reader.damaged} damaged packets skipped")
    if status == "ok" and run.total and run.done < 0.95 * run.total - 1:  # the header promised more
        notes.append(f"only {run.done} of about {run.total} frames could be decoded (truncated file?)")
    result = {
        "input": str(src), "output": str(output) if output else None, "status": status, "frames": run.done,
        "size": [reader.width, reader.height],
        "fps": round(run.done / seconds, 2) if seconds > 0 else 0.0, "seconds": round(seconds, 3),
        "error": None if status == "ok" else "interrupted" if run.interrupted else "stopped early", "notes": notes,
    }
    if run.interrupted:
        raise VideoInterrupted(result)
    return result


class _Run:
    """One video's three stages. The translator runs in the caller's thread, so Ctrl-C lands there."""

    def __init__(self, reader: VideoReader, translate: Translator, batch: int, stable: bool, progress: Any,
                 quiet: bool, should_stop: threading.Event):
        self.reader, self.translate, self.batch = reader, translate, batch
        self.should_stop = should_stop
        self.stabilizer = None
        if stable:
            from cycletrans.stabilize import TemporalStabilizer
            self.stabilizer = TemporalStabilizer()
        self.total = reader.info.frames or round((reader.info.duration or 0) * float(reader.info.rate or 0))
        self.report = progress_reporter(progress, quiet, reader.path.name, self.total)
        self.done = 0
        self.stopped = self.interrupted = False
        self.notes: list[str] = []
        self._halt = threading.Event()  # tells the decoder to stop reading
        self._failed = threading.Event()  # a stage raised: the others give up instead of waiting on it
        self._encoder: threading.Thread | None = None
        self._failure: BaseException | None = None

    def execute(self, writer: VideoWriter) -> None:
        decoded: queue.Queue = queue.Queue(maxsize=2 * self.batch + 2)
        translated: queue.Queue = queue.Queue(maxsize=2 * self.batch + 2)
        try:
            side = SidePackets(self.reader.path, self.reader.side_streams())
        except BaseException:
            writer.close()  # no encode thread will: the output container must not stay open
            raise
        stages = [threading.Thread(target=self._guard, args=(self._decode, decoded), name="decode")]
        to_encode = translated
        if self.stabilizer is not None:  # a stage of its own: at 1080p it costs about as much as encoding
            to_encode = queue.Queue(maxsize=2 * self.batch + 2)
            stages.append(threading.Thread(target=self._guard, args=(self._stabilize, translated, to_encode),
                                           name="stabilize"))
        stages.append(threading.Thread(target=self._guard, args=(self._encode, to_encode, writer, side),
                                       name="encode"))
        decoder, consumer, encoder = stages[0], stages[1], stages[-1]
        self._encoder = encoder
        for stage in stages:
            stage.daemon = True
            stage.start()
        try:
            self._translate_all(decoded, translated)
        except KeyboardInterrupt:
            self.interrupted = self.stopped = True
        finally:  # also on a translator error: the writer finishes what it was given and closes the file
            self._halt.set()
            _put(translated, _END, lambda: not consumer.is_alive())
            self._join(encoder)
            _drain(decoded)
            decoder.join(timeout=5)
            side.close()
            self.report(None, None)
        if self._failure is not None:
            raise self._failure
        self.notes += [f"not copied: {stream}" for stream in writer.notes.dropped_streams]
        if writer.notes.padded_to:
            self.notes.append("odd size padded to %dx%d for %s" % (*writer.notes.padded_to, writer.pixel_format))
        elif writer.pixel_format != "yuv420p":
            self.notes.append(f"odd size kept by encoding {writer.pixel_format}")

    def _join(self, thread: threading.Thread) -> None:
        """Wait for the writer to finish the file, even through more Ctrl-C presses."""
        while thread.is_alive():
            try:
                thread.join(timeout=0.1)
            except KeyboardInterrupt:
                self.interrupted = self.stopped = True

    def _guard(self, stage, *args) -> None:
        """Run a stage in a thread; an exception there stops the others and is raised in the caller's thread."""
        try:
            stage(*args)
        except BaseException as err:  # noqa: BLE001 - re-raised by execute()
            if self._failure is None:
                self._failure = err
            self._failed.set()
            self._halt.set()

    def _decode(self, decoded: queue.Queue) -> None:
        try:
            for frame in self.reader:
                if not _put(decoded, frame, self._halt.is_set):
                    return
        except CycletransError:
            raise
        except Exception as err:  # an FFmpeg error in mid-file: this video fails with a reason, the batch goes on
            raise InputError(f"{self.reader.path}: decoding failed after {self.done} frames ({err})") from None
        finally:
            _put(decoded, _END, self._halt.is_set)

    def _translate_all(self, decoded: queue.Queue, translated: queue.Queue) -> None:
        finished = False
        while not finished:
            batch: list[TimedFrame] = []
            while len(batch) < self.batch:
                item = _get(decoded, self._halt)
                if item is _END:
                    finished = True
                    break
                batch.append(item)
            if self.should_stop.is_set():
                self.stopped = True
                return
            if self._failed.is_set():
                return  # execute() raises the stage's error
            if batch:
                outputs = self.translate([frame.rgb for frame in batch])
                for frame, out in zip(batch, outputs):
                    _put(translated, (frame, np.asarray(out)), self._failed.is_set)

    def _stabilize(self, translated: queue.Queue, steadied: queue.Queue) -> None:
        try:
            while (item := translated.get()) is not _END:
                frame, out = item
                _put(steadied, (frame, self.stabilizer(frame.rgb, out)), self._failed.is_set)
        finally:  # the writer must hear the end even if this stage failed
            _put(steadied, _END, lambda: not self._encoder.is_alive())

    def _encode(self, translated: queue.Queue, writer: VideoWriter, side: SidePackets) -> None:
        end = 0.0
        try:
            while True:
                item = translated.get()
                if item is _END:
                    break
                frame, out = item
                writer.write(out, frame.pts, frame.time_base, frame.duration)
                end = float((frame.pts + frame.duration) * frame.time_base)
                for packet in side.until(frame.seconds):
                    writer.mux_side(packet)
                self.done += 1
                self.report(self.done, self.total)
            for packet in side.until(end if self.stopped else None):
                writer.mux_side(packet)
        finally:
            writer.close()


def _put(q: queue.Queue, item, give_up: Callable[[], bool]) -> bool:
    """Put, waking up now and then to give up when told to (so a dead consumer cannot hang us)."""
    while True:
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            if give_up():
                return False


def _get(q: queue.Queue, halt: threading.Event):
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if halt.is_set():
                return _END


def _drain(q: queue.Queue) -> None:
    while True:
        try:
            q.get_nowait()
        except queue.Empty:
            return


def progress_reporter(progress: Any, quiet: bool, name: str, total: int) -> Callable[[int | None, int | None], None]:
    """A function `report(done, total)` (`report(None, None)` ends it) over a rich Progress (a task is added to
    it; the frame rate is shown in the task's description, so any bar layout shows it), a plain callable, or,
    for None, a bar of our own on stderr unless `quiet`."""
    if callable(progress) and not hasattr(progress, "add_task"):
        return lambda done, total_: done is not None and progress(done, total_)
    own = False
    if progress is None:
        if quiet:
            return lambda done, total_: None
        from cycletrans.cli.app import make_progress  # the shared look of every cycletrans progress bar
        progress, own = make_progress(quiet), True
        progress.start()
    task = progress.add_task(name, total=total or None)
    started = time.perf_counter()

    def report(done, total_):
        if done is None:
            if own:
                progress.stop()
            else:
                progress.remove_task(task)  # a batch's bar keeps only its own line when this video is done
            return
        fps = done / max(time.perf_counter() - started, 1e-6)
        progress.update(task, completed=done, description=f"{name} {fps:5.1f} fps")

    return report
