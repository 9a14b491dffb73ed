"""Training speed on this machine: cycletrans's training step against the reference implementation's way of
running the same step (one network call per image role, as in the authors' cycle_gan_model.py), side by side in
one run, interleaved, on the same networks and data.

    python tools/bench_train.py --crop 64 --netG resnet6 --ngf 32           # the figure to beat: 0.26 s/it
    python tools/bench_train.py --crop 128 --netG resnet6 --ngf 64
    python tools/bench_train.py --crop 256 --netG resnet9 --ngf 64 --steps 3 --rounds 2

Reports seconds per step (best round) and the ratio; `--precision bf16` adds bf16 autocast rows.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cycletrans.train import TrainConfig
from cycletrans.train.loop import Trainer
from cycletrans.train.losses import cycle_loss, identity_loss, lsgan_loss


def reference_step(t: Trainer, real_x: torch.Tensor, real_y: torch.Tensor) -> None:
    """The reference implementation's optimize_parameters(): G(x), F(G(x)), F(y), G(F(y)), G(y), F(x) as
    separate calls, then each discriminator on real and fake separately."""
    lam, lam_idt = t.config.lambda_cycle, t.config.lambda_cycle * t.config.lambda_identity
    with t._autocast():
        fake_y = t.G(real_x); rec_x = t.F(fake_y); fake_x = t.F(real_y); rec_y = t.G(fake_x)
    for d in (t.D_X, t.D_Y):
        d.requires_grad_(False)
    t.opt_G.zero_grad()
    with t._autocast():
        loss = (identity_loss(t.G(real_y), real_y) * lam_idt + identity_loss(t.F(real_x), real_x) * lam_idt
                + lsgan_loss(t.D_Y(fake_y), True) + lsgan_loss(t.D_X(fake_x), True)
                + cycle_loss(rec_x, real_x) * lam + cycle_loss(rec_y, real_y) * lam)
    loss.backward()
    t.opt_G.step()
    for d in (t.D_X, t.D_Y):
        d.requires_grad_(True)
    t.opt_D.zero_grad()
    with t._autocast():
        for d, real, fake, pool in ((t.D_Y, real_y, fake_y, t.pool_Y), (t.D_X, real_x, fake_x, t.pool_X)):
            pooled = pool.query(fake.detach().float())
            (0.5 * (lsgan_loss(d(real), True) + lsgan_loss(d(pooled), False))).backward()
    t.opt_D.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--netG", default="resnet6")
    parser.add_argument("--ngf", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        for domain in "AB":
            (Path(tmp) / domain).mkdir()
            for i in range(4):
                Image.fromarray(np.random.default_rng(i).integers(0, 255, (args.crop, args.crop, 3), np.uint8)).save(
                    Path(tmp) / domain / f"{i}.png")
        variants = {}
        for precision in sorted({"fp32", args.precision}):
            config = TrainConfig(f"{tmp}/A", f"{tmp}/B", out=f"{tmp}/run_{precision}", crop_size=args.crop,
                                 load_size=args.crop, netG=args.netG, ngf=args.ngf, seed=0, quiet=True,
                                 precision=precision)
            variants[f"reference-style step, {precision}"] = (Trainer(config), reference_step)
            config.out += "_b"
            variants[f"cycletrans step, {precision}"] = (Trainer(config), Trainer.train_step)
        x, y = torch.randn(1, 3, args.crop, args.crop), torch.randn(1, 3, args.crop, args.crop)
        for trainer, step in variants.values():  # warm-up
            for _ in range(2):
                step(trainer, x, y)
        times = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, (trainer, step) in variants.items():
                start = time.perf_counter()
                for _ in range(args.steps):
                    step(trainer, x, y)
                times[name].append((time.perf_counter() - start) / args.steps)
    base = min(times["reference-style step, fp32"])
    print(f"{args.crop} px, {args.netG}, ngf {args.ngf}, batch 1, {torch.get_num_threads()} threads")
    for name, values in times.items():
        best = min(values)
        print(f"  {name:32s} {best:.3f} s/it  {1 / best:5.2f} it/s  speed-up {base / best:.2f}×")


if __name__ == "__main__":
    main()
