"""`cycletrans train`: parse options into a TrainConfig and hand it to cycletrans.train; with --gpus N, start N
copies of this command as a torchrun job instead (cycletrans.train.distributed)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from cycletrans.cli.app import app, err_console
from cycletrans.errors import CycletransError, DeviceError, InputError


@app.command()
def train(
    ctx: typer.Context,
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
    gpus: Optional[int] = typer.Option(None, "--gpus", metavar="N", help="Train on N GPUs of this machine: starts N processes as torchrun does (with --device cpu: N CPU processes). For several machines run torchrun yourself."),
    scale_lr: bool = typer.Option(False, "--scale-lr", help="Several processes: multiply --lr by their number (the effective batch is processes × --batch-size). Default: keep the paper's lr."),
    dist_timeout: float = typer.Option(10.0, metavar="MINUTES", help="Several processes: how long one waits for the others before the run stops with an error."),
) -> None:
    """Train a CycleGAN on two folders of unpaired images (paper-faithful defaults).

    Example: cycletrans train photos/ monet/ --name monet   (after Ctrl-C: add --resume)

    Several GPUs: cycletrans train photos/ monet/ --gpus 4, or torchrun --nproc-per-node 4 -m cycletrans train ...
    """
    if gpus is not None and _launched(gpus, device, ctx):
        return

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
        max_steps=max_steps, quiet=quiet, scale_lr=scale_lr, dist_timeout=dist_timeout,
    )
    try:
        run_training(config, resume=resume)
    except CycletransError as err:
        if os.environ.get("RANK", "0") == "0":
            raise
        _report_from_other_rank(err)


def _report_from_other_rank(err: CycletransError) -> None:
    """A torchrun job's processes mostly fail together and alike, and rank 0 says so; another rank speaks only when
    it is the first of its node (a folder missing on that node) or its device is at fault."""
    if os.environ.get("LOCAL_RANK") == "0" or isinstance(err, DeviceError):
        err_console.print(f"cycletrans: error (rank {os.environ['RANK']}): {err}", markup=False, soft_wrap=True)
    raise typer.Exit(err.exit_code)


def _launched(gpus: int, device: str, ctx: typer.Context) -> bool:
    """--gpus N: run this same command, less --gpus, as N processes (one per GPU) under torch's elastic launcher;
    True when that ran. N = 1 needs no launcher: False, train here."""
    import torch

    from cycletrans.train import distributed

    if "RANK" in os.environ:
        raise InputError("--gpus starts the processes itself; under torchrun leave it out")
    if gpus < 1:
        raise InputError("--gpus must be at least 1")
    if device not in ("auto", "cuda", "cpu"):
        raise DeviceError(f"--gpus uses cuda:0 .. cuda:{gpus - 1}; give --device cuda (or cpu), not {device}")
    if device != "cpu":
        available = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if available == 0:
            raise DeviceError(f"--gpus {gpus}: this machine has no CUDA GPU visible to PyTorch "
                              f"(add --device cpu to run {gpus} CPU processes)")
        if gpus > available:
            raise DeviceError(f"--gpus {gpus}: only {available} CUDA GPU{'s' * (available > 1)} visible")
    if gpus == 1:
        return False
    code = distributed.launch(gpus, _command_line(ctx, leave_out="gpus"))
    if code:
        raise typer.Exit(code)  # the processes have said why
    return True


def _command_line(ctx: typer.Context, leave_out: str) -> list[str]:
    """The arguments that reproduce this command as parsed (options, then `--` and the positional arguments)."""
    options, positional = [], []
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if param.name == leave_out or value is None:
            continue
        if param.param_type_name == "argument":
            positional.append(str(value))
        elif getattr(param, "is_flag", False):
            if value:
                options.append(param.opts[0])
        else:
            options += [param.opts[0], str(value)]
    return [ctx.info_name or "train", *options, "--", *positional]
