"""Inference speed: PyTorch eager (as the reference code runs a generator: torch.no_grad, fp32) against the
cycletrans engine (onnxruntime) on the same machine, the same weights and the same images, measured side by side
in one run (the two alternate, so load from other processes hits both alike).

Two views:
  model-only   the network alone on a prepared input tensor (torch: net(x); ort: session.run) and through
               Engine.translate (uint8 in/out: normalisation, padding included);
  end-to-end   a folder of images: decode + infer + encode, the reference way (one image after the other, PIL in
               and out) against cycletrans.pipelines.images.translate_images (threaded decode/encode).

    .venv/bin/python tools/bench_infer.py                  # resnet9 ngf 64 at 256² and 1080p
    .venv/bin/python tools/bench_infer.py --quick          # fewer repeats, small folders, 256² e2e only
    .venv/bin/python tools/bench_infer.py --sizes 256x256,1280x720 --repeats 5 --ngf 32

Figures are images/s (higher is better) and ort/eager ratios. CPU only unless --device says otherwise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cycletrans.engine import Engine, to_input  # noqa: E402
from cycletrans.export import export_generator  # noqa: E402
from cycletrans.nets import build_generator  # noqa: E402
from cycletrans.pipelines.images import translate_images  # noqa: E402


def parse_size(text: str) -> tuple[int, int]:
    """"256" or "256x256" (W×H) or "1080p" → (height, width)."""
    named = {"1080p": (1080, 1920), "720p": (720, 1280), "4k": (2160, 3840)}
    if text.lower() in named:
        return named[text.lower()]
    w, _, h = text.lower().partition("x")
    return (int(h or w), int(w))


def test_image(h: int, w: int, seed: int) -> np.ndarray:
    """Smooth colour blobs plus grain: photo-like enough for codecs to do realistic work."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32) + rng.uniform(40, 120, 3)
    for _ in range(5):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0.1, 0.4) * min(h, w)
        img += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))[..., None] * rng.uniform(0, 120, 3)
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def side_by_side(fns: dict, repeats: int, warmup: int = 1) -> dict[str, float]:
    """Median seconds per call of each fn, the fns alternating call by call."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name] += timed(fn, 1)
    return {name: statistics.median(t) for name, t in times.items()}


def eager_folder(net, sources: list[Path], out_dir: Path) -> None:
    """The reference way: one image at a time, PIL decode, normalise, net, denormalise, PIL encode."""
    from PIL import Image

    out_dir.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        for path in sources:
            rgb = np.array(Image.open(path).convert("RGB"))
            x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 127.5 - 1
            y = net(x)[0].permute(1, 2, 0).numpy()
            Image.fromarray(((y + 1) * 127.5).round().clip(0, 255).astype(np.uint8)).save(out_dir / path.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--netG", default="resnet9", choices=["resnet6", "resnet9"])
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--sizes", default="256,1080p", help="comma-separated: 256, 640x480, 1080p, ...")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median reported)")
    parser.add_argument("--folder", type=int, default=8, help="images in each end-to-end folder (1080p: a quarter)")
    parser.add_argument("--batch", type=int, default=1, help="engine batch size")
    parser.add_argument("--device", default="cpu", help="engine device (torch stays on CPU)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads for both")
    parser.add_argument("--quick", action="store_true", help="1 repeat, 4-image folders, end-to-end at 256² only")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.folder = 1, 4

    threads = args.threads
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = build_generator(args.netG, args.ngf).eval()
    work = Path(tempfile.mkdtemp(prefix="cycletrans-bench-"))
    model = export_generator(net, work / "g.onnx", metadata={"style": "bench", "direction": "forward"})
    engine = Engine(model, device=args.device, batch_size=args.batch, threads=threads)
    print(f"# {args.netG} ngf {args.ngf}; torch {torch.__version__} eager fp32 with {torch.get_num_threads()} threads; "
          f"onnxruntime on {engine.provider} ({threads} threads); {os.cpu_count()} CPUs; repeats {args.repeats}")
    print(f"{'what':<34}{'size':>11}{'eager img/s':>13}{'ort img/s':>11}{'engine img/s':>14}{'ort/eager':>11}")

    sizes = [parse_size(s) for s in args.sizes.split(",")]
    for h, w in sizes:
        frame = test_image(h, w, 0)
        x_np = to_input(frame[None])
        x_t = torch.from_numpy(x_np)
        session, name = engine._session, engine._input_name

        def eager():
            with torch.no_grad():
                net(x_t)

        t = side_by_side({"eager": eager, "ort": lambda: session.run(None, {name: x_np}),
                          "engine": lambda: engine.translate_one(frame)}, args.repeats,
                         warmup=1 if h * w <= 512 * 512 else 0)  # a warm-up is noise next to a 1080p run
        print(f"{'model only (one image)':<34}{f'{w}x{h}':>11}{1 / t['eager']:>13.3g}{1 / t['ort']:>11.3g}"
              f"{1 / t['engine']:>14.3g}{t['eager'] / t['ort']:>10.2f}x", flush=True)

    for h, w in sizes:
        if args.quick and h * w > 512 * 512:
            continue
        count = args.folder if h * w <= 512 * 512 else max(1, args.folder // 4)
        folder = work / f"in_{w}x{h}"
        folder.mkdir()
        from PIL import Image

        for i in range(count):
            Image.fromarray(test_image(h, w, i + 1)).save(folder / f"{i:03d}.jpg", quality=92)
        sources = sorted(folder.iterdir())
        tasks = [(p, work / f"out_ort_{w}x{h}" / (p.stem + ".png")) for p in sources]
        t = side_by_side({
            "eager": lambda: eager_folder(net, sources, work / f"out_eager_{w}x{h}"),
            "ort": lambda: translate_images(engine, tasks),
        }, args.repeats, warmup=0)
        print(f"{f'end-to-end folder of {count} (jpg→png)':<34}{f'{w}x{h}':>11}{count / t['eager']:>13.3g}"
              f"{count / t['ort']:>11.3g}{'':>14}{t['eager'] / t['ort']:>10.2f}x", flush=True)


if __name__ == "__main__":
    main()
