"""`cycletrans train`: parse options into a TrainConfig and hand it to cycletrans.train."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cycletrans.cli.app import app
from cycletrans.errors import InputError


@app.command()
def train(
    data_a: Optional[Path] = typer.Argument(None, metavar="DATA_A", help="Folder of domain X images, or a dataset folder with trainA/ and trainB/."),
    data_b: Optional[Path] = typer.Argument(None, metavar="[DATA_B]", help="Folder of domain Y images."),
    name: str = typer.Option("run", help="Run name; outputs go to runs/NAME unless --out is given."),
    out: Optional[Path] = typer.Option(None, help="Run folder (checkpoints, losses.csv, samples/)."),
    epochs: int = typer.Option(100, help="Epochs at the initial learning rate (paper: 100)."),
    epochs_decay: int = typer.Option(100, help="Further epochs with the lr decayed linearly to zero (paper: 100)."),
    batch_size: int = typer.Option(1, help="Images per step (paper: 1)."),
    lr: float = typer.Option(2e-4, help="Adam learning rate (paper: 0.0002)."),
    load_size: int = typer.Option(286, help="Images are resized to this square size ..."),
    crop_size: int = typer.Option(256, help="... then randomly cropped to this size."),
    no_flip: bool = typer.Option(False, "--no-flip", help="Do not flip images horizontally at random."),
    netG: Optional[str] = typer.Option(None, "--netG", help="resnet9 or resnet6 (default: resnet6 for crops ≤ 128, else resnet9)."),
    ngf: int = typer.Option(64, help="Generator filters in the first layer."),
    ndf: int = typer.Option(64, help="Discriminator filters in the first layer."),
    lambda_cycle: float = typer.Option(10.0, help="Weight λ of the cycle-consistency loss (paper: 10)."),
    lambda_identity: float = typer.Option(0.5, help="Identity loss weight, as a fraction of λ (paper: 0.5; 0 disables)."),
    pool_size: int = typer.Option(50, help="Generated images kept for the discriminators (paper: 50; 0 disables)."),
    objective: str = typer.Option("full", help="full, gan, cycle, gan+forward or gan+backward (paper 5.1.4 ablations)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
    precision: str = typer.Option("auto", help="auto (bf16 + channels_last on CUDA, fp32 on CPU), bf16 or fp32."),
    workers: Optional[int] = typer.Option(None, help="Data-loading worker processes (default: by device)."),
    seed: Optional[int] = typer.Option(None, help="Random seed, for a reproducible run."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in the run folder from its newest good checkpoint."),
    save_every: int = typer.Option(1, help="Epochs between checkpoints (one is also saved on Ctrl-C and at the end)."),
    keep: int = typer.Option(3, help="Checkpoints kept."),
    max_steps: Optional[int] = typer.Option(None, help="Stop after this many steps in all (a quick look, a smoke test)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary or progress bar."),
) -> None:
    """Train a CycleGAN on two folders of unpaired images (paper-faithful defaults).

    Example: cycletrans train photos/ monet/ --name monet   (after Ctrl-C: add --resume)
    """
    from cycletrans.train import TrainConfig
    from cycletrans.train import train as run_training

    if data_a is None and not resume:
        raise InputError("give the training images: cycletrans train DATA_A DATA_B (or a folder with trainA/ trainB/)")
    config = TrainConfig(
        data_a=str(data_a) if data_a else "", data_b=str(data_b) if data_b else None, name=name,
        out=str(out) if out else None, epochs=epochs, epochs_decay=epochs_decay, batch_size=batch_size, lr=lr,
        load_size=load_size, crop_size=crop_size, flip=not no_flip, netG=netG, ngf=ngf, ndf=ndf,
        lambda_cycle=lambda_cycle, lambda_identity=lambda_identity, pool_size=pool_size, objective=objective,
        device=device, precision=precision, workers=workers, seed=seed, save_every=save_every, keep=keep,
        max_steps=max_steps, quiet=quiet,
    )
    run_training(config, resume=resume)
