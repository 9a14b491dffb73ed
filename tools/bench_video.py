"""Video benchmark: is the pipeline as fast as the model, and does --stable remove flicker, at what cost?

    .venv/bin/python tools/bench_video.py [--ngf 32 --blocks 6 --size 256x192 --frames 48 --device cpu]

1. Speed. A random-weight ResNet generator (the paper's architecture, smaller ngf by default so a CPU run takes
   seconds) is exported to ONNX and run by cycletrans.engine.Engine on a synthetic clip. "model only" times
   Engine.translate on the clip's frames already decoded in memory; "end to end" times translate_video on the
   file (decode + translate + encode + audio copy). Goal: end to end >= 90% of model only.
2. Flicker. A trained generator flickers because small input changes flip its textures and colours; a random one
   barely does. So the translator here is the same generator made noisy per frame: the input gets Gaussian noise
   (sigma 6 grey levels), the output a random colour cast (sigma 6) and a random low-frequency blotch field
   (sigma 8): visible, per-frame, uncorrelated -- what flicker looks like. Flicker score: the mean absolute change
   between consecutive *output* frames after warping the previous one to the current by the motion of the
   *input* (Farneback flow, a different algorithm from the DIS flow --stable uses, over pixels whose
   forward-backward flow agrees within 1 px), divided by the same change of the input frames. 1.0 = the
   output changes as much as the input does along the motion. Also: the mean error against the noise-free
   output of the same generator (lower = closer to what a flicker-free model would give).
   Goal: --stable at least halves the score at no more than 30% fps cost.
Figures are ratios measured side by side in one run; absolute fps depend on the machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def make_scene_clip(path: Path, width: int, height: int, frames: int, fps: int = 24) -> Path:
    """A textured world panning diagonally, a disc crossing it (occlusions), and a 440 Hz AAC track."""
    import av

    rng = np.random.default_rng(0)
    world = np.zeros((height + 4 * frames, width + 4 * frames, 3), np.float32)
    for sigma, amount in ((24, 90), (6, 50), (1.5, 25)):  # textures at three scales, like a photo
        noise = rng.normal(0, 1, world.shape).astype(np.float32)
        world += cv2.GaussianBlur(noise, (0, 0), sigma) * amount * sigma ** 0.5
    world = np.clip(world - world.mean() + 120, 0, 255).astype(np.uint8)
    out = av.open(str(path), "w")
    video = out.add_stream("libx264", rate=fps, options={"crf": "12"})
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    sound = out.add_stream("aac", rate=44100)
    for i in range(frames):
        frame = world[2 * i: 2 * i + height, 3 * i: 3 * i + width].copy()
        cx = int(width * (0.1 + 0.8 * i / frames))
        cv2.circle(frame, (cx, height // 2), height // 6, (230, 200, 40), -1, cv2.LINE_AA)
        vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
        vf.pts = i
        for packet in video.encode(vf):
            out.mux(packet)
    for packet in video.encode():
        out.mux(packet)
    samples = int(44100 * frames / fps)
    for start in range(0, samples, 1024):
        t = np.arange(start, min(samples, start + 1024)) / 44100
        chunk = av.AudioFrame.from_ndarray((0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None],
                                           format="fltp", layout="mono")
        chunk.sample_rate, chunk.pts = 44100, start
        for packet in sound.encode(chunk):
            out.mux(packet)
    for packet in sound.encode():
        out.mux(packet)
    out.close()
    return path


def export_random_generator(path: Path, ngf: int, blocks: int) -> Path:
    import torch

    from cycletrans.export import export_generator
    from cycletrans.nets import ResnetGenerator, init_weights

    torch.manual_seed(0)
    net = init_weights(ResnetGenerator(ngf=ngf, n_blocks=blocks)).eval()
    return export_generator(net, path, metadata={"style": "bench", "direction": "forward"})


def colour_style(frame: np.ndarray) -> np.ndarray:
    """A stand-in for a well-trained generator: a fixed colour grading, pointwise, so perfectly stable in time."""
    grading = np.array([[0.9, 0.3, 0.0], [0.1, 0.8, 0.2], [0.0, 0.3, 0.7]], np.float32)
    return np.clip(255 * ((frame.astype(np.float32) / 255) @ grading.T) ** 0.8, 0, 255)


class Flickering:
    """Wraps a translator and makes it flicker per frame the way trained generators do: a colour cast
    (sigma 6 grey levels), low-frequency blotches (sigma 8) and fine texture noise (sigma 6, ~2 px grain), new
    every frame. `base` is the engine (a real generator) or colour_style."""

    def __init__(self, base, seed: int = 0):
        self.base, self.seed = base, seed
        self.rng = np.random.default_rng(seed)

    def rewind(self) -> "Flickering":
        self.rng = np.random.default_rng(self.seed)  # the same noise again, for a side-by-side comparison
        return self

    def __call__(self, frames):
        outs = self.base.translate(frames) if hasattr(self.base, "translate") else [self.base(f) for f in frames]
        return [self._perturb(np.asarray(out, np.float32)) for out in outs]

    def _perturb(self, out: np.ndarray) -> np.ndarray:
        h, w = out.shape[:2]
        blotches = cv2.resize(self.rng.normal(0, 8, (4, 5, 3)).astype(np.float32), (w, h),
                              interpolation=cv2.INTER_CUBIC)
        grain = cv2.GaussianBlur(self.rng.normal(0, 1, (h, w, 3)).astype(np.float32), (0, 0), 1.0) * (6 / 0.28)
        return np.clip(out + self.rng.normal(0, 6, 3) + blotches + grain, 0, 255).astype(np.uint8)


def warped_change(frames: list[np.ndarray], inputs: list[np.ndarray]) -> float:
    """Mean |frame_t - warp(frame_t-1)| over flow-consistent pixels, with the flow of `inputs` (Farneback)."""
    total, count = 0.0, 0
    for t in range(1, len(frames)):
        g0 = cv2.cvtColor(inputs[t - 1], cv2.COLOR_RGB2GRAY)
        g1 = cv2.cvtColor(inputs[t], cv2.COLOR_RGB2GRAY)
        back = cv2.calcOpticalFlowFarneback(g1, g0, None, 0.5, 4, 21, 5, 7, 1.5, 0)  # t → t-1
        fwd = cv2.calcOpticalFlowFarneback(g0, g1, None, 0.5, 4, 21, 5, 7, 1.5, 0)   # t-1 → t
        h, w = g1.shape
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        mx, my = gx + back[..., 0], gy + back[..., 1]
        fwd_at = cv2.remap(fwd, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        consistent = (np.hypot(*(back + fwd_at).transpose(2, 0, 1)) < 1.0) & (mx >= 0) & (mx <= w - 1) & \
            (my >= 0) & (my <= h - 1)
        warped = cv2.remap(frames[t - 1].astype(np.float32), mx, my, cv2.INTER_LINEAR)
        diff = np.abs(frames[t].astype(np.float32) - warped).mean(axis=2)
        total += float(diff[consistent].sum())
        count += int(consistent.sum())
    return total / max(count, 1)


def decoded(path: Path) -> list[np.ndarray]:
    from cycletrans.media.video import VideoReader

    with VideoReader(path) as reader:
        return [f.rgb for f in reader]


class Busy:
    """Counts the seconds a translator spends translating: in an end-to-end run, busy / wall time is how much
    of the time the model was working rather than waiting for decode or encode (1.0 = never waited)."""

    def __init__(self, engine):
        self.engine, self.seconds = engine, 0.0
        self.batch_size = engine.batch_size

    def translate(self, frames):
        start = time.perf_counter()
        try:
            return self.engine.translate(frames)
        finally:
            self.seconds += time.perf_counter() - start


def timed_video(translator, src: Path, dst: Path, **options) -> dict:
    from cycletrans.pipelines.video import translate_video

    return translate_video(translator, src, dst, quiet=True, **options)


def stabilizer_ms(width: int, height: int, frames: int = 30) -> float:
    """The stabiliser's own cost per frame (it runs in the writer thread, beside the model)."""
    from cycletrans.stabilize import TemporalStabilizer

    scene = make_scene_frames(width, height, frames)
    stabilizer = TemporalStabilizer()
    start = time.perf_counter()
    for frame in scene:
        stabilizer(frame, frame)
    return 1000 * (time.perf_counter() - start) / frames


