"""The CycleGAN training loop (paper 3-4, appendix 7.1): alternate one generator step (both GAN terms, both cycle
terms, identity) with one discriminator step on pooled fakes, epoch after epoch, checkpointing as it goes."""

from __future__ import annotations

import contextlib
import itertools
import random
import signal
import threading
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.table import Table
from rich.text import Text

from cycletrans.engine import usable_cpus
from cycletrans.errors import DeviceError, EXIT_INTERRUPTED, CycletransError, InputError
from cycletrans.media.images import read_rgb
from cycletrans.nets import build_discriminator, build_generator, count_parameters
from cycletrans.train import checkpoint as ckpt
from cycletrans.train import distributed
from cycletrans.train.config import RESUMABLE_OVERRIDES, TrainConfig
from cycletrans.train.data import EpochSampler, UnpairedDataset, center_view, load_domains, to_tensor, to_uint8
from cycletrans.train.losses import cycle_loss, identity_loss, lsgan_loss
from cycletrans.train.pool import ImagePool
from cycletrans.train.quality import QualityLog, epoch_quality
from cycletrans.train.report import LossLog, save_grid
from cycletrans.train.schedule import lr_factor


class TrainingInterrupted(CycletransError):
    """Ctrl-C or SIGTERM: a checkpoint was saved and the run can be resumed."""

    exit_code = EXIT_INTERRUPTED


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"--device {name}: this machine has no CUDA GPU visible to PyTorch (use --device cpu)")
    return device


