"""Train the style that ships as "default" (models/default/): synthetic label maps → rendered street scenes.

    python tools/train_demo.py                      # ~15 min on one CPU thread; rewrites models/default/
    python tools/train_demo.py --epochs 1 --epochs-decay 0 --train 20 --models /tmp/m   # a quick look

Everything comes from code in this repository: the data is drawn by cycletrans.synthetic (never downloaded), the
CycleGAN is trained by cycletrans.train with the paper's settings for labels ↔ photos (λ = 10, no identity loss,
LSGAN, pool of 50, lr decayed linearly to zero) at a small size (64 px, resnet6, ngf 16) so that the whole style
stays under 10 MB and runs fast on a CPU. It is exported (fp32 + fp16) with cycletrans.export, scored on the
held-out paired test set with cycletrans.evaluate, and the card records data, steps, time, metrics and this
command. A few held-out label maps are written to models/samples/, and docs/before_after.png shows them translated.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

ROOT = Path(__file__).resolve().parent.parent
DOMAINS = ("labels", "scenes")  # forward (the default direction): label map → scene; reverse: scene → labels


def train(args) -> tuple[Path, float, int]:
    """Train on freshly generated data; returns the run folder, the training wall time and the steps taken."""
    import torch

    from cycletrans.synthetic import make_domains
    from cycletrans.train import TrainConfig
    from cycletrans.train.loop import Trainer

    torch.set_num_threads(args.threads)
    data, run = args.work / "data", args.work / "run"
    if not (data / "palette.json").is_file():
        make_domains(data, "labels2scenes", args.size, args.train, args.test, args.data_seed, force=True)
    if run.exists():
        shutil.rmtree(run)  # a fresh run every time: the card describes exactly one training
    config = TrainConfig(
        str(data), None, name="default", out=str(run), epochs=args.epochs, epochs_decay=args.epochs_decay,
        load_size=args.size, crop_size=args.size, netG="resnet6", ngf=args.ngf, ndf=args.ngf,
        lambda_identity=0.0,  # paper 5.1: no identity loss for labels ↔ photos (it is for paintings and flowers)
        seed=args.seed, device="cpu", keep=1, save_every=1000, quiet=args.quiet)
    started = time.time()
    trainer = Trainer(config)
    trainer.run()
    return run, time.time() - started, trainer.step


def evaluate(style_dir: Path, data: Path, threads: int) -> dict:
    """Both directions on the held-out paired test set, with the metrics of `cycletrans eval`."""
    from cycletrans.engine import Engine
    from cycletrans.evaluate import FolderEvaluation
    from cycletrans.styles import resolve_style

    style = resolve_style(None, style_dir)
    G = Engine.for_style(style, device="cpu", batch_size=10, threads=threads)
    F = Engine.for_style(style, reverse=True, device="cpu", batch_size=10, threads=threads)
    to_scenes = FolderEvaluation(data / "testA", data / "testB", task="image").run(G.translate, F.translate)
    to_labels = FolderEvaluation(data / "testB", data / "testA", task="labels").run(F.translate, cycle=False)
    m, lab = to_scenes["metrics"], to_labels["metrics"]

    def scores(s: dict) -> dict:
        return {k: round(s[k], 4) for k in ("pixel_accuracy", "class_accuracy", "class_iou")}

    return {
        "test_pairs": m["images"],
        "forward": {"fcn_score": scores(m["fcn_score"]), "fcn_score_real": scores(m["fcn_score_real"]),
                    "psnr": round(m["psnr"], 2), "ssim": round(m["ssim"], 4), "l1": round(m["l1"], 4)},
        "reverse": scores(lab),
        "cycle_l1": {"labels": round(to_scenes["cycle"]["input"]["l1"], 4),
                     "scenes": round(to_scenes["cycle"]["target"]["l1"], 4)},
        "notes": "forward: labels → scenes, scored by the FCN-score stand-in (cycletrans.synthetic scene segmenter "
                 "on the outputs vs the input labels; fcn_score_real is its score on the true renderings) and "
                 "PSNR/SSIM/L1 against the true rendering; reverse: scenes → labels, segmentation scores.",
    }


def export(args, run: Path, seconds: float, steps: int) -> Path:
    from cycletrans import styles
    from cycletrans.export import export_style
    from cycletrans.train.checkpoint import load_generators

    pair = load_generators(run)
    folder = args.models / "default"
    command = "python tools/train_demo.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    result = export_style(
        {"forward": pair.G, "reverse": pair.F}, "default", domains=DOMAINS, train_size=args.size,
        provenance={"kind": "training-run", "trained_by": "tools/train_demo.py", "step": pair.step,
                    "epoch": pair.epoch}, fp16=True, overwrite=True, out=folder, log=print)
    card = dict(result.card)
    card["description"] = ("Synthetic street-scene label maps (Cityscapes colours) → rendered scenes; reverse: "
                           "scene → label map. A small demo trained on a CPU, on data drawn by cycletrans.synthetic.")
    card["data"] = {"kind": "labels2scenes", "generator": "cycletrans.synthetic.make_domains",
                    "counts": {"train": args.train, "test": args.test}, "size": args.size, "seed": args.data_seed}
    card["training"] = {"steps": steps, "epochs": args.epochs + args.epochs_decay, "batch_size": 1,
                        "seconds": round(seconds, 1), "device": "cpu", "threads": args.threads, "seed": args.seed,
                        "lambda_cycle": 10.0, "lambda_identity": 0.0, "ngf": args.ngf, "ndf": args.ngf}
    card["command"] = command.strip()
    card["samples"] = "models/samples/: held-out label maps from the same generator (testA of this data)"
    card["metrics"] = evaluate(folder, args.work / "data", args.threads)
    styles.write_card(folder, card)
    return folder


def write_samples(args) -> list[Path]:
    """Copy a few held-out test label maps (never seen in training) to models/samples/."""
    from cycletrans.media.images import list_images

    target = args.models / "samples"
    target.mkdir(parents=True, exist_ok=True)
    for old in target.glob("*.png"):
        old.unlink()  # the samples are ours: replaced whole, so none from an older run lingers
    written = []
    for i, source in enumerate(list_images(args.work / "data" / "testA")[: args.samples]):
        dst = target / f"street_{i + 1}.png"
        shutil.copyfile(source, dst)
        written.append(dst)
    return written


def before_after(style_dir: Path, samples: list[Path], out: Path, scale: int = 4) -> Path:
    """Inputs on the top row, the default style's outputs below, each enlarged `scale`× (nearest neighbour)."""
    import numpy as np

    from cycletrans.engine import Engine
    from cycletrans.media.images import read_rgb, write_image
    from cycletrans.styles import resolve_style

    engine = Engine.for_style(resolve_style(None, style_dir), device="cpu")
    inputs = [read_rgb(p) for p in samples]
    outputs = engine.translate(inputs)
    gap = 4 * scale // 2

    def row(images):
        big = [np.kron(im, np.ones((scale, scale, 1), np.uint8)) for im in images]
        spaced = []
        for im in big:
            spaced += [im, np.full((im.shape[0], gap, 3), 255, np.uint8)]
        return np.concatenate(spaced[:-1], axis=1)

    top, bottom = row(inputs), row(outputs)
    picture = np.concatenate([top, np.full((gap, top.shape[1], 3), 255, np.uint8), bottom], axis=0)
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_image(out, picture)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "demo", help="data and run folder")
    parser.add_argument("--models", type=Path, default=ROOT / "models", help="writes MODELS/default and MODELS/samples")
    parser.add_argument("--figure", type=Path, default=ROOT / "docs" / "before_after.png")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--train", type=int, default=300, help="training images per domain")
    parser.add_argument("--test", type=int, default=50, help="held-out paired test images")
    parser.add_argument("--data-seed", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--ngf", type=int, default=16, help="filters of G/F and of the discriminators")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--epochs-decay", type=int, default=4)
    parser.add_argument("--samples", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quiet", "-q", action="store_true")
    args = parser.parse_args(argv)

    run, seconds, steps = train(args)
    folder = export(args, run, seconds, steps)
    samples = write_samples(args)
    figure = before_after(folder, samples, args.figure)
    size = sum(p.stat().st_size for p in folder.iterdir())
    print(f"style {folder} ({size / 1e6:.1f} MB), trained {steps} steps in {seconds / 60:.1f} min; "
          f"{len(samples)} samples in {args.models / 'samples'}; figure {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
