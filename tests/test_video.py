"""Video files: frames, timing, rotation, audio and subtitles survive translation; stopping early leaves a playable
partial file; bad inputs are one clear error; the stabiliser reduces flicker without smearing a scene cut."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from clips import SAMPLE_RATE, VFR_STEPS_MS, clip_frame, decode_all, make_clip, stream_summary, write_negating_model
from cycletrans.errors import InputError
from cycletrans.media.video import fit_size, probe_video
from cycletrans.pipelines.video import partial_path, translate_video
from cycletrans.stabilize import TemporalStabilizer

ROOT = Path(__file__).resolve().parents[1]


def invert(frames):
    return [255 - f for f in frames]


def test_translated_video_keeps_frames_rate_duration_and_audio(tmp_path):
    src = make_clip(tmp_path / "in.mp4", size=(322, 178), frames=24, fps=24)
    dst = tmp_path / "out.mp4"
    result = translate_video(invert, src, dst, quiet=True, batch_size=4)
    assert result["status"] == "ok" and result["frames"] == 24 and result["output"] == str(dst)
    assert result["error"] is None and result["fps"] > 0
    json.dumps(result)
    before, after = stream_summary(src), stream_summary(dst)
    assert after["video"]["frames"] == 24 and after["video"]["size"] == (322, 178)
    assert after["video"]["rate"] == before["video"]["rate"] == 24
    assert after["video"]["duration"] == pytest.approx(before["video"]["duration"], abs=1e-3)
    assert after["audio"]["codec"] == "aac" and after["audio"]["sample_rate"] == SAMPLE_RATE
    assert after["audio"]["duration"] == pytest.approx(before["audio"]["duration"], abs=1e-3)
    frames, times = decode_all(dst)
    src_frames, src_times = decode_all(src)
    assert times == pytest.approx(src_times)
    # the pixels are the translator's output (inverted), up to H.264 loss
    assert np.abs(frames[10].astype(int) - (255 - src_frames[10]).astype(int)).mean() < 4
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


def test_audio_packets_are_copied_not_reencoded(tmp_path):
    import av

    src = make_clip(tmp_path / "in.mp4", frames=12)
    dst = tmp_path / "out.mp4"
    translate_video(invert, src, dst, quiet=True)

    def audio_payloads(path):
        with av.open(str(path)) as c:
            return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]

    assert audio_payloads(dst) == audio_payloads(src)


def test_variable_frame_rate_timestamps_are_kept(tmp_path):
    src = make_clip(tmp_path / "vfr.mp4", frames=20, vfr=True)
    dst = tmp_path / "out.mp4"
    translate_video(invert, src, dst, quiet=True, batch_size=3)
    _, times = decode_all(dst)
    expected = np.cumsum((0,) + tuple(VFR_STEPS_MS[i % 4] for i in range(19))) / 1000
    assert len(times) == 20
    assert times == pytest.approx(expected, abs=1e-3)


def test_rotation_metadata_is_kept_and_the_model_sees_upright_frames(tmp_path):
    src = make_clip(tmp_path / "portrait.mp4", size=(96, 64), frames=8, rotation=90, audio=False)
    seen = []

    def record(frames):
        seen.extend(f.shape for f in frames)
        return invert(frames)

    dst = tmp_path / "out.mp4"
    translate_video(record, src, dst, quiet=True)
    assert seen == [(96, 64, 3)] * 8  # upright: coded 96×64 turned by 90°
    info = probe_video(dst)
    assert info.rotation == 90 and (info.width, info.height) == (64, 96)
    out_frames, _ = decode_all(dst)
    in_frames, _ = decode_all(src)
    assert np.abs(out_frames[3].astype(int) - (255 - in_frames[3]).astype(int)).mean() < 4


def test_odd_sizes_keep_their_resolution(tmp_path):
    src = make_clip(tmp_path / "odd.mp4", size=(321, 177), frames=6, audio=False)
    result = translate_video(invert, src, tmp_path / "out.mp4", quiet=True)
    assert stream_summary(tmp_path / "out.mp4")["video"]["size"] == (321, 177)
    assert result["notes"] == ["odd size kept by encoding yuv444p"]
    frames, _ = decode_all(tmp_path / "out.mp4")
    assert len(frames) == 6 and frames[0].shape == (177, 321, 3)


def test_max_size_scales_down_keeping_aspect(tmp_path):
    src = make_clip(tmp_path / "in.mp4", size=(320, 176), frames=4, audio=False)
    translate_video(invert, src, tmp_path / "out.mp4", quiet=True, max_size=160)
    assert stream_summary(tmp_path / "out.mp4")["video"]["size"] == (160, 88)
    assert fit_size(1920, 1080, 640) == (640, 360) and fit_size(100, 50, None) == (100, 50)


def test_subtitles_are_copied(tmp_path):
    import av

    src = make_clip(tmp_path / "in.mp4", frames=6, subtitle=True)
    translate_video(invert, src, tmp_path / "out.mp4", quiet=True)
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert [s.type for s in c.streams] == ["video", "audio", "subtitle"]
        texts = [bytes(p) for p in c.demux(c.streams.subtitles[0]) if p.size]
    assert texts == [b"\x00\x05hello"]
    # Matroska cannot hold mov_text: dropped, and said so
    result = translate_video(invert, src, tmp_path / "out.mkv", quiet=True)
    assert result["notes"] == ["not copied: subtitle mov_text (not storable in .mkv)"]
    assert set(stream_summary(tmp_path / "out.mkv")) == {"video", "audio"}


def test_should_stop_leaves_a_playable_partial_file(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=24)
    dst = tmp_path / "out.mp4"
    stop = threading.Event()
    calls = []

    def slow_invert(frames):
        calls.append(len(frames))
        if len(calls) == 3:
            stop.set()
        return invert(frames)

    result = translate_video(slow_invert, src, dst, quiet=True, batch_size=4, should_stop=stop)
    assert result["status"] == "partial" and result["error"] == "stopped early"
    assert not dst.exists() and Path(result["output"]) == partial_path(dst) == tmp_path / "out.partial.mp4"
    frames, times = decode_all(partial_path(dst))
    assert len(frames) == result["frames"] == 12
    audio = stream_summary(partial_path(dst))["audio"]["duration"]
    assert audio == pytest.approx(12 / 24, abs=0.05)  # the sound stops where the picture does
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.partial.mp4"]


def test_sigint_leaves_a_playable_partial_file(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=60, audio=True)
    dst = tmp_path / "out.mp4"
    script = textwrap.dedent(f"""
        import json, sys, time
        from cycletrans.pipelines.video import translate_video, VideoInterrupted
        def slow(frames):
            print("frame", flush=True)
            time.sleep(0.05)
            return [255 - f for f in frames]
        try:
            translate_video(slow, {str(src)!r}, {str(dst)!r}, quiet=True)
        except VideoInterrupted as stop:
            print(json.dumps(stop.result), flush=True)
            sys.exit(130)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    for _ in range(5):  # let a few frames through
        proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130
    result = json.loads(out.strip().splitlines()[-1])
    assert result["status"] == "partial" and result["error"] == "interrupted"
    assert not dst.exists()
    frames, _ = decode_all(partial_path(dst))
    assert 4 <= len(frames) == result["frames"] < 60  # the 5th was in the model when the signal came