class Trainer:
    """Owns the four networks, their optimisers, the image pools and the data of one run.

    Usable from Python: `Trainer(TrainConfig("photos", "monet", epochs=1, epochs_decay=0)).run()`. Started by
    torchrun, it is one process of a data-parallel run (see cycletrans.train.distributed): `nets` are then the
    plain networks (saved, used for samples) and `parallel` their DistributedDataParallel wrappers.
    """

    LOG_EVERY = 20  # steps averaged into one row of losses.csv

    def __init__(self, config: TrainConfig, resume: bool = False, console: Console | None = None):
        self.world = distributed.World.from_env()
        self.console = console or Console(stderr=True, highlight=False, quiet=config.quiet or not self.world.is_main,
                                          soft_wrap=True)
        self.run_dir = Path(config.out)
        self._stop_signal: str | None = None  # set by the signal handler, at any moment
        self._stopping = False  # the decision to stop, taken after a step (by all processes together)
        # The device comes first: NCCL binds each process to its GPU when the process group starts.
        self.device = (distributed.device_for(self.world, config.device) if self.world.distributed
                       else pick_device(config.device))
        self._owns_process_group = distributed.join(self.world, self.device, config.dist_timeout)

        resumed = None
        if resume:
            resumed = ckpt.load_latest(self.run_dir, warn=self.console.print)
            if resumed is None:
                if not config.data_a:  # `train --resume` alone: there is nothing to start a new run from either
                    raise InputError(f"nothing to resume: no checkpoint under {ckpt.checkpoint_dir(self.run_dir)} "
                                     "(give the training images to start a new run)")
                self.console.print(f"nothing to resume under {self.run_dir}; starting a new run")
            else:
                for option in _ignored_on_resume(resumed[1]["config"], config):
                    self.console.print(f"note: {option} is ignored: a resumed run keeps the options it was started with")
                config = self._resumed_config(resumed[1]["config"], config)
        elif ckpt.list_checkpoints(self.run_dir):
            raise InputError(f"{self.run_dir} already holds a run; continue it with --resume, or choose another --name/--out")
        distributed.check_same(self.world, resumed[1]["step"] if resumed else None, "the checkpoint step to resume from")
        if config.seed is None:
            config.seed = distributed.from_main(self.world, random.SystemRandom().randrange(2**31))
        self._validate(config)
        self.config = cfg = config

        precision = cfg.precision if cfg.precision != "auto" else ("bf16" if self.device.type == "cuda" else "fp32")
        self.precision = precision
        self.autocast_dtype = torch.bfloat16 if precision == "bf16" else None
        self.memory_format = torch.channels_last if self.device.type == "cuda" and precision != "fp32" else torch.contiguous_format
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True

        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
        self.domains = load_domains(cfg.data_a, cfg.data_b)
        for folder in (self.domains.folder_a, self.domains.folder_b):
            # Never write into an input: the sample grids would also become training images on --resume.
            if self.run_dir.resolve().is_relative_to(folder.resolve()):
                raise InputError(f"{self.run_dir}: the run folder would be inside the training images in {folder}; "
                                 "choose another --out")
        self.dataset = UnpairedDataset(self.domains, cfg.load_size, cfg.crop_size, cfg.flip, cfg.seed)
        distributed.check_same(self.world, (len(self.domains.images_a), len(self.domains.images_b)),
                               "the number of images in the two folders")  # else they run different step counts
        self.sampler = EpochSampler(len(self.dataset), cfg.seed, self.world.rank, self.world.size)  # disjoint shards
        workers = cfg.workers if cfg.workers is not None else (
            0 if self.device.type == "cpu" else max(1, min(8, usable_cpus() // self.world.local_size)))
        self.loader = torch.utils.data.DataLoader(
            self.dataset, batch_size=cfg.batch_size, sampler=self.sampler, num_workers=workers, drop_last=True,
            pin_memory=self.device.type == "cuda", persistent_workers=workers > 0)
        # Steps per epoch of each process; all take the same number (a rank with one image more skips it).
        self.steps_per_epoch = len(self.dataset) // self.world.size // cfg.batch_size
        if self.steps_per_epoch == 0:
            per = f" for {self.world.size} processes" if self.world.distributed else ""
            raise InputError(f"--batch-size {cfg.batch_size} is larger than the {len(self.dataset)} images per epoch{per}")

        # Paper notation: G: X→Y, F: Y→X, D_Y judges G's outputs, D_X judges F's.
        self.G = build_generator(cfg.netG, cfg.ngf)
        self.F = build_generator(cfg.netG, cfg.ngf)
        self.D_X = build_discriminator(cfg.ndf)
        self.D_Y = build_discriminator(cfg.ndf)
        for net in self.nets.values():
            net.to(self.device, memory_format=self.memory_format)
        betas = (cfg.beta1, 0.999)  # reference implementation: Adam(β1=0.5, β2=0.999)
        self.opt_G = torch.optim.Adam(itertools.chain(self.G.parameters(), self.F.parameters()), lr=cfg.lr, betas=betas)
        self.opt_D = torch.optim.Adam(itertools.chain(self.D_X.parameters(), self.D_Y.parameters()), lr=cfg.lr, betas=betas)
        # paper 4: history of 50 generated images; each process keeps its own
        rank = self.world.rank
        self.pool_X = ImagePool(cfg.pool_size, seed=cfg.seed + 1 + 2 * rank)
        self.pool_Y = ImagePool(cfg.pool_size, seed=cfg.seed + 2 + 2 * rank)
        self.epoch, self.step, self.epoch_step = 0, 0, 0
        if resumed is not None:
            self.load_state_dict(resumed[1])
            self.console.print(f"resuming from {resumed[0]} (epoch {self.epoch + 1}, step {self.step})")
            self._adapt_to_world(resumed[1].get("world_size", 1))
        self.parallel = ({name: distributed.wrap(net, self.device) for name, net in self.nets.items()}
                         if self.world.distributed else self.nets)
        self.samples = self._fixed_samples()
        self.history: list[dict[str, float]] = []

    # ----------------------------------------------------------------- setup
    @staticmethod
    def _resumed_config(saved: dict, given: TrainConfig) -> TrainConfig:
        """The saved config wins for what defines the training; run-time options come from the new command."""
        merged = dict(saved)
        merged.update({key: getattr(given, key) for key in RESUMABLE_OVERRIDES if key != "out"})
        merged["out"] = given.out
        return TrainConfig.from_dict(merged)

    @staticmethod
    def _validate(cfg: TrainConfig) -> None:
        from cycletrans.nets import GENERATOR_BLOCKS
        from cycletrans.train.config import OBJECTIVES

        problems = []
        if cfg.objective not in OBJECTIVES:
            problems.append(f"--objective must be one of {', '.join(OBJECTIVES)}")
        if cfg.netG not in GENERATOR_BLOCKS:
            problems.append(f"--netG must be one of {', '.join(GENERATOR_BLOCKS)}")
        if cfg.crop_size < 16 or cfg.crop_size % 4:
            problems.append("--crop-size must be a multiple of 4, at least 16")
        if cfg.load_size < cfg.crop_size:
            problems.append(f"--load-size ({cfg.load_size}) must be at least --crop-size ({cfg.crop_size})")
        if cfg.precision not in ("auto", "fp32", "bf16"):
            problems.append("--precision must be auto, fp32 or bf16")
        for name in ("epochs", "epochs_decay", "pool_size"):
            if getattr(cfg, name) < 0:
                problems.append(f"--{name.replace('_', '-')} must not be negative")
        for name in ("batch_size", "ngf", "ndf", "save_every", "keep", "sample_count"):
            if getattr(cfg, name) < 1:
                problems.append(f"--{name.replace('_', '-')} must be at least 1")
        if cfg.total_epochs < 1:
            problems.append("--epochs plus --epochs-decay must be at least 1")
        if problems:
            raise InputError("; ".join(problems))

    def _adapt_to_world(self, saved_world_size: int) -> None:
        """After a resume by a different number of processes: continue the interrupted epoch where its images run
        out, and give every rank but 0 its own pool randomness (the checkpoint holds rank 0's pools only)."""
        if self.world.rank:
            for key, pool in (("X", self.pool_X), ("Y", self.pool_Y)):
                pool.rng.seed(f"pool {key}, seed {self.config.seed}, rank {self.world.rank}, step {self.step}")
        if saved_world_size == self.world.size or not self.epoch_step:
            return
        skip, repeated = distributed.resume_position(self.epoch_step, saved_world_size, self.world.size,
                                                     self.config.batch_size)
        self.console.print(
            f"the checkpoint was written by {saved_world_size} process(es), this run has {self.world.size}: epoch "
            f"{self.epoch + 1} continues at step {skip} of {self.steps_per_epoch}"
            + (f" ({repeated} of its images will be seen a second time)" if repeated else ""))
        self.epoch_step = skip

    @property
    def nets(self) -> dict[str, torch.nn.Module]:
        return {"G": self.G, "F": self.F, "D_X": self.D_X, "D_Y": self.D_Y}

    def _fixed_samples(self) -> dict[str, torch.Tensor]:
        """The first few images of each domain that can be read, shown in every epoch's sample grid."""
        out = {}
        for key, images in (("A", self.domains.images_a), ("B", self.domains.images_b)):
            tensors = []
            for path in images:
                if len(tensors) == self.config.sample_count:
                    break
                with contextlib.suppress(InputError):
                    tensors.append(to_tensor(center_view(read_rgb(path), self.config.crop_size)))
            if not tensors:  # every file passed the header check but none decodes
                raise InputError(f"{self.domains.folder_a if key == 'A' else self.domains.folder_b}: "
                                 "none of its images could be read")
            out[key] = torch.stack(tensors)
        return out

    # ----------------------------------------------------------------- one step
    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def train_step(self, real_x: torch.Tensor, real_y: torch.Tensor) -> dict[str, float]:
        cfg, terms = self.config, self.config.terms
        real_x = real_x.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        real_y = real_y.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        n = real_x.shape[0]
        lam, lam_idt = cfg.lambda_cycle, cfg.lambda_cycle * cfg.lambda_identity  # appendix 7.1: identity 0.5λ
        losses: dict[str, torch.Tensor] = {}
        G, F, D_X, D_Y = (self.parallel[k] for k in ("G", "F", "D_X", "D_Y"))  # DDP-wrapped when distributed

        # Generator step: D is held fixed (no gradients for its weights while G and F learn to fool it), and
        # runs unwrapped: there is nothing of D's to all-reduce here.
        # Each generator sees all its inputs of the step in one batch: InstanceNorm normalises every image on its
        # own, so this is the same computation as separate calls, only faster.
        use_idt = lam_idt > 0
        for d in (self.D_X, self.D_Y):
            d.requires_grad_(False)
        self.opt_G.zero_grad(set_to_none=True)
        with self._autocast():
            f_out = F(torch.cat([real_y, real_x]) if use_idt else real_y)
            fake_x, idt_x = f_out[:n], f_out[n:]  # F(y), and F(x) for the identity loss
            g_in = [real_x] + ([real_y] if use_idt else []) + ([fake_x] if terms["backward"] else [])
            g_out = G(torch.cat(g_in)).split(n)
            fake_y = g_out[0]  # G(x)
            idt_y = g_out[1] if use_idt else None  # G(y)
            rec_y = g_out[-1] if terms["backward"] else None  # G(F(y))
            if terms["gan"]:  # paper Eq. 1 with the least-squares loss (paper 4)
                losses["G_gan"] = lsgan_loss(self.D_Y(fake_y), True)
                losses["F_gan"] = lsgan_loss(self.D_X(fake_x), True)
            if terms["forward"]:  # paper Eq. 2: x → G(x) → F(G(x)) ≈ x
                losses["cycle_X"] = cycle_loss(F(fake_y), real_x) * lam
            if terms["backward"]:  # y → F(y) → G(F(y)) ≈ y
                losses["cycle_Y"] = cycle_loss(rec_y, real_y) * lam
            if use_idt:  # appendix 7.1: G(y) ≈ y and F(x) ≈ x
                losses["idt_Y"] = identity_loss(idt_y, real_y) * lam_idt
                losses["idt_X"] = identity_loss(idt_x, real_x) * lam_idt
        total_G = sum(losses.values())
        total_G.backward()
        self.opt_G.step()
        losses["G_total"] = total_G.detach()

        # Discriminator step on fakes drawn from the image pools; the objective is halved (appendix 7.1).
        # Real and pooled fake images go through each D in one batch (per-image InstanceNorm: same result).
        if terms["gan"]:
            for d in (self.D_X, self.D_Y):
                d.requires_grad_(True)
            self.opt_D.zero_grad(set_to_none=True)
            pooled_y = self.pool_Y.query(fake_y.detach().float()).to(real_y.dtype)
            pooled_x = self.pool_X.query(fake_x.detach().float()).to(real_x.dtype)
            with self._autocast():
                real_score_y, fake_score_y = D_Y(torch.cat([real_y, pooled_y])).split(n)
                real_score_x, fake_score_x = D_X(torch.cat([real_x, pooled_x])).split(n)
                losses["D_Y"] = 0.5 * (lsgan_loss(real_score_y, True) + lsgan_loss(fake_score_y, False))
                losses["D_X"] = 0.5 * (lsgan_loss(real_score_x, True) + lsgan_loss(fake_score_x, False))
            (losses["D_X"] + losses["D_Y"]).backward()
            self.opt_D.step()
        return {k: float(v.detach()) for k, v in losses.items()}

    # ----------------------------------------------------------------- the loop
    def run(self) -> None:
        cfg = self.config
        log = None
        if self.world.is_main:  # only rank 0 writes
            try:
                self.run_dir.mkdir(parents=True, exist_ok=True)
            except OSError as err:  # --out names a file, or a folder this user may not write to
                raise InputError(f"{self.run_dir}: cannot create the run folder ({err.strerror})") from None
            log = LossLog(self.run_dir, resume_step=self.step if self.step else None)
            self.quality_log = QualityLog(self.run_dir, resume_step=self.step if self.step else None)
        self._print_summary()
        started, steps_at_start = time.time(), self.step
        try:
            with distributed.collective_errors(), self._signals_trapped(), self._progress() as progress:
                task = progress.add_task("", total=self.steps_per_epoch, losses="")
                while self.epoch < cfg.total_epochs and not self._done():
                    self._run_epoch(progress, task, log)
                    if self._stopping:
                        break
                    if self.epoch_step == 0 and (self.epoch % cfg.save_every == 0 or self.epoch == cfg.total_epochs):
                        self.save()
                if self._stopping or self.epoch_step:
                    self.save()  # mid-epoch: interrupted, or stopped by max_steps
            distributed.write_weight_digests(self.world, self.nets, self.step)
        finally:
            if log is not None:
                log.close()
            if self._owns_process_group:
                distributed.leave()
        elapsed = time.time() - started
        self.seconds_per_step = elapsed / max(1, self.step - steps_at_start)
        if self._stopping:
            raise TrainingInterrupted(
                f"{self._stop_signal}: checkpoint saved at step {self.step} in {self.run_dir}; "
                f"continue with: cycletrans train --name {cfg.name} --out {cfg.out} --resume")
        if self.step == steps_at_start:
            self.console.print(f"nothing to do: the run in {self.run_dir} is already at "
                               f"epoch {self.epoch}/{cfg.total_epochs}, step {self.step}")
        else:
            self._print_end(elapsed)

    def _done(self) -> bool:
        return self.config.max_steps is not None and self.step >= self.config.max_steps

    def _agree_to_stop(self) -> bool:
        """Stop after this step? A signal may reach the processes at different moments (or only some of them), so
        they decide together, here and only here: all stop at the same step, or none does."""
        if distributed.any_rank(self.world, self._stop_signal is not None, self.device) and not self._stop_signal:
            self._stop_signal = "stop requested by another training process"
        return self._stop_signal is not None

    def _run_epoch(self, progress: Progress, task, log: LossLog | None) -> None:
        cfg = self.config
        base_lr = cfg.lr * (self.world.size if cfg.scale_lr else 1)  # linear scaling rule, see distributed.py
        lr = base_lr * lr_factor(self.epoch, cfg.epochs, cfg.epochs_decay)  # paper 4: constant, then linear decay
        for opt in (self.opt_G, self.opt_D):
            for group in opt.param_groups:
                group["lr"] = lr
        self.dataset.set_epoch(self.epoch)
        self.sampler.set_epoch(self.epoch, skip=self.epoch_step * cfg.batch_size)
        progress.reset(task, total=self.steps_per_epoch, completed=self.epoch_step,
                       description=f"epoch {self.epoch + 1}/{cfg.total_epochs}")
        window: dict[str, list[float]] = {}
        window_start = time.time()
        for batch in itertools.islice(self.loader, self.steps_per_epoch - self.epoch_step):
            losses = self.train_step(batch["A"], batch["B"])
            self.step += 1
            self.epoch_step += 1
            self._stopping = self._agree_to_stop()
            for key, value in losses.items():
                window.setdefault(key, []).append(value)
            progress.update(task, advance=1, losses=_short(losses))
            last_of_epoch = self.epoch_step == self.steps_per_epoch
            if len(window["G_total"]) >= self.LOG_EVERY or last_of_epoch or self._done() or self._stopping:
                row = distributed.mean_over_ranks(self.world, {k: float(np.mean(v)) for k, v in window.items()},
                                                  self.device)
                row.update(epoch=self.epoch + 1, step=self.step, lr=lr, seconds=time.time() - window_start)
                if log is not None:
                    log.write(row)
                self.history.append(row)
                window, window_start = {}, time.time()
            if self._done() or self._stopping:
                return
        self.epoch += 1
        self.epoch_step = 0
        if self.world.is_main:
            self._end_of_epoch_report()

    def _end_of_epoch_report(self) -> None:
        """Sample grid (real | translated | reconstructed, both directions), then the quality report: cycle errors
        and, with paired test folders, the eval metrics (quality.csv)."""
        with torch.no_grad(), self._autocast():
            a, b = self.samples["A"].to(self.device), self.samples["B"].to(self.device)
            g_a = self.G(a); f_g_a = self.F(g_a)
            f_b = self.F(b); g_f_b = self.G(f_b)
        rows = [[to_uint8(t) for t in triple] for triple in zip(a, g_a, f_g_a)]
        rows += [[to_uint8(t) for t in triple] for triple in zip(b, f_b, g_f_b)]
        save_grid(rows, self.run_dir / "samples" / f"epoch_{self.epoch:04d}.png")
        self.quality = epoch_quality(self.G, self.F, self.domains.folder_a, self.domains.folder_b,
                                     self.config.crop_size, self.device, self._autocast)
        self.quality_log.write({"epoch": self.epoch, "step": self.step, **self.quality})
        which = "held-out" if self.quality["held_out"] else "training"
        scores = "  ".join(f"{k} {v:.3f}" for k, v in self.quality.items()
                           if k.startswith(("G_", "F_")) and isinstance(v, float))
        self.console.print(
            f"epoch {self.epoch}: cycle error on {self.quality['images']} {which} images  "
            f"X→Y→X {self.quality['cycle_error_X']:.4f}  Y→X→Y {self.quality['cycle_error_Y']:.4f}"
            + (f"  {scores}" if scores else "") + f"   samples/epoch_{self.epoch:04d}.png")

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict:
        return {
            "config": self.config.to_dict(),
            "epoch": self.epoch, "step": self.step, "epoch_step": self.epoch_step,
            "world_size": self.world.size,  # epoch_step counts the steps of each of these processes
            "nets": {name: net.state_dict() for name, net in self.nets.items()},
            "optimizers": {"G": self.opt_G.state_dict(), "D": self.opt_D.state_dict()},
            "schedule": {"epoch": self.epoch, "lr_factor": lr_factor(self.epoch, self.config.epochs, self.config.epochs_decay)},
            "pools": {"X": self.pool_X.state_dict(), "Y": self.pool_Y.state_dict()},
            "rng": {"torch": torch.get_rng_state()},
            "domains": {"X": self.domains.name_a, "Y": self.domains.name_b},
        }

    def load_state_dict(self, state: dict) -> None:
        for name, net in self.nets.items():
            net.load_state_dict(state["nets"][name])
        self.opt_G.load_state_dict(state["optimizers"]["G"])
        self.opt_D.load_state_dict(state["optimizers"]["D"])
        self.pool_X.load_state_dict(state["pools"]["X"], self.device)
        self.pool_Y.load_state_dict(state["pools"]["Y"], self.device)
        torch.set_rng_state(state["rng"]["torch"])
        self.epoch, self.step, self.epoch_step = state["epoch"], state["step"], state["epoch_step"]

    def save(self) -> Path | None:
        """Rank 0 writes the checkpoint (the unwrapped nets; optimiser states are the same on every rank) while the
        others wait for it at a barrier."""
        path = ckpt.save_checkpoint(self.run_dir, self.state_dict(), keep=self.config.keep) if self.world.is_main else None
        distributed.barrier(self.world)
        return path

    # ----------------------------------------------------------------- what the user sees
    @contextlib.contextmanager
    def _signals_trapped(self):
        """Ctrl-C / SIGTERM finish the current step, save a checkpoint, then stop (exit 130)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            if self._stop_signal:
                # Distributed: torchrun forwards the terminal's Ctrl-C a second time and escalates to SIGKILL itself
                # after its shutdown timeout; stopping now would lose the checkpoint the other ranks are waiting for.
                if self.world.distributed:
                    return
                raise KeyboardInterrupt  # a second Ctrl-C: stop now
            self._stop_signal = signal.Signals(signum).name
            self.console.print(f"\n{self._stop_signal}: finishing this step and saving a checkpoint ...")

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    def _progress(self) -> Progress:
        """One bar per epoch with it/s and the current losses; silent with --quiet or off a terminal."""
        return Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), _SpeedColumn(),
            TextColumn("{task.fields[losses]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=self.console, disable=self.config.quiet or not self.world.is_main or not self.console.is_terminal)

    def _print_summary(self) -> None:
        cfg, d = self.config, self.domains
        table = Table(title=f"cycletrans train: {cfg.name}", show_header=False, box=None)
        table.add_row("domain X (A)", f"{d.folder_a}  {len(d.images_a)} images")
        table.add_row("domain Y (B)", f"{d.folder_b}  {len(d.images_b)} images")
        if d.skipped:
            table.add_row("skipped", f"{len(d.skipped)} unreadable files (e.g. {d.skipped[0]})")
        table.add_row("device", f"{self.device} ({self.precision})")
        if self.world.distributed:
            table.add_row("processes", f"{self.world.size} ({'NCCL' if self.device.type == 'cuda' else 'gloo'}), "
                                       f"each on its own shard of domain X; effective batch "
                                       f"{self.world.size * cfg.batch_size}")
        table.add_row("networks", f"G, F: {cfg.netG} ngf {cfg.ngf}, {count_parameters(self.G):,} params each; "
                                  f"D_X, D_Y: PatchGAN ndf {cfg.ndf}, {count_parameters(self.D_X):,} params each")
        table.add_row("objective", f"{cfg.objective}, λ_cycle {cfg.lambda_cycle}, λ_identity {cfg.lambda_identity}, pool {cfg.pool_size}")
        table.add_row("schedule", f"{cfg.epochs} + {cfg.epochs_decay} decay epochs × {self.steps_per_epoch} steps, "
                                  f"batch {cfg.batch_size}, Adam lr {cfg.lr}"
                                  f"{f' × {self.world.size} (--scale-lr)' if cfg.scale_lr else ''} β1 {cfg.beta1}")
        table.add_row("images", f"load {cfg.load_size} → crop {cfg.crop_size}{', flip' if cfg.flip else ''}; seed {cfg.seed}")
        table.add_row("run folder", str(self.run_dir))
        self.console.print(table)
        if d.skipped:
            self.console.print(f"warning: skipped {len(d.skipped)} files that are not readable images")

    def _print_end(self, elapsed: float) -> None:
        last = self.history[-1] if self.history else {}
        summary = _short(last)
        self.console.print(
            f"done: epoch {self.epoch}/{self.config.total_epochs}, step {self.step}, {elapsed:.0f} s "
            f"({1 / self.seconds_per_step:.2f} it/s)\n  last losses: {summary}\n"
            f"  checkpoints: {ckpt.checkpoint_dir(self.run_dir)}  losses: {self.run_dir / 'losses.csv'}  "
            f"samples: {self.run_dir / 'samples'}\n"
            f"  next: cycletrans export {self.run_dir} --name {self.config.name}")


def _ignored_on_resume(saved: dict, given: TrainConfig) -> list[str]:
    """The options of `given` that were set (they differ from what the same command gives by default) but that
    the saved config overrides, as the user would have typed them: '--epochs 200'."""
    defaults = TrainConfig(data_a="", data_b=None, name=given.name).to_dict()
    defaults["netG"] = TrainConfig(data_a="", data_b=None, crop_size=given.crop_size).netG  # derived from the crop
    ignored = []
    for key, value in given.to_dict().items():
        if key in RESUMABLE_OVERRIDES or key not in saved or value == defaults[key] or value == saved[key]:
            continue
        ignored.append(f"the folder {value}" if key in ("data_a", "data_b") else f"--{key.replace('_', '-')} {value}")
    return ignored


class _SpeedColumn(ProgressColumn):
    def render(self, task) -> Text:
        return Text(f"{task.speed:.2f} it/s" if task.speed else "… it/s")


def _short(losses: dict[str, float]) -> str:
    keys = ("D_X", "D_Y", "G_gan", "F_gan", "cycle_X", "cycle_Y")
    return " ".join(f"{k} {losses[k]:.3f}" for k in keys if k in losses)
