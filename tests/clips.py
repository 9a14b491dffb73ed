"""Short synthetic video clips for the video and live tests, made with PyAV: a gradient with a moving square,
optionally a 440 Hz AAC sine track, a mov_text subtitle, variable frame timing and rotation metadata."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

SAMPLE_RATE = 44100
VFR_STEPS_MS = (33, 50, 80, 20)  # frame-to-frame gaps of the variable-rate clip


def clip_frame(i: int, width: int, height: int) -> np.ndarray:
    """Frame i: a colour gradient with a yellow square moving right by 4 px per frame."""
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.zeros((height, width, 3), np.uint8)
    img[..., 0] = xx * 255 // max(1, width - 1)
    img[..., 1] = yy * 255 // max(1, height - 1)
    img[..., 2] = 60
    x = 4 + 4 * i
    img[height // 4: height // 4 + height // 3, x: x + width // 6] = (255, 255, 0)
    return img


def make_clip(path: Path, size=(322, 178), frames: int = 24, fps: int = 24, *, audio: bool = True,
              vfr: bool = False, rotation: int = 0, subtitle: bool = False) -> Path:
    width, height = size
    out = av.open(str(path), "w")
    video = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
    odd = width % 2 or height % 2
    video.width, video.height, video.pix_fmt = width, height, "yuv444p" if odd else "yuv420p"
    time_base = Fraction(1, 1000) if vfr else Fraction(1, fps)
    video.codec_context.time_base = time_base
    if rotation:
        video.set_display_rotation(rotation)
    sound = out.add_stream("aac", rate=SAMPLE_RATE) if audio else None
    if sound is not None:
        sound.layout = "mono"
    text = None
    if subtitle:
        text = out.add_mux_stream("mov_text")
        text.time_base = Fraction(1, 1000)
    pts = 0
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(clip_frame(i, width, height), format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        pts += VFR_STEPS_MS[i % len(VFR_STEPS_MS)] if vfr else 1
        for packet in video.encode(frame):
            out.mux(packet)
    for packet in video.encode():
        out.mux(packet)
    seconds = float(pts * time_base)
    if sound is not None:
        total = int(SAMPLE_RATE * seconds)
        for start in range(0, total, 1024):
            t = np.arange(start, min(total, start + 1024)) / SAMPLE_RATE
            samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
            chunk = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
            chunk.sample_rate, chunk.pts = SAMPLE_RATE, start
            for packet in sound.encode(chunk):
                out.mux(packet)
        for packet in sound.encode():
            out.mux(packet)
    if text is not None:
        body = b"hello"
        packet = av.Packet(len(body).to_bytes(2, "big") + body)
        packet.stream, packet.pts, packet.dts, packet.duration = text, 0, 0, 500
        packet.time_base = Fraction(1, 1000)
        out.mux(packet)
    out.close()
    return path


def decode_all(path: Path) -> tuple[list[np.ndarray], list[float]]:
    """Upright RGB frames and their times in seconds, via cycletrans' own reader."""
    from cycletrans.media.video import VideoReader

    with VideoReader(path) as reader:
        frames = list(reader)
    return [f.rgb for f in frames], [f.seconds for f in frames]


def stream_summary(path: Path) -> dict:
    """Per stream type: codec, duration in seconds, rate; and the video's frame count and rotation."""
    with av.open(str(path)) as container:
        summary = {}
        for stream in container.streams:
            duration = float(stream.duration * stream.time_base) if stream.duration else None
            entry = {"codec": stream.codec_context.name if stream.codec_context else None, "duration": duration}
            if stream.type == "audio":
                entry["sample_rate"] = stream.codec_context.sample_rate
            if stream.type == "video":
                entry["rate"] = stream.average_rate
                entry["frames"] = stream.frames
                entry["size"] = (stream.codec_context.width, stream.codec_context.height)
            summary.setdefault(stream.type, entry)
        return summary


def write_negating_model(path, slow: bool = False):
    """A tiny ONNX 'generator' honouring the export contract: NCHW float in [-1, 1] → its negation (an inverted
    image), so the CLI tests exercise the real Engine without torch. `slow` adds an identity 41×41 convolution
    (tens of ms a frame) so that a test can interrupt a run mid-way."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, "H", "W"])
    nodes, weights = [helper.make_node("Neg", ["input"], ["negated" if slow else "output"])], []
    if slow:
        kernel = np.zeros((3, 3, 41, 41), np.float32)
        kernel[[0, 1, 2], [0, 1, 2], 20, 20] = 1.0
        weights.append(numpy_helper.from_array(kernel, "identity"))
        nodes.append(helper.make_node("Conv", ["negated", "identity"], ["output"], pads=[20, 20, 20, 20]))
    graph = helper.make_graph(nodes, "negate", [x], [y], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path
