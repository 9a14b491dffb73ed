"""The paper's ablation of the loss (5.1.4, Tables 4 and 5), reproduced at small scale on the synthetic
labels ↔ scenes pair (cycletrans.synthetic), on a CPU.

    python tools/reproduce_ablation.py                       # 5 runs, 2 at a time, 1 thread each
    python tools/reproduce_ablation.py --seeds 0,1,2         # each objective with three training seeds

Trains the five objectives of TrainConfig (cycle alone, GAN alone, GAN + forward cycle, GAN + backward cycle, full
CycleGAN) with the same data, seed, networks and schedule; identity loss off, as in the paper's Cityscapes runs
(it only used it for paintings → photos and flowers, 5.2 / appendix 7.1). Each run is exported to ONNX and scored
on the paired test set with cycletrans.evaluate: labels → scenes by the FCN-score stand-in (the fixed scene
segmenter reads the labels back out of the generated scene) plus PSNR/SSIM against the true rendering, and
scenes → labels by per-pixel accuracy, per-class accuracy and class IoU. Writes <work>/results.json and
<work>/table.md (markdown, the paper's layout; mean ± sd with several seeds), and prints the table. Runs already
trained in <work> are not trained again, only evaluated.
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

    if not (folder / "palette.json").is_file():  # written last: its presence marks a complete set
        make_domains(folder, "labels2scenes", size, train, test, seed, force=True)


def run_dir(args, seed: int, objective: str) -> Path:
    return args.work / f"seed_{seed}" / "runs" / _slug(objective)


def train_command(args, seed: int, objective: str) -> list[str]:
    out = run_dir(args, seed, objective)
    return [sys.executable, "-m", "cycletrans", "train", str(args.work / "data"), "--out", str(out),
            "--name", out.name, "--objective", objective, "--load-size", str(args.size),
            "--crop-size", str(args.size), "--ngf", str(args.ngf), "--ndf", str(args.ndf),
            "--epochs", str(args.epochs), "--epochs-decay", str(args.epochs_decay),
            "--lambda-identity", "0",  # paper 5.1: no identity loss for labels ↔ photos
            "--seed", str(seed), "--device", "cpu", "--keep", "1", "--save-every", "1000", "--quiet"]


def train_all(args, jobs: list[tuple[int, str]]) -> dict[tuple[int, str], float]:
    """Train every (seed, objective) not yet trained, `args.jobs` at a time, each on `args.threads` threads.
    Returns the wall time of each run (seconds), kept in <run>/wall_seconds so a rerun only evaluates."""
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    pending = [job for job in jobs if not (run_dir(args, *job) / "wall_seconds").is_file()]
    running: dict[tuple[int, str], tuple[subprocess.Popen, float, Path]] = {}
    while pending or running:
        while pending and len(running) < args.jobs:
            job = pending.pop(0)
            log_path = run_dir(args, *job).parent.parent / f"train_{_slug(job[1])}.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            print(f"training {job[1]} (seed {job[0]}) -> {run_dir(args, *job)}", file=sys.stderr, flush=True)
            with open(log_path, "w") as log:
                proc = subprocess.Popen(train_command(args, *job), env=env, stdout=log, stderr=log)
            running[job] = (proc, time.time(), log_path)
        time.sleep(2)
        for job, (proc, started, log_path) in list(running.items()):
            if proc.poll() is None:
                continue
            del running[job]
            if proc.returncode != 0:
                raise SystemExit(f"training {job[1]} (seed {job[0]}) failed (exit {proc.returncode}); see {log_path}")
            seconds = time.time() - started
            atomic_write_text(run_dir(args, *job) / "wall_seconds", f"{seconds:.1f}\n")
            print(f"  {job[1]} (seed {job[0]}): {seconds:.0f} s", file=sys.stderr, flush=True)
    return {job: float((run_dir(args, *job) / "wall_seconds").read_text()) for job in jobs}


def evaluate_run(args, seed: int, objective: str) -> dict:
    """Export one run (fp32 only) and score both directions on the paired test set."""
    from cycletrans.engine import Engine
    from cycletrans.evaluate import FolderEvaluation
    from cycletrans.export import export_run
    from cycletrans.styles import resolve_style

    style_dir = args.work / f"seed_{seed}" / "styles" / _slug(objective)
    if not (style_dir / "card.json").is_file():
        export_run(run_dir(args, seed, objective), _slug(objective), fp16=False, overwrite=True, out=style_dir)
    style = resolve_style(None, style_dir)
    G = Engine.for_style(style, device="cpu", batch_size=10, threads=args.threads)
    F = Engine.for_style(style, reverse=True, device="cpu", batch_size=10, threads=args.threads)
    data = args.work / "data"
    to_scenes = FolderEvaluation(data / "testA", data / "testB", task="image").run(G.translate, F.translate)
    to_labels = FolderEvaluation(data / "testB", data / "testA", task="labels").run(F.translate, cycle=False)
    return {"labels_to_scenes": to_scenes["metrics"], "scenes_to_labels": to_labels["metrics"],
            "cycle": to_scenes["cycle"]}


# Table columns: (header, how to read the value from one run's result, digits).
TABLE4 = [("Per-pixel acc.", lambda r: r["labels_to_scenes"]["fcn_score"]["pixel_accuracy"], 3),
          ("Per-class acc.", lambda r: r["labels_to_scenes"]["fcn_score"]["class_accuracy"], 3),
          ("Class IoU", lambda r: r["labels_to_scenes"]["fcn_score"]["class_iou"], 3),
          ("PSNR (dB)", lambda r: r["labels_to_scenes"]["psnr"], 2),
          ("SSIM", lambda r: r["labels_to_scenes"]["ssim"], 3)]
TABLE5 = [("Per-pixel acc.", lambda r: r["scenes_to_labels"]["pixel_accuracy"], 3),
          ("Per-class acc.", lambda r: r["scenes_to_labels"]["class_accuracy"], 3),
          ("Class IoU", lambda r: r["scenes_to_labels"]["class_iou"], 3),
          ("cycle error x→G→F", lambda r: r["cycle"]["input"]["l1"], 4),
          ("cycle error y→F→G", lambda r: r["cycle"]["target"]["l1"], 4)]


def _cell(values: list[float], digits: int) -> str:
    import numpy as np

    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def _rows(columns, results: dict, seeds: list[int], objectives: list[str]) -> list[str]:
    lines = ["| Loss | " + " | ".join(h for h, _, _ in columns) + " |",
             "| --- |" + " ---: |" * len(columns)]
    for objective in objectives:
        cells = [_cell([read(results[s][objective]) for s in seeds], digits) for _, read, digits in columns]
        lines.append(f"| {ROWS[objective]} | " + " | ".join(cells) + " |")
    return lines


def table(results: dict, args, seconds: dict[tuple[int, str], float]) -> str:
    seeds, objectives = list(results), list(next(iter(results.values())))
    steps = (args.epochs + args.epochs_decay) * args.train
    ceiling = results[seeds[0]][objectives[0]]["labels_to_scenes"]["fcn_score_real"]
    over = f"mean ± sd over training seeds {', '.join(map(str, seeds))}" if len(seeds) > 1 else f"training seed {seeds[0]}"
    lines = [f"**Table 4 (small scale): FCN-score stand-in, labels → scenes** ({args.test} test pairs, "
             f"{args.size} px; {over})", ""]
    lines += _rows(TABLE4, results, seeds, objectives)
    lines.append(f"| *true renderings (the segmenter's ceiling)* | {ceiling['pixel_accuracy']:.3f} | "
                 f"{ceiling['class_accuracy']:.3f} | {ceiling['class_iou']:.3f} | – | – |")
    lines += ["", f"**Table 5 (small scale): scenes → labels** ({args.test} test pairs, {args.size} px; {over})", ""]
    lines += _rows(TABLE5, results, seeds, objectives)
    minutes = {o: [seconds[(s, o)] / 60 for s in seeds] for o in objectives}
    lines += [
        "",
        "Training wall time per run (min" + (", per seed" if len(seeds) > 1 else "") + "): " + "; ".join(
            f"{ROWS[o]} {', '.join(f'{m:.1f}' for m in minutes[o])}" for o in objectives) + ".",
        "",
        f"Setup: synthetic labels2scenes, {args.train}+{args.train} unpaired training images, {args.size} px, data "
        f"seed {args.data_seed}; resnet6 generators ngf {args.ngf}, PatchGAN ndf {args.ndf}; "
        f"{args.epochs}+{args.epochs_decay} epochs = {steps} steps of batch 1, λ=10, identity loss off, pool 50; "
        f"CPU, {args.jobs} runs at a time, {args.threads} thread(s) each "
        f"({platform.machine()}, {os.cpu_count()} cores shared with other work).",
    ]
    if len(seeds) > 1:
        for seed in seeds:
            lines += ["", f"<details><summary>seed {seed}</summary>", ""]
            lines += _rows(TABLE4, results, [seed], objectives) + [""] + _rows(TABLE5, results, [seed], objectives)
            lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def _slug(objective: str) -> str:
    return objective.replace("+", "_")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("runs/ablation"),
                        help="data/, seed_N/ (runs, styles, logs), results.json, table.md")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--train", type=int, default=200, help="training images per domain")
    parser.add_argument("--test", type=int, default=50, help="paired test images")
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--seeds", default="0", help="training seeds, comma-separated (each objective once per seed)")
    parser.add_argument("--seed", type=int, help="one training seed (same as --seeds N)")
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
    seeds = [args.seed] if args.seed is not None else [int(s) for s in args.seeds.split(",") if s.strip()]

    import torch

    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.time()
    make_data(args.work / "data", args.size, args.train, args.test, args.data_seed)
    seconds = train_all(args, [(seed, o) for seed in seeds for o in objectives])
    ordered = sorted(objectives, key=list(ROWS).index)  # the paper's row order
    results = {seed: {o: evaluate_run(args, seed, o) for o in ordered} for seed in seeds}
    markdown = table(results, args, seconds)
    atomic_write_text(args.work / "results.json", json.dumps(
        {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
         "train_seconds": {str(s): {o: seconds[(s, o)] for o in ordered} for s in seeds},
         "total_seconds": time.time() - started, "results": {str(s): r for s, r in results.items()}},
        indent=2) + "\n")
    atomic_write_text(args.work / "table.md", markdown)
    print(markdown)
    print(f"total {time.time() - started:.0f} s; results in {args.work / 'results.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
