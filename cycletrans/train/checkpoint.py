"""The checkpoint format: one `.pt` file per save under `<run>/checkpoints/`, written atomically, holding
everything needed to resume exactly (nets, optimisers, schedulers, image pools, RNG states, epoch and step, and
the full config). Files are loaded with `weights_only=True`: no arbitrary object is ever unpickled."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cycletrans.errors import ModelError
from cycletrans.fsutil import atomic_path
from cycletrans.nets import ResnetGenerator, generator_from_state_dict

FORMAT = "cycletrans.checkpoint"
VERSION = 1
_NAME = re.compile(r"^step_(\d{9})\.pt$")


def checkpoint_dir(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / "checkpoints"


def save_checkpoint(run_dir: str | os.PathLike, state: dict[str, Any], keep: int = 3) -> Path:
    """Write `state` as checkpoints/step_<step>.pt (temp file + rename), then delete all but the newest `keep`."""
    folder = checkpoint_dir(run_dir)
    target = folder / f"step_{state['step']:09d}.pt"
    with atomic_path(target) as tmp:
        torch.save({"format": FORMAT, "version": VERSION, **state}, tmp)
    for old in list_checkpoints(run_dir)[:-max(keep, 1)]:
        old.unlink(missing_ok=True)
    return target


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Completed checkpoint files, oldest first. Temp files of interrupted writes never match the name pattern."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _NAME.match(p.name))


def load_checkpoint_file(path: str | os.PathLike) -> dict[str, Any]:
    """Load and validate one checkpoint file; ModelError if it is corrupt or not a cycletrans checkpoint."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelError(f"{path}: no such file") from None
    except Exception as err:  # truncated zip, pickle refused by weights_only, not a torch file at all
        raise ModelError(f"{path}: not a readable checkpoint ({type(err).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ModelError(f"{path}: not a cycletrans training checkpoint")
    if state.get("version", 0) > VERSION:
        raise ModelError(f"{path}: checkpoint version {state['version']} is newer than this cycletrans")
    return state


def load_latest(run_dir: str | os.PathLike, warn=None) -> tuple[Path, dict[str, Any]] | None:
    """(path, state) of the newest checkpoint of a run that loads cleanly, skipping (and reporting through
    `warn`) damaged ones. None when the run has no loadable checkpoint."""
    for path in reversed(list_checkpoints(run_dir)):
        try:
            return path, load_checkpoint_file(path)
        except ModelError as err:
            if warn:
                warn(f"skipping damaged checkpoint: {err}")
    return None


@dataclass
class GeneratorPair:
    """The two trained generators of a run: G translates X→Y (data_a to data_b), F translates Y→X."""

    G: ResnetGenerator
    F: ResnetGenerator
    config: dict[str, Any]
    epoch: int
    step: int
    source: Path


def load_generators(path: str | os.PathLike) -> GeneratorPair:
    """Generators from a run folder (its newest good checkpoint) or from one checkpoint file, in eval mode."""
    path = Path(path)
    if path.is_dir():
        found = load_latest(path)
        if found is None:
            raise ModelError(f"{path}: no checkpoint found under {checkpoint_dir(path)}")
        source, state = found
    else:
        state, source = load_checkpoint_file(path), path
    try:
        G = generator_from_state_dict(state["nets"]["G"]).eval()
        F = generator_from_state_dict(state["nets"]["F"]).eval()
    except (KeyError, ValueError) as err:
        raise ModelError(f"{source}: checkpoint has no usable generators ({err})") from None
    return GeneratorPair(G=G, F=F, config=state["config"], epoch=state["epoch"], step=state["step"], source=source)
