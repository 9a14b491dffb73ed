"""Training options. Defaults are the paper's (section 4 and appendix 7.1); the CLI option names mirror the fields."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# paper 5.1.4: the ablations of the full objective, as `--objective` values.
# Each names which terms of Eq. 3 are on: the two GAN losses, the forward cycle F(G(x))≈x, the backward G(F(y))≈y.
OBJECTIVES: dict[str, dict[str, bool]] = {
    "full": {"gan": True, "forward": True, "backward": True},
    "gan": {"gan": True, "forward": False, "backward": False},
    "cycle": {"gan": False, "forward": True, "backward": True},
    "gan+forward": {"gan": True, "forward": True, "backward": False},
    "gan+backward": {"gan": True, "forward": False, "backward": True},
}


@dataclass
class TrainConfig:
    data_a: str  # domain X: a folder of images
    data_b: str | None  # domain Y; None when data_a holds trainA/ and trainB/
    name: str = "run"
    out: str | None = None  # run folder; default runs/<name>
    epochs: int = 100  # paper 4: constant lr for 100 epochs ...
    epochs_decay: int = 100  # ... then linearly decayed to zero over 100 more
    batch_size: int = 1  # paper 4: batch size 1
    lr: float = 2e-4  # paper 4: Adam, lr 0.0002
    beta1: float = 0.5  # reference implementation: Adam betas (0.5, 0.999)
    load_size: int = 286  # resize to 286, random crop 256, random flip (reference implementation)
    crop_size: int = 256
    flip: bool = True
    netG: str | None = None  # None: resnet6 for crops of 128 and below, resnet9 above (paper 4)
    ngf: int = 64
    ndf: int = 64
    lambda_cycle: float = 10.0  # paper 4: λ = 10
    lambda_identity: float = 0.5  # appendix 7.1: identity loss weighted 0.5λ (0 disables)
    pool_size: int = 50  # paper 4: a history of the 50 previously generated images
    objective: str = "full"  # paper 5.1.4 ablations, see OBJECTIVES
    device: str = "auto"
    precision: str = "auto"  # auto: bf16 autocast + channels_last on CUDA, fp32 on CPU
    workers: int | None = None  # data-loading processes; None: chosen from the CPU count
    seed: int | None = None
    save_every: int = 1  # epochs between checkpoints (one is also written on Ctrl-C/SIGTERM and at the end)
    keep: int = 3  # checkpoints kept
    max_steps: int | None = None  # stop after this many steps in all (tests, quick looks); None: run all epochs
    sample_count: int = 3  # fixed images per domain in the per-epoch sample grid
    quiet: bool = False
    # Distributed runs (torchrun / --gpus, see cycletrans.train.distributed): the effective batch is
    # processes × batch_size; scale_lr multiplies lr by the number of processes (linear scaling rule).
    scale_lr: bool = False
    dist_timeout: float = 10.0  # minutes a process waits in a collective for the others before giving up

    def __post_init__(self) -> None:
        if self.netG is None:
            self.netG = "resnet6" if self.crop_size <= 128 else "resnet9"
        if self.out is None:
            self.out = f"runs/{self.name}"

    @property
    def total_epochs(self) -> int:
        return self.epochs + self.epochs_decay

    @property
    def terms(self) -> dict[str, bool]:
        return OBJECTIVES[self.objective]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


# Options that may differ between a run and its resumption without changing what is being trained.
RESUMABLE_OVERRIDES = ("device", "workers", "quiet", "save_every", "keep", "max_steps", "out", "dist_timeout")
