"""How good the generators are at the end of an epoch, cheaply: the cycle-reconstruction error (paper 3.2, 5.1.5) on
a few held-out images and, when the data set has paired test folders, the paper's metrics (5.1.1) on the same
images, so a run shows its quality over time in quality.csv and not only its losses.

The images are the first `limit` readable ones of testA/ and testB/ beside trainA/ and trainB/ (else, when those are
missing, empty or unreadable, of the training folders, marked `held_out: 0`), read once per process and resized to
the crop size. Paired scoring needs every testA/NAME to have a
testB/NAME of the same scene (as `cycletrans.synthetic` writes them; otherwise only the cycle errors): a target that looks like a label map is scored with
the Cityscapes metrics through palette.json (else its own colours), any other target with PSNR/SSIM/L1; for the
synthetic labels → scenes task the FCN-score stand-in is added, as `cycletrans eval` does. The keys are flat, G for
X→Y (A→B) and F for Y→X, ready for one CSV row per epoch (`QualityLog`).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ContextManager

import cv2
import numpy as np
import torch

from cycletrans.errors import InputError
from cycletrans.evaluate import (Palette, cycle_error, find_palette_file, image_metrics, label_metrics,
                                 load_palette, looks_like_labels, palette_from_images, pair_folders, read_data_card)
from cycletrans.fsutil import atomic_write_text
from cycletrans.media.images import list_images, read_rgb
from cycletrans.train.data import to_tensor, to_uint8

QUALITY_IMAGES = 8  # per domain: with ngf 16 at 64 px all of it takes a fraction of a second on one CPU core
LABEL_SCORES = ("pixel_accuracy", "class_accuracy", "class_iou")


@dataclass(frozen=True)
class _Direction:
    """How one direction's outputs are scored against the paired targets."""

    targets: tuple[np.ndarray, ...]
    palette: Palette | None  # label targets: Cityscapes scores; None: PSNR/SSIM/L1
    segmenter: Callable[[np.ndarray], np.ndarray] | None = None  # labels → scenes: the FCN-score stand-in ...
    segmenter_palette: Palette | None = None  # ... and the classes it reads out


@dataclass(frozen=True)
class _ProbeImages:
    a: torch.Tensor  # N×3×S×S in [-1, 1]
    b: torch.Tensor
    a_uint8: tuple[np.ndarray, ...]
    b_uint8: tuple[np.ndarray, ...]
    held_out: bool
    G: _Direction | None  # paired scoring of G(a) against b; None when the images are not paired
    F: _Direction | None


def _held_out_folder(folder: Path, side: str) -> Path | None:
    """testA/ beside trainA/ (testB/ beside trainB/), when the training folder is named so and it exists."""
    test = folder.parent / f"test{side}"
    return test if folder.name == f"train{side}" and test.is_dir() else None


def _resized(images: list[np.ndarray], size: int) -> list[np.ndarray]:
    # Label maps keep their exact colours (nearest); pictures are averaged, as the trainer's sample view does.
    interpolation = cv2.INTER_NEAREST if looks_like_labels(images) else cv2.INTER_AREA
    return [im if im.shape[:2] == (size, size) else cv2.resize(im, (size, size), interpolation=interpolation)
            for im in images]


def _read_first(paths: list[Path], limit: int) -> list[np.ndarray]:
    """The first `limit` images of `paths` that can be read; unreadable files are passed over."""
    images = []
    for path in paths:
        if len(images) == limit:
            break
        with contextlib.suppress(InputError):
            images.append(read_rgb(path))
    return images


