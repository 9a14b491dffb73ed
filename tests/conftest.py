"""Shared test helpers: run the CLI in-process, and make small synthetic images (tests never download)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("CYCLETRANS_HOME", "/nonexistent-cycletrans-home")  # tests set their own store
# The tests train and run tiny networks (ngf 4-8, 32-64 px): one thread per process is faster for them than
# several, and keeps the suite from thrashing when the machine is busy. Set before torch is imported, so that
# subprocesses (CLI runs, torchrun ranks) inherit it too.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys):
    """cli("train", "a", "b") runs `cycletrans train a b` in-process; returns exit code, stdout and stderr."""
    from cycletrans.cli import main

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def synthetic_image(size: tuple[int, int], seed: int, tint: tuple[int, int, int] | None = None) -> np.ndarray:
    """A uint8 H×W×3 image of random soft blobs; `tint` (RGB) shifts its colours, making a second 'domain'."""
    h, w = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), np.float32) + rng.uniform(40, 120, 3)
    for _ in range(4):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0.15, 0.4) * min(h, w)
        img += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))[..., None] * rng.uniform(0, 120, 3)
    if tint is not None:
        img += np.asarray(tint, np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_image_folder(folder: Path, count: int, size=(40, 40), seed: int = 0, tint=None, ext=".png") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(synthetic_image(size, seed * 1000 + i, tint)).save(folder / f"img_{i:03d}{ext}")
    return folder
