"""`cycletrans live` and its pieces: a file source is read in full and in order, a live source drops stale frames,
recordings hold every translated frame, and a missing camera is one line and exit code 2."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

from clips import clip_frame, decode_all, make_clip, stream_summary, write_negating_model
from cycletrans.errors import InputError
from cycletrans.media.camera import FrameSource, source_kind
from cycletrans.pipelines.live import run_live


def invert(frames):
    return [255 - f for f in frames]


@pytest.fixture
def clip(tmp_path):
    return make_clip(tmp_path / "clip.mp4", size=(96, 64), frames=30, fps=25, audio=False)


def test_source_kinds():
    assert source_kind(0) == source_kind("1") == "camera"
    assert source_kind("rtsp://host/stream") == "stream" and source_kind("clip.mp4") == "file"


def test_file_source_is_read_in_full_and_in_order(clip):
    with FrameSource(clip) as source:
        assert (source.width, source.height, source.fps) == (96, 64, 25)
        time.sleep(0.2)  # a slow consumer must not lose frames of a file
        frames = list(source)
    assert [f.index for f in frames] == list(range(30))
    assert np.abs(frames[7].rgb.astype(int) - clip_frame(7, 96, 64).astype(int)).mean() < 4


def test_live_source_keeps_only_the_newest_frame(clip):
    # file:// makes OpenCV treat the clip as a stream: read as fast as it decodes, like a camera that outruns us
    with FrameSource(f"file://{clip}") as source:
        assert source.kind == "stream"
        seen = []
        for frame in source:
            seen.append(frame.index)
            time.sleep(0.03)  # a model slower than the source
        assert seen == sorted(seen) and len(set(seen)) == len(seen)
        assert len(seen) < 30 and source.dropped == 30 - len(seen)


def test_close_never_releases_a_capture_in_the_middle_of_a_read(clip, monkeypatch):
    """A stalled stream: close() gives up waiting, and the capture is released only once the read returns."""
    import threading

    import cv2

    class StalledStream:
        def __init__(self):
            self.first, self.reading, self.unblock, self.released_while_reading = True, False, threading.Event(), None

        def isOpened(self):
            return True

        def get(self, prop):
            return 25.0

        def read(self):
            if self.first:
                self.first = False
                return True, np.zeros((8, 8, 3), np.uint8)
            self.reading = True
            self.unblock.wait(10)
            self.reading = False
            return False, None

        def release(self):
            if self.released_while_reading is None:
                self.released_while_reading = self.reading

    stream = StalledStream()
    monkeypatch.setattr(FrameSource, "_open", lambda self: stream)
    monkeypatch.setattr(cv2, "cvtColor", lambda image, code: image)
    source = FrameSource("rtsp://stalled")
    assert source.read() is not None
    time.sleep(0.1)
    monkeypatch.setattr(source._thread, "join", lambda timeout=None: None)  # close() gives up at once
    source.close()
    assert stream.released_while_reading is None  # not released under the read
    stream.unblock.set()
    threading.Thread.join(source._thread, 5)
    assert stream.released_while_reading is False  # released once the read returned


def test_run_live_records_every_shown_frame(clip, tmp_path):
    record = tmp_path / "out.mp4"
    with FrameSource(clip) as source:
        summary = run_live(source, ["invert"], lambda name: invert, record=record, window=False, max_frames=20,
                           quiet=True)
    assert summary["frames"] == 20 and summary["record"] == str(record) and summary["dropped"] == 0
    frames, times = decode_all(record)
    assert len(frames) == 20 and times == pytest.approx([i / 25 for i in range(20)])
    assert np.abs(frames[12].astype(int) - (255 - clip_frame(12, 96, 64)).astype(int)).mean() < 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "out.mp4"]  # no temporary left


def test_run_live_switchable_styles_load_lazily(clip):
    loaded = []

    def load(name):
        loaded.append(name)
        return invert

    with FrameSource(clip) as source:
        run_live(source, ["a", "b", "c"], load, window=False, max_frames=3, quiet=True)
    assert loaded == ["a"]


def test_cli_live_file_source_records_20_frames(cli, clip, tmp_path):
    model = write_negating_model(tmp_path / "neg.onnx")
    record = tmp_path / "out.mp4"
    result = cli("live", "--model", model, "--source", clip, "--no-window", "--frames", "20", "--record", record,
                 "--device", "cpu", "--json", "--max-size", "48")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["frames"] == 20 and summary["record"] == str(record)
    info = stream_summary(record)["video"]
    assert info["frames"] == 20 and info["size"] == (48, 32)
    frames, _ = decode_all(record)
    assert frames[0].mean() > 128 > clip_frame(0, 96, 64).mean()  # inverted: the dark clip came out light


def test_cli_live_missing_camera_is_exit_2(cli, tmp_path):
    model = write_negating_model(tmp_path / "neg.onnx")
    result = cli("live", "--model", model, "--camera", "9", "--no-window", "--frames", "1", "--device", "cpu")
    assert result.code == 2
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert lines == ["cycletrans: error: camera 9: cannot be opened (no camera with that index, or it is in use)"]


def test_cli_live_unopenable_sources_are_exit_2(cli, tmp_path):
    model = write_negating_model(tmp_path / "neg.onnx")
    (tmp_path / "junk.mp4").write_bytes(os.urandom(2000))
    for source, message in [(tmp_path / "none.mp4", "no such file"), (tmp_path / "junk.mp4", "not a readable video")]:
        result = cli("live", "--model", model, "--source", source, "--no-window", "--device", "cpu", "-q")
        assert result.code == 2 and message in result.err


def test_cli_live_unusable_record_names_are_exit_2(cli, clip, tmp_path):
    model = write_negating_model(tmp_path / "neg.onnx")
    (tmp_path / "folder").mkdir()
    for record, message in [(tmp_path / "folder", "video file name"), (tmp_path / "out.gif", ".gif"),
                            (tmp_path / "out.txt", ".txt"), (clip, "would overwrite the source")]:
        result = cli("live", "--model", model, "--source", clip, "--no-window", "--device", "cpu", "-q",
                     "--record", record)
        assert result.code == 2 and message in result.err and "Traceback" not in result.err, (record, result.err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "folder", "neg.onnx"]


@pytest.mark.skipif(bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")), reason="has a display")
def test_cli_live_window_without_display_is_exit_2(cli, clip, tmp_path):
    model = write_negating_model(tmp_path / "neg.onnx")
    result = cli("live", "--model", model, "--source", clip, "--device", "cpu")
    assert result.code == 2 and "--no-window" in result.err


def test_missing_file_source_is_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        FrameSource(tmp_path / "nothing.mp4")


def test_preview_is_input_and_output_side_by_side_and_snapshots_are_pngs(tmp_path):
    from PIL import Image

    from cycletrans.pipelines.live import _side_by_side, _snapshot

    source = np.zeros((60, 80, 3), np.uint8)
    source[..., 0] = 200  # red, in RGB
    output = np.full((60, 80, 3), 50, np.uint8)
    both = _side_by_side(source, output, "monet  12.0 fps  80 ms")
    assert both.shape == (60, 160, 3)
    assert tuple(both[50, 40]) == (0, 0, 200) and tuple(both[50, 120]) == (50, 50, 50)  # BGR for OpenCV
    assert (both[:25, :80] != both[50, 40]).any()  # the caption is drawn
    path = _snapshot(source, output, tmp_path, "monet")
    assert path.parent == tmp_path and path.name.startswith("snapshot-monet-")
    assert np.asarray(Image.open(path)).shape == (60, 160, 3)