def test_unreadable_inputs_are_input_errors(tmp_path):
    (tmp_path / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(3000))
    (tmp_path / "text.mp4").write_text("not a video")
    sound_only = tmp_path / "sound.m4a"
    _make_audio_only(sound_only)
    for bad, reason in [("corrupt.mp4", "not a readable video"), ("text.mp4", "not a readable video"),
                        ("missing.mp4", "no such file"), ("sound.m4a", "has no video stream")]:
        with pytest.raises(InputError, match=reason):
            translate_video(invert, tmp_path / bad, tmp_path / "out.mp4", quiet=True)
    assert not (tmp_path / "out.mp4").exists()


def test_a_truncated_video_gives_what_it_has_and_says_so(tmp_path):
    full = make_clip(tmp_path / "full.mkv", size=(64, 48), frames=30)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size * 6 // 10])
    result = translate_video(invert, cut, tmp_path / "out.mp4", quiet=True)
    assert result["status"] == "ok" and 0 < result["frames"] < 30
    [note] = result["notes"]  # the estimate comes from the header's duration × rate
    assert re.fullmatch(rf"only {result['frames']} of about (30|31) frames could be decoded \(truncated file\?\)", note)
    assert len(decode_all(tmp_path / "out.mp4")[0]) == result["frames"]