def _read_first_pairs(pairs: list[tuple[Path, Path]], limit: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The first `limit` pairs whose two files can both be read, so a bad file never shifts the pairing."""
    a, b = [], []
    for path_a, path_b in pairs:
        if len(a) == limit:
            break
        with contextlib.suppress(InputError):
            image_a, image_b = read_rgb(path_a), read_rgb(path_b)
            a.append(image_a)
            b.append(image_b)
    return a, b


def _direction(sources: list[np.ndarray], targets: list[np.ndarray], test_dir: Path) -> _Direction:
    palette_file = find_palette_file(test_dir)
    if not looks_like_labels(targets):
        card = read_data_card(palette_file)
        if card.get("kind") == "labels2scenes" and looks_like_labels(sources):
            from cycletrans.synthetic import SCENE_PALETTE, scene_segmenter

            return _Direction(tuple(targets), None, scene_segmenter(sources[0].shape[0]), SCENE_PALETTE)
        return _Direction(tuple(targets), None)
    try:
        palette = load_palette(palette_file) if palette_file is not None else palette_from_images(targets)
    except InputError:  # a malformed palette.json: score by the targets' own colours rather than fail the epoch
        palette = palette_from_images(targets)
    return _Direction(tuple(targets), palette)


@functools.lru_cache(maxsize=4)
def _probe_images(folder_a: Path, folder_b: Path, crop_size: int, limit: int) -> _ProbeImages:
    """The fixed images of one run, read once (the trainer calls epoch_quality every epoch)."""
    test_a, test_b = _held_out_folder(folder_a, "A"), _held_out_folder(folder_b, "B")
    a, b, paired = [], [], False
    if test_a is not None and test_b is not None and list_images(test_a) and list_images(test_b):
        pairing = pair_folders(test_a, test_b)
        # Paired only when every file has its partner, as `cycletrans eval` requires: two unpaired test sets
        # that happen to share a few names are not scored against each other.
        paired = bool(pairing.pairs) and not pairing.unmatched_inputs and not pairing.unmatched_targets
        if paired:
            a, b = _read_first_pairs(pairing.pairs, limit)
        else:
            a, b = _read_first(list_images(test_a), limit), _read_first(list_images(test_b), limit)
    held_out = bool(a) and bool(b)
    if not held_out:  # no test folders, or nothing readable in them: the training images, never a failed epoch
        paired = False
        a, b = _read_first(list_images(folder_a), limit), _read_first(list_images(folder_b), limit)
    if not a or not b:
        raise InputError(f"no readable images for the quality report in {folder_a} or {folder_b}")
    a, b = _resized(a, crop_size), _resized(b, crop_size)
    G_dir = F_dir = None
    if paired:
        G_dir, F_dir = _direction(a, b, test_b), _direction(b, a, test_a)
    return _ProbeImages(torch.stack([to_tensor(im) for im in a]), torch.stack([to_tensor(im) for im in b]),
                        tuple(a), tuple(b), held_out, G_dir, F_dir)


def _scores(prefix: str, preds: list[np.ndarray], sources: tuple[np.ndarray, ...],
            direction: _Direction) -> dict[str, float]:
    if direction.palette is not None:
        found = label_metrics(preds, direction.targets, direction.palette)
        return {f"{prefix}_{k}": found[k] for k in LABEL_SCORES}
    found = image_metrics(preds, direction.targets)
    row = {f"{prefix}_{k}": found[k] for k in ("psnr", "ssim", "l1")}
    if direction.segmenter is not None:  # paper 5.1.1: FCN score, the outputs segmented and compared with the input labels
        fcn = label_metrics([direction.segmenter(p) for p in preds], sources, direction.segmenter_palette)
        row.update({f"{prefix}_fcn_{k}": fcn[k] for k in LABEL_SCORES})
    return row


@torch.no_grad()
def epoch_quality(G: torch.nn.Module, F: torch.nn.Module, folder_a: str | Path, folder_b: str | Path,
                  crop_size: int, device: torch.device | str = "cpu",
                  autocast: Callable[[], ContextManager] | None = None, limit: int = QUALITY_IMAGES) -> dict:
    """Cycle errors and, with paired test folders, the eval metrics of G (A→B) and F (B→A) on a fixed handful
    of images. `folder_a`/`folder_b` are the training folders (trainA/, trainB/); `autocast` is a callable giving
    the trainer's autocast context (e.g. `trainer._autocast`). The networks are only run (no_grad), never switched
    between train and eval mode: they have no dropout and InstanceNorm keeps no running statistics.

    Returns a flat dict: held_out (1/0), images (of domain X; Y uses as many, or all it has when fewer),
    cycle_error_X = |F(G(a)) − a|, cycle_error_Y = |G(F(b)) − b|
    (mean L1 on [0, 1], as `cycletrans eval`), then per direction G_* and F_*: pixel/class accuracy and class IoU
    for label-map targets, psnr/ssim/l1 otherwise, plus fcn_* scores for synthetic labels → scenes."""
    probe = _probe_images(Path(folder_a), Path(folder_b), int(crop_size), int(limit))
    context = autocast or contextlib.nullcontext
    a, b = probe.a.to(device), probe.b.to(device)
    with context():
        g_a = G(a); f_g_a = F(g_a)
        f_b = F(b); g_f_b = G(f_b)
    g_a, f_g_a, f_b, g_f_b = ([to_uint8(t) for t in batch] for batch in (g_a, f_g_a, f_b, g_f_b))
    row: dict = {"held_out": int(probe.held_out), "images": len(probe.a_uint8),
                 "cycle_error_X": cycle_error(probe.a_uint8, f_g_a), "cycle_error_Y": cycle_error(probe.b_uint8, g_f_b)}
    if probe.G is not None:
        row.update(_scores("G", g_a, probe.a_uint8, probe.G))
        row.update(_scores("F", f_b, probe.b_uint8, probe.F))
    return row


class QualityLog:
    """quality.csv in the run folder: one row per epoch (give `epoch` and `step` in the row). The file is rewritten
    whole and atomically on every row (it is small), so it is never half-written; on resume, rows past the
    checkpoint's step are dropped, as losses.csv does."""

    def __init__(self, run_dir: str | Path, resume_step: int | None = None):
        self.path = Path(run_dir) / "quality.csv"
        self.rows: list[dict] = []
        if resume_step is not None and self.path.is_file():
            with open(self.path, newline="") as f:
                self.rows = [row for row in csv.DictReader(f)
                             if row.get("step", "").isdigit() and int(row["step"]) <= resume_step]

    def write(self, row: dict) -> None:
        self.rows.append({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        columns = list(dict.fromkeys(k for r in self.rows for k in r))  # first-seen order; epoch/step lead if given
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, columns, lineterminator="\n", restval="")
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.path, buffer.getvalue())