def make_scene_frames(width: int, height: int, frames: int) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    world = cv2.GaussianBlur(rng.integers(0, 256, (height + 2 * frames, width + 3 * frames, 3), np.uint8), (0, 0), 2)
    return [np.ascontiguousarray(world[2 * i: 2 * i + height, 3 * i: 3 * i + width]) for i in range(frames)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ngf", type=int, default=32)
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--size", default="256x192", help="clip size WxH")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3, help="speed runs alternate this many times; best kept")
    args = parser.parse_args()
    width, height = map(int, args.size.lower().split("x"))

    from cycletrans.engine import Engine

    work = Path(tempfile.mkdtemp(prefix="bench_video_"))
    clip = make_scene_clip(work / "clip.mp4", width, height, args.frames)
    model = export_random_generator(work / "g.onnx", args.ngf, args.blocks)
    engine = Engine(model, device=args.device, batch_size=args.batch)
    frames = decoded(clip)
    engine.translate(frames[:2])  # warm-up: session set-up and first-run allocations are not the pipeline
    print(f"clip {width}x{height}, {len(frames)} frames + AAC; generator ngf={args.ngf} blocks={args.blocks} "
          f"(random weights); engine {engine.provider}, batch {args.batch}")

    print("\n-- speed --")
    model_fps, e2e_fps, stable_fps, busy = [], [], [], []
    for _ in range(args.repeats):  # interleaved, so a busy neighbour slows all three alike
        start = time.perf_counter()
        for i in range(0, len(frames), args.batch):
            engine.translate(frames[i:i + args.batch])
        model_fps.append(len(frames) / (time.perf_counter() - start))
        timing = Busy(engine)
        result = timed_video(timing, clip, work / "plain.mp4")
        e2e_fps.append(result["fps"])
        busy.append(timing.seconds / result["seconds"])
        stable_fps.append(timed_video(engine, clip, work / "stable.mp4", stable=True)["fps"])
    best_model, best_e2e, best_stable = max(model_fps), max(e2e_fps), max(stable_fps)
    print(f"model only (frames in memory)  {best_model:8.2f} fps   runs: {', '.join(f'{x:.2f}' for x in model_fps)}")
    print(f"end to end (file to file)      {best_e2e:8.2f} fps   runs: {', '.join(f'{x:.2f}' for x in e2e_fps)}"
          f"  = {100 * best_e2e / best_model:.0f}% of model only (best of each)")
    print(f"  model busy during end to end: {100 * max(busy):.0f}% of the wall time (the rest: start-up, "
          f"encoder flush)")
    print(f"end to end --stable            {best_stable:8.2f} fps   runs: {', '.join(f'{x:.2f}' for x in stable_fps)}"
          f"  = {100 * (1 - best_stable / best_e2e):+.0f}% cost")
    fast = [timed_video(lambda fs: [colour_style(f).astype(np.uint8) for f in fs], clip, work / f"fast{i}.mp4",
                        stable=bool(i))["fps"] for i in (0, 1, 0, 1)]
    fast_plain, fast_stable = max(fast[0::2]), max(fast[1::2])
    print(f"near-free translator: plain {fast_plain:.1f} fps, --stable {fast_stable:.1f} fps "
          f"(= {100 * (1 - fast_stable / fast_plain):+.0f}% cost when the model is not the bottleneck)")
    print(f"stabiliser alone (its own thread; limits fps only above 1000/ms): {stabilizer_ms(width, height):.1f} "
          f"ms/frame at {width}x{height}, {stabilizer_ms(1280, 720):.1f} ms at 1280x720, "
          f"{stabilizer_ms(1920, 1080, 10):.1f} ms at 1920x1080")

    print("\n-- flicker (score 1.0 = output changes along the motion as much as the input does) --")
    input_change = warped_change(frames, frames)
    print(f"input's own warped change: {input_change:.2f} grey levels (flow residual: the unit of the scores)")
    for name, base in (("colour style + flicker", colour_style), ("generator + flicker", engine)):
        translator = Flickering(base)
        timed_video(translator, clip, work / "flicker.mp4")
        timed_video(translator.rewind(), clip, work / "flicker_stable.mp4", stable=True)
        plain, steady = decoded(work / "flicker.mp4"), decoded(work / "flicker_stable.mp4")
        plain_score, steady_score = (warped_change(o, frames) / input_change for o in (plain, steady))
        line = f"{name:24s} flicker {plain_score:5.2f} → --stable {steady_score:5.2f}  ({plain_score / steady_score:.2f}x less)"
        if base is colour_style:
            reference = [colour_style(f) for f in frames]
            err = [np.mean([np.abs(o - r).mean() for o, r in zip(out, reference)]) for out in (plain, steady)]
            line += f"; error vs the flicker-free output {err[0]:.1f} → {err[1]:.1f}"
        print(line)
    clean_score = warped_change(decoded(work / "plain.mp4"), frames) / input_change
    clean_stable = warped_change(decoded(work / "stable.mp4"), frames) / input_change
    print(f"{'generator alone':24s} flicker {clean_score:5.2f} → --stable {clean_stable:5.2f}  "
          f"(random weights alias at 3 px/frame motion: flicker of its own)")


if __name__ == "__main__":
    main()
