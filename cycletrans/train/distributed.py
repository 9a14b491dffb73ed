"""Data-parallel training: one process per GPU (or per CPU slot with gloo), started by torchrun or by `--gpus N`.

Every process holds the four networks, reads its own disjoint shard of domain A each epoch, and
DistributedDataParallel averages the gradients at every step, so the copies stay identical. The B partner of an
item is drawn from (seed, epoch, item index); the processes' indices are disjoint, so each draws its own partners,
and an epoch pairs the same images whatever the number of processes. Each process keeps its own image pool. The effective batch is therefore world_size × batch_size. The learning rate stays the paper's unless
`scale_lr` asks for the linear scaling rule (Goyal et al. 2017): lr × world_size, which keeps the step size per
image that --lr and --batch-size describe for one process. CycleGAN's Adam at lr 2e-4 was tuned for batch 1 and
GAN balance is sensitive to it, hence off by default.

Only rank 0 writes (checkpoints, samples, losses.csv, the console); the others wait at a barrier while it saves.
Checkpoints hold the unwrapped networks, so a run resumes on any number of processes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import inspect
import json
import os
import sys
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.distributed as dist

from cycletrans.errors import CycletransError, DeviceError, InputError

DEBUG_DIGESTS_ENV = "CYCLETRANS_DEBUG_WEIGHT_DIGESTS"  # a folder: each rank writes rank_<r>.json at the end of a run


class PeerLost(CycletransError):
    """Another training process died or stalled; this one stops instead of waiting forever."""


@dataclass(frozen=True)
class World:
    """Where this process stands among the training processes (torchrun's RANK, LOCAL_RANK, WORLD_SIZE)."""

    rank: int = 0
    local_rank: int = 0
    size: int = 1
    local_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> "World":
        """The torchrun environment, or a world of one outside it."""
        env = os.environ
        if "RANK" not in env or "WORLD_SIZE" not in env:
            return cls()
        try:
            return cls(rank=int(env["RANK"]), local_rank=int(env.get("LOCAL_RANK", 0)), size=int(env["WORLD_SIZE"]),
                       local_size=int(env.get("LOCAL_WORLD_SIZE", env["WORLD_SIZE"])))
        except ValueError:
            raise InputError("RANK, LOCAL_RANK and WORLD_SIZE must be integers (they are set by torchrun)") from None


def device_for(world: World, name: str) -> torch.device:
    """Each process on cuda:LOCAL_RANK (auto or cuda), or on the CPU (gloo)."""
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if name not in ("auto", "cuda"):
        raise DeviceError(f"--device {name}: with several processes each uses cuda:LOCAL_RANK; give --device cuda or cpu")
    if not torch.cuda.is_available():
        raise DeviceError("--device cuda: this machine has no CUDA GPU visible to PyTorch (use --device cpu)")
    if world.local_rank >= torch.cuda.device_count():
        raise DeviceError(f"process {world.rank} wants cuda:{world.local_rank}, but only "
                          f"{torch.cuda.device_count()} GPUs are visible on this machine")
    return torch.device("cuda", world.local_rank)


def join(world: World, device: torch.device, timeout_minutes: float) -> bool:
    """Start the process group (NCCL on CUDA, gloo on the CPU) unless one runs; True when this call started it.
    `timeout_minutes` bounds how long a process waits in a collective for the others, so a stalled peer ends the
    run instead of hanging it."""
    if not world.distributed or dist.is_initialized():
        return False
    if device.type == "cuda":
        torch.cuda.set_device(device)
        # A failed or timed-out NCCL collective tears the process down (torchrun then stops the others) instead
        # of leaving it blocked on the GPU.
        os.environ.setdefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1")
    elif "OMP_NUM_THREADS" not in os.environ:  # torchrun sets it; --gpus does not
        from cycletrans.engine import usable_cpus

        torch.set_num_threads(max(1, usable_cpus() // world.local_size))  # share the cores between the local ranks
    options: dict[str, Any] = {"timeout": timedelta(minutes=timeout_minutes)}
    if device.type == "cuda" and "device_id" in inspect.signature(dist.init_process_group).parameters:
        options["device_id"] = device  # binds NCCL to this GPU now (torch >= 2.3): early errors, quiet barriers
    with collective_errors():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", **options)
    return True


def leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap(net: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """DDP around one network. Each of the four gets its own wrapper: G/F and D_X/D_Y step in turn, and the G step
    must run the discriminators unwrapped (their weights are frozen there, nothing of theirs to all-reduce)."""
    return torch.nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)


def barrier(world: World) -> None:
    if world.distributed:
        with collective_errors():
            dist.barrier()


def any_rank(world: World, flag: bool, device: torch.device) -> bool:
    """True on every rank when it is True on any: how the ranks agree to stop after a signal reached some."""
    if not world.distributed:
        return flag
    value = torch.tensor([int(flag)], device=device)
    with collective_errors():
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def mean_over_ranks(world: World, values: dict[str, float], device: torch.device) -> dict[str, float]:
    """The average of each value over the ranks (every rank has the same keys): the logged losses cover all data."""
    if not world.distributed:
        return values
    keys = sorted(values)
    tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    with collective_errors():
        dist.all_reduce(tensor)
    return {k: float(v) / world.size for k, v in zip(keys, tensor.tolist())}


def from_main(world: World, value: Any) -> Any:
    """Rank 0's `value` on every rank (a picklable object), e.g. the seed that a run without --seed draws."""
    if not world.distributed:
        return value
    box = [value]
    with collective_errors():
        dist.broadcast_object_list(box, src=0)
    return box[0]


def check_same(world: World, value: Any, what: str) -> None:
    """Every rank must see the same `value` (say, the step of the checkpoint it resumes from: different values mean
    the run folder is not shared by all nodes); InputError otherwise."""
    if not world.distributed:
        return
    values: list[Any] = [None] * world.size
    with collective_errors():
        dist.all_gather_object(values, value)
    odd = [rank for rank, v in enumerate(values) if v != values[0]]
    if odd:
        raise InputError(f"the training processes disagree on {what}: rank 0 has {values[0]!r}, rank {odd[0]} has "
                         f"{values[odd[0]]!r}; every node must see the same data and run folder")


@contextlib.contextmanager
def collective_errors() -> Iterator[None]:
    """A collective that fails because a peer died or stalled becomes one clear line instead of a backend trace."""
    try:
        yield
    except RuntimeError as err:
        if not _is_collective_failure(err):
            raise
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if detail.startswith("[") and "] " in detail:  # gloo prefixes the C++ source location ...
            detail = detail.split("] ", 1)[1]
        detail = detail.split(" This is typically caused by")[0].rstrip(".")  # ... and appends generic advice
        raise PeerLost(f"lost contact with the other training processes ({detail[:200]}); "
                       f"resume from the last checkpoint with --resume") from None


def _is_collective_failure(err: RuntimeError) -> bool:
    if isinstance(err, getattr(dist, "DistError", ())):
        return True
    text = str(err)
    return any(mark in text for mark in ("gloo", "NCCL", "nccl", "c10d", "ProcessGroup"))


def resume_position(epoch_step: int, saved_world_size: int, world_size: int, batch_size: int) -> tuple[int, int]:
    """Where an interrupted epoch continues when the number of processes changed: (per-rank steps to skip, images
    that will be seen twice). Rank r takes items r, r+W, ... of the epoch's permutation, so after k steps of W
    ranks the first k·W·batch items are done, whatever W was; we skip the largest whole number of new steps
    within them."""
    done = epoch_step * saved_world_size * batch_size
    skip = done // (world_size * batch_size)
    return skip, done - skip * world_size * batch_size


def write_weight_digests(world: World, nets: dict[str, torch.nn.Module], step: int) -> None:
    """Debugging aid (tests): with CYCLETRANS_DEBUG_WEIGHT_DIGESTS=<folder>, each rank writes the SHA-256 of its
    networks' weights, which must be identical on all ranks."""
    folder = os.environ.get(DEBUG_DIGESTS_ENV)
    if not folder:
        return
    from cycletrans.fsutil import atomic_write_text

    digests = {name: state_digest(net.state_dict()) for name, net in nets.items()}
    atomic_write_text(Path(folder) / f"rank_{world.rank}.json",
                      json.dumps({"rank": world.rank, "world_size": world.size, "step": step, "nets": digests}))


def state_digest(state: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for key in sorted(state):
        h.update(key.encode())
        h.update(state[key].detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------ --gpus N

def launch(nproc: int, args: list[str], shutdown_seconds: int = 120) -> int:
    """Run `python -m cycletrans <args>` as `nproc` processes on this machine, as `torchrun --standalone
    --nproc-per-node nproc` would. Returns 0 when all succeeded, else the exit code of the first that failed
    (those print their own message; one killed by a signal is reported here, as a CycletransError).
    `shutdown_seconds` is how long the processes get after Ctrl-C to finish their step and save (torchrun: 30 s)."""
    import logging
    import signal

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    from cycletrans.errors import EXIT_INTERRUPTED

    options: dict[str, Any] = dict(
        min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=str(uuid.uuid4()), rdzv_backend="c10d",
        rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.1)
    if "shutdown_timeout" in {f.name for f in dataclasses.fields(LaunchConfig)}:
        options["shutdown_timeout"] = shutdown_seconds
    for name in list(logging.root.manager.loggerDict):  # its notices would duplicate what the processes say
        if name.startswith("torch.distributed.elastic"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        elastic_launch(LaunchConfig(**options), sys.executable)("-m", "cycletrans", *args)
    except SignalException:  # Ctrl-C / SIGTERM: the processes got it too, saved, and said so
        return EXIT_INTERRUPTED
    except ChildFailedError as err:
        rank, failure = err.get_first_failure()
        if failure.exitcode >= 0:
            return failure.exitcode
        if -failure.exitcode in (signal.SIGINT, signal.SIGTERM):
            return EXIT_INTERRUPTED
        name = signal.Signals(-failure.exitcode).name if -failure.exitcode in signal.valid_signals() else "a signal"
        raise CycletransError(f"training process {rank} was killed by {name}"
                              + (" (out of memory?)" if -failure.exitcode == signal.SIGKILL else "")) from None
    return 0
