"""What a trainer user sees: the loss log (CSV, plus TensorBoard when installed), sample grids, summaries."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from PIL import Image

from cycletrans.fsutil import atomic_path, atomic_write_text

LOSS_COLUMNS = ["epoch", "step", "lr", "D_X", "D_Y", "G_gan", "F_gan", "cycle_X", "cycle_Y", "idt_X", "idt_Y",
                "G_total", "seconds"]


class LossLog:
    """losses.csv in the run folder, one row per logged step. On resume, rows past the checkpoint are dropped so
    the log matches the weights exactly."""

    def __init__(self, run_dir: Path, resume_step: int | None = None):
        self.path = run_dir / "losses.csv"
        if resume_step is None or not self.path.exists():
            atomic_write_text(self.path, ",".join(LOSS_COLUMNS) + "\n")
        else:
            with open(self.path, newline="") as f:
                rows = [row for row in csv.DictReader(f) if row.get("step", "").isdigit() and int(row["step"]) <= resume_step]
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, LOSS_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows({k: row.get(k, "") for k in LOSS_COLUMNS} for row in rows)
            atomic_write_text(self.path, buffer.getvalue())
        self.tensorboard = _tensorboard_writer(run_dir)

    def write(self, row: dict[str, float]) -> None:
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, LOSS_COLUMNS, lineterminator="\n").writerow(
                {k: (f"{row[k]:.6g}" if isinstance(row.get(k), float) else row.get(k, "")) for k in LOSS_COLUMNS})
        if self.tensorboard is not None:
            for key in LOSS_COLUMNS[3:-1]:
                if key in row:
                    self.tensorboard.add_scalar(f"loss/{key}", row[key], row["step"])
            self.tensorboard.add_scalar("lr", row["lr"], row["step"])

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()


def _tensorboard_writer(run_dir: Path):
    """TensorBoard event files, only when the tensorboard package is installed (an optional extra)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:
        return None
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))


def save_grid(rows: list[list[np.ndarray]], path: Path) -> None:
    """Tile uint8 images (all the same size) into one PNG: each inner list is a row."""
    grid = np.concatenate([np.concatenate(row, axis=1) for row in rows], axis=0)
    with atomic_path(path) as tmp:
        Image.fromarray(grid).save(tmp, format="PNG")