def test_refuses_to_overwrite_the_input_and_unknown_codecs(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=2, audio=False)
    with pytest.raises(InputError, match="overwrite the input"):
        translate_video(invert, src, src, quiet=True)
    with pytest.raises(InputError, match="not available"):
        translate_video(invert, src, tmp_path / "out.mp4", codec="no_such_codec", quiet=True)
    with pytest.raises(InputError, match="cannot be stored in a .mp4 file"):
        translate_video(invert, src, tmp_path / "out.mp4", codec="prores_ks", quiet=True)
    with pytest.raises(InputError, match="cannot write .xyz videos"):
        translate_video(invert, src, tmp_path / "out.xyz", quiet=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_other_encoders_and_containers(tmp_path):
    src = make_clip(tmp_path / "in.mp4", size=(64, 48), frames=5)
    for name, codec in [("out.mkv", "h264"), ("out.mov", "mpeg4")]:  # mpeg4 has no crf: encoder defaults
        result = translate_video(invert, src, tmp_path / name, codec=codec, quiet=True)
        assert result["frames"] == 5
        summary = stream_summary(tmp_path / name)
        assert summary["video"]["codec"] == ("h264" if codec == "h264" else "mpeg4") and "audio" in summary


def test_translator_errors_propagate_and_leave_nothing(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=12, audio=False)

    def broken(frames):
        raise RuntimeError("model exploded")

    with pytest.raises(RuntimeError, match="model exploded"):
        translate_video(broken, src, tmp_path / "out.mp4", quiet=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_an_error_before_the_stages_start_closes_the_writer(tmp_path, monkeypatch):
    import cycletrans.pipelines.video as pipeline
    from cycletrans.media.video import VideoWriter

    src = make_clip(tmp_path / "in.mp4", frames=4, audio=False)
    closed = []
    real_close = VideoWriter.close
    monkeypatch.setattr(VideoWriter, "close", lambda self: (closed.append(self.path), real_close(self)))

    def unopenable(*args):
        raise OSError("too many open files")

    monkeypatch.setattr(pipeline, "SidePackets", unopenable)
    with pytest.raises(OSError, match="too many open files"):
        translate_video(invert, src, tmp_path / "out.mp4", quiet=True)
    assert len(closed) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_progress_callback_counts_every_frame(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=10, audio=False)
    seen = []
    translate_video(invert, src, tmp_path / "out.mp4", progress=lambda done, total: seen.append((done, total)))
    assert seen == [(i, 10) for i in range(1, 11)]


# -- temporal stability ----------------------------------------------------------------------------------------

def _panning_frames(n: int, size=(96, 128), seed=0) -> list[np.ndarray]:
    """A textured scene panning right by 2 px per frame."""
    import cv2

    rng = np.random.default_rng(seed)
    h, w = size
    world = cv2.GaussianBlur(rng.integers(0, 256, (h, w + 2 * n, 3), dtype=np.uint8), (0, 0), 3)
    world = cv2.normalize(world, None, 0, 255, cv2.NORM_MINMAX)
    return [np.ascontiguousarray(world[:, 2 * (n - i): 2 * (n - i) + w]) for i in range(n)]


def _flicker(frames: list[np.ndarray]) -> float:
    """Mean absolute change between consecutive frames after undoing the known 2 px pan (border excluded)."""
    return float(np.mean([np.abs(b[:, 10:-10].astype(float) - a[:, 8:-12].astype(float)).mean()
                          for a, b in zip(frames, frames[1:])]))


def test_stabilizer_reduces_flicker_of_a_noisy_translator():
    rng = np.random.default_rng(1)
    sources = _panning_frames(16)
    noisy = [np.clip(f.astype(int) + rng.normal(0, 12, f.shape), 0, 255).astype(np.uint8) for f in sources]
    stabilizer = TemporalStabilizer()
    steady = [stabilizer(src, out) for src, out in zip(sources, noisy)]
    assert _flicker(steady) < 0.6 * _flicker(noisy)
    assert np.abs(steady[-1].astype(int) - sources[-1].astype(int)).mean() < 8  # no drift from the content


def test_stabilizer_does_not_smear_a_scene_cut():
    first = _panning_frames(4, seed=0)
    second = _panning_frames(4, seed=7)
    stabilizer = TemporalStabilizer()
    for frame in first:
        stabilizer(frame, 255 - frame)
    after_cut = stabilizer(second[0], 255 - second[0])
    assert stabilizer.cuts == 1
    assert np.array_equal(after_cut, 255 - second[0])


def test_stabilizer_leaves_no_trail_behind_a_moving_object():
    background = _panning_frames(1, size=(96, 160))[0]
    stabilizer = TemporalStabilizer()
    for i in range(10):
        frame = background.copy()
        frame[30:60, 10 + 8 * i: 40 + 8 * i] = (250, 240, 20)  # a yellow block moving right, 8 px per frame
        out = stabilizer(frame, frame)  # a flicker-free translator: the ideal output is the frame itself
    uncovered = (slice(30, 60), slice(10 + 8 * 8, 10 + 8 * 9))  # where the block was a frame ago
    assert np.abs(out[uncovered].astype(int) - frame[uncovered].astype(int)).mean() < 12
    assert np.abs(out.astype(int) - frame.astype(int)).mean() < 3


def test_stabilizer_accepts_outputs_smaller_than_the_source():
    import cv2

    stabilizer = TemporalStabilizer()
    for frame in _panning_frames(4, size=(96, 128)):
        small = cv2.resize(255 - frame, (64, 48), interpolation=cv2.INTER_AREA)
        out = stabilizer(frame, small)
        assert out.shape == (48, 64, 3)
    assert np.abs(out.astype(int) - small.astype(int)).mean() < 6


def test_stable_video_runs_end_to_end(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=10, audio=False)
    result = translate_video(invert, src, tmp_path / "out.mp4", stable=True, quiet=True)
    assert result["status"] == "ok" and result["frames"] == 10
    frames, _ = decode_all(tmp_path / "out.mp4")
    assert np.abs(frames[5].astype(int) - (255 - clip_frame(5, 322, 178)).astype(int)).mean() < 8


def _make_audio_only(path: Path) -> None:
    import av

    with av.open(str(path), "w") as out:
        sound = out.add_stream("aac", rate=SAMPLE_RATE)
        sound.layout = "mono"
        chunk = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="flt", layout="mono")
        chunk.sample_rate, chunk.pts = SAMPLE_RATE, 0
        for packet in list(sound.encode(chunk)) + list(sound.encode()):
            out.mux(packet)


def test_a_failing_stabilizer_stage_is_raised_not_hung(tmp_path, monkeypatch):
    from cycletrans import stabilize

    calls = []

    def broken(self, source, translated):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("flow exploded")
        return translated

    monkeypatch.setattr(stabilize.TemporalStabilizer, "__call__", broken)
    src = make_clip(tmp_path / "in.mp4", frames=20, audio=False)
    with pytest.raises(RuntimeError, match="flow exploded"):
        translate_video(invert, src, tmp_path / "out.mp4", stable=True, quiet=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


# -- through `cycletrans apply` ----------------------------------------------------------------------------------

def test_apply_folder_reports_and_skips_a_corrupt_video(cli, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    make_clip(folder / "good.mp4", size=(64, 48), frames=6)
    (folder / "broken.mp4").write_bytes(os.urandom(3000))
    model = write_negating_model(tmp_path / "neg.onnx")
    result = cli("apply", folder, "--model", model, "--device", "cpu", "--json", "-q")
    assert result.code == 1
    items = {Path(r["input"]).name: r for r in map(json.loads, result.out.splitlines())}
    assert items["good.mp4"]["status"] == "ok" and items["good.mp4"]["frames"] == 6
    assert items["broken.mp4"]["status"] == "failed" and "not a readable video" in items["broken.mp4"]["error"]
    assert Path(items["good.mp4"]["output"]) == folder / "good.neg.mp4"
    assert stream_summary(folder / "good.neg.mp4")["audio"]["sample_rate"] == SAMPLE_RATE


def test_apply_sigint_keeps_a_playable_partial_video(tmp_path):
    src = make_clip(tmp_path / "in.mp4", size=(96, 64), frames=150, audio=True)
    model = write_negating_model(tmp_path / "slow.onnx", slow=True)
    dst = tmp_path / "out.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "cycletrans", "apply", str(src), "--model", str(model), "-o",
                             str(dst), "--device", "cpu", "-q"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.time() + 60
    while not any(".partial-" in p.name for p in tmp_path.iterdir()) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # some frames through the slow model
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err  # EXIT_INTERRUPTED
    assert f"kept in {partial_path(dst)}" in err and "Traceback" not in err
    assert not dst.exists()
    frames, times = decode_all(partial_path(dst))
    assert 0 < len(frames) < 150
    assert stream_summary(partial_path(dst))["audio"]["duration"] == pytest.approx(times[-1] + 1 / 24, abs=0.05)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.partial.mp4", "slow.onnx"]
