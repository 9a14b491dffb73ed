"""`cycletrans train`: parse options into a TrainConfig and hand it to cycletrans.train."""

from __future__ import annotations

from cycletrans.cli.app import app


@app.command()
def train() -> None:
    """Train a CycleGAN on two folders of unpaired images (work in progress)."""
