"""The paper's ablation of the loss (5.1.4, Tables 4 and 5), reproduced at small scale on the synthetic
labels ↔ scenes pair (cycletrans.synthetic), on a CPU.

    python tools/reproduce_ablation.py                       # 5 runs, 2 at a time, 1 thread each
    python tools/reproduce_ablation.py --epochs 3 --epochs-decay 3 --jobs 2 --work runs/ablation

Trains the five objectives of TrainConfig (cycle alone, GAN alone, GAN + forward cycle, GAN + backward cycle, full
CycleGAN) with the same data, seed, networks and schedule; identity loss off, as in the paper's Cityscapes runs
(it only used it for paintings → photos and flowers, 5.2 / appendix 7.2). Each run is exported to ONNX and scored
on the paired test set with cycletrans.evaluate: labels → scenes by the FCN-score stand-in (the fixed scene
segmenter reads the labels back out of the generated scene) plus PSNR/SSIM against the true rendering, and
scenes → labels by per-pixel accuracy, per-class accuracy and class IoU. Writes <work>/results.json and
<work>/table.md (markdown, the paper's layout), and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from cycletrans.fsutil import atomic_write_text  # noqa: E402
from cycletrans.train.config import OBJECTIVES  # noqa: E402

# The paper's row order and names (Tables 4/5).
ROWS = {"cycle": "Cycle alone", "gan": "GAN alone", "gan+forward": "GAN + forward cycle",
        "gan+backward": "GAN + backward cycle", "full": "CycleGAN (full)"}


def make_data(folder: Path, size: int, train: int, test: int, seed: int) -> None:
    from cycletrans.synthetic import make_domains

    if (folder / "palette.json").is_file():
        return
    make_domains(folder, "labels2scenes", size, train, test, seed, force=True)


def train_command(args, objective: str, run_dir: Path) -> list[str]:
    return [sys.executable, "-m", "cycletrans", "train", str(args.work / "data"), "--out", str(run_dir),
            "--name", run_dir.name, "--objective", objective, "--load-size", str(args.size),
            "--crop-size", str(args.size), "--ngf", str(args.ngf), "--ndf", str(args.ndf),
            "--epochs", str(args.epochs), "--epochs-decay", str(args.epochs_decay),
            "--lambda-identity", "0", "--seed", str(args.seed), "--device", "cpu", "--keep", "1",
            "--save-every", "1000", "--quiet"]


def train_all(args, objectives: list[str]) -> dict[str, float]:
    """Train every objective not yet trained, `args.jobs` at a time, each on `args.threads` threads.
    Returns the wall time of each run (seconds), also kept in <run>/wall_seconds for later invocations."""
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    pending = [o for o in objectives if not (args.work / "runs" / _slug(o) / "wall_seconds").is_file()]
    running: dict[str, tuple[subprocess.Popen, float]] = {}
    while pending or running:
        while pending and len(running) < args.jobs:
            objective = pending.pop(0)
            run_dir = args.work / "runs" / _slug(objective)
            log = open(args.work / f"train_{_slug(objective)}.log", "w")
            print(f"training {objective} -> {run_dir}", file=sys.stderr, flush=True)
            proc = subprocess.Popen(train_command(args, objective, run_dir), env=env, stdout=log, stderr=log)
            running[objective] = (proc, time.time())
        time.sleep(2)
        for objective, (proc, started) in list(running.items()):
            if proc.poll() is None:
                continue
            del running[objective]
            if proc.returncode != 0:
                raise SystemExit(f"training {objective} failed (exit {proc.returncode}); see "
                                 f"{args.work / f'train_{_slug(objective)}.log'}")
            seconds = time.time() - started
            atomic_write_text(args.work / "runs" / _slug(objective) / "wall_seconds", f"{seconds:.1f}\n")
            print(f"  {objective}: {seconds:.0f} s", file=sys.stderr, flush=True)
    return {o: float((args.work / "runs" / _slug(o) / "wall_seconds").read_text()) for o in objectives}


def evaluate_run(args, objective: str) -> dict:
    """Export one run (fp32 only) and score both directions on the paired test set."""
    from cycletrans.engine import Engine
    from cycletrans.evaluate import FolderEvaluation
    from cycletrans.export import export_run
    from cycletrans.styles import resolve_style

    run_dir = args.work / "runs" / _slug(objective)
    style_dir = args.work / "styles" / _slug(objective)
    if not (style_dir / "card.json").is_file():
        export_run(run_dir, _slug(objective), fp16=False, overwrite=True, out=style_dir)
    style = resolve_style(None, style_dir)
    G = Engine.for_style(style, device="cpu", batch_size=10, threads=args.threads)
    F = Engine.for_style(style, reverse=True, device="cpu", batch_size=10, threads=args.threads)
    data = args.work / "data"
    to_scenes = FolderEvaluation(data / "testA", data / "testB", task="image").run(G.translate, F.translate)
    to_labels = FolderEvaluation(data / "testB", data / "testA", task="labels").run(F.translate, cycle=False)
    return {"labels_to_scenes": to_scenes["metrics"], "scenes_to_labels": to_labels["metrics"],
            "cycle": to_scenes["cycle"]}


def table(results: dict, args, seconds: dict[str, float]) -> str:
    steps = (args.epochs + args.epochs_decay) * args.train
    first = next(iter(results.values()))
    ceiling = first["labels_to_scenes"]["fcn_score_real"]
    lines = [
        f"**Table 4 (small scale): FCN-score stand-in, labels → scenes** ({args.test} test pairs, {args.size} px)",
        "",
        "| Loss | Per-pixel acc. | Per-class acc. | Class IoU | PSNR (dB) | SSIM |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for objective, r in results.items():
        fcn, img = r["labels_to_scenes"]["fcn_score"], r["labels_to_scenes"]
        lines.append(f"| {ROWS[objective]} | {fcn['pixel_accuracy']:.3f} | {fcn['class_accuracy']:.3f} | "
                     f"{fcn['class_iou']:.3f} | {img['psnr']:.2f} | {img['ssim']:.3f} |")
    lines.append(f"| *true renderings (the segmenter's ceiling)* | {ceiling['pixel_accuracy']:.3f} | "
                 f"{ceiling['class_accuracy']:.3f} | {ceiling['class_iou']:.3f} | – | – |")
    lines += [
        "",
        f"**Table 5 (small scale): scenes → labels** ({args.test} test pairs, {args.size} px)",
        "",
        "| Loss | Per-pixel acc. | Per-class acc. | Class IoU | cycle error x→G→F | cycle error y→F→G | train wall time |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for objective, r in results.items():
        lab, cyc = r["scenes_to_labels"], r["cycle"]
        lines.append(f"| {ROWS[objective]} | {lab['pixel_accuracy']:.3f} | {lab['class_accuracy']:.3f} | "
                     f"{lab['class_iou']:.3f} | {cyc['input']['l1']:.4f} | {cyc['target']['l1']:.4f} | "
                     f"{seconds[objective] / 60:.1f} min |")
    lines += [
        "",
        f"Setup: synthetic labels2scenes, {args.train}+{args.train} unpaired training images, {args.size} px, data "
        f"seed {args.data_seed}; resnet6 generators ngf {args.ngf}, PatchGAN ndf {args.ndf}; "
        f"{args.epochs}+{args.epochs_decay} epochs = {steps} steps of batch 1, λ=10, identity loss off, pool 50, "
        f"training seed {args.seed}; CPU, {args.jobs} runs at a time, {args.threads} thread(s) each "
        f"({platform.processor() or platform.machine()}, {os.cpu_count()} cores shared with other work).",
    ]
    return "\n".join(lines) + "\n"


def _slug(objective: str) -> str:
    return objective.replace("+", "_")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("runs/ablation"), help="data, runs, styles and results")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--train", type=int, default=200, help="training images per domain")
    parser.add_argument("--test", type=int, default=50, help="paired test images")
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0, help="training seed (the same for every objective)")
    parser.add_argument("--ngf", type=int, default=16)
    parser.add_argument("--ndf", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--epochs-decay", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2, help="runs trained at the same time")
    parser.add_argument("--threads", type=int, default=1, help="torch/onnxruntime threads per run")
    parser.add_argument("--objectives", default="full,gan,cycle,gan+forward,gan+backward",
                        help="comma-separated subset of " + ", ".join(OBJECTIVES) + ", trained in this order")
    args = parser.parse_args(argv)
    objectives = [o.strip() for o in args.objectives.split(",") if o.strip()]
    unknown = [o for o in objectives if o not in OBJECTIVES]
    if unknown:
        parser.error(f"unknown objectives {unknown}; choose from {', '.join(OBJECTIVES)}")

    import torch

    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.time()
    make_data(args.work / "data", args.size, args.train, args.test, args.data_seed)
    seconds = train_all(args, objectives)
    results = {}
    for objective in sorted(objectives, key=list(ROWS).index):  # the paper's row order
        results[objective] = evaluate_run(args, objective)
        print(f"evaluated {objective}", file=sys.stderr, flush=True)
    markdown = table(results, args, seconds)
    atomic_write_text(args.work / "results.json", json.dumps(
        {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
         "train_seconds": seconds, "total_seconds": time.time() - started, "results": results}, indent=2) + "\n")
    atomic_write_text(args.work / "table.md", markdown)
    print(markdown)
    print(f"total {time.time() - started:.0f} s; results in {args.work / 'results.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
