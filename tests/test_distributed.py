"""Data-parallel training on CPU processes (gloo): torchrun and --gpus runs stay in sync, only rank 0 writes, a
stop is agreed, and a checkpoint resumes on a different number of processes."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from rich.console import Console

from conftest import make_image_folder
from cycletrans.train import TrainConfig
from cycletrans.train import checkpoint as ckpt
from cycletrans.train.distributed import (DEBUG_DIGESTS_ENV, PeerLost, collective_errors, resume_position,
                                          state_digest)
from cycletrans.train.loop import Trainer

TINY = ["--crop-size", "32", "--load-size", "36", "--ngf", "4", "--ndf", "4", "--seed", "1", "--device", "cpu"]
LIMIT = 180  # seconds any one launch may take before the test calls it a hang


@pytest.fixture
def domains(tmp_path):
    a = make_image_folder(tmp_path / "A", 8, (40, 40), seed=1)  # 8 images: 4 steps per process per epoch on 2
    b = make_image_folder(tmp_path / "B", 5, (40, 40), seed=2, tint=(60, -30, 0))
    return a, b


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args: list[str], digests: Path) -> subprocess.Popen:
    """`python <args>` in a process group of its own (like a terminal job), each rank dumping its weight digests."""
    env = {**os.environ, DEBUG_DIGESTS_ENV: str(digests), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=LIMIT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("the distributed run hung")
    return proc.returncode, err


def rank_digests(folder: Path) -> list[dict]:
    return [json.loads((folder / f"rank_{r}.json").read_text()) for r in (0, 1)]


def test_torchrun_two_processes_stay_in_sync_and_resume_on_one(domains, tmp_path):
    a, b = domains
    run = tmp_path / "run"
    proc = launch(["-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(free_port()),
                   "-m", "cycletrans", "train", str(a), str(b), "--out", str(run), "--epochs", "2",
                   "--epochs-decay", "1", "--max-steps", "6", *TINY], tmp_path / "digests")
    code, err = finish(proc)
    assert code == 0, err

    # The two copies of every network are identical after training (gradients were averaged) ...
    rank0, rank1 = rank_digests(tmp_path / "digests")
    assert rank0["world_size"] == 2 and rank0["step"] == rank1["step"] == 6
    assert rank0["nets"] == rank1["nets"]
    # ... and are what the checkpoint holds: the unwrapped networks, keys as in a one-process run.
    saved = ckpt.load_checkpoint_file(ckpt.list_checkpoints(run)[-1])
    assert {name: state_digest(state) for name, state in saved["nets"].items()} == rank0["nets"]
    assert not any(key.startswith("module.") for key in saved["nets"]["G"])

    # Only rank 0 wrote: one checkpoint per save, one sample grid per epoch, each log row once.
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["step_000000004.pt", "step_000000006.pt"]
    assert (saved["epoch"], saved["step"], saved["epoch_step"], saved["world_size"]) == (1, 6, 2, 2)
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_0001.png"]
    rows = (run / "losses.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[1]) for r in rows] == [4, 6]
    assert not list(run.rglob("*.partial-*"))
    assert err.count("cycletrans train: run") == 1  # the summary comes from rank 0 alone

    # One process resumes: 2 steps × 2 processes of epoch 2 are done, i.e. 4 of its 8 one-process steps.
    out = io.StringIO()
    config = TrainConfig(str(a), str(b), out=str(run), device="cpu", quiet=True)
    trainer = Trainer(config, resume=True, console=Console(file=out, width=200))
    assert (trainer.epoch, trainer.step, trainer.epoch_step, trainer.steps_per_epoch) == (1, 6, 4, 8)
    assert "written by 2 process(es), this run has 1: epoch 2 continues at step 4 of 8" in out.getvalue()
    trainer.run()
    assert (trainer.epoch, trainer.step) == (3, 6 + 4 + 8)
    assert ckpt.load_checkpoint_file(ckpt.list_checkpoints(run)[-1])["world_size"] == 1


def test_gpus_option_on_cpu_launches_processes_and_ctrl_c_saves_once(domains, tmp_path):
    """`--gpus 2 --device cpu` starts two gloo processes; Ctrl-C (SIGINT to the whole process group, as a terminal
    sends it) makes them stop at the same step, rank 0 saves while the other waits, and the launcher exits 130."""
    a, b = domains
    run = tmp_path / "run"
    proc = launch(["-m", "cycletrans", "train", str(a), str(b), "--out", str(run), "--epochs", "500",
                   "--epochs-decay", "0", "--gpus", "2", *TINY], tmp_path / "digests")
    deadline = time.time() + LIMIT
    while not ckpt.list_checkpoints(run) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[1]
    os.killpg(proc.pid, signal.SIGINT)
    code, err = finish(proc)
    assert code == 130, err
    assert err.count("checkpoint saved at step") == 1 and "--resume" in err and "Traceback" not in err
    rank0, rank1 = rank_digests(tmp_path / "digests")
    assert rank0["nets"] == rank1["nets"] and rank0["step"] == rank1["step"]
    last = ckpt.load_checkpoint_file(ckpt.list_checkpoints(run)[-1])
    assert last["step"] == rank0["step"] and last["world_size"] == 2


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the processes through Linux /proc")
def test_a_dead_process_ends_the_run_instead_of_hanging_it(domains, tmp_path):
    """Rank 1 is killed (as by the OOM killer): rank 0 stops with a clear line, the launcher names the culprit."""
    a, b = domains
    proc = launch(["-m", "cycletrans", "train", str(a), str(b), "--out", str(tmp_path / "run"), "--epochs", "500",
                   "--epochs-decay", "0", "--gpus", "2", "--dist-timeout", "0.5", *TINY], tmp_path / "digests")
    deadline = time.time() + LIMIT
    while not ckpt.list_checkpoints(tmp_path / "run") and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    rank1 = [pid for pid in children if b"RANK=1" in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")]
    assert len(rank1) == 1, children
    os.kill(int(rank1[0]), signal.SIGKILL)
    started = time.time()
    code, err = finish(proc)
    assert code == 2 and time.time() - started < 60, err
    assert "training process 1 was killed by SIGKILL" in err and "Traceback" not in err


def test_gpus_without_cuda_is_a_clear_error(cli, domains, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = cli("train", *domains, "--out", tmp_path / "run", "--gpus", "2", *TINY[:-2])
    assert result.code == 2
    assert "--gpus 2: this machine has no CUDA GPU" in result.err and "--device cpu" in result.err
    assert not (tmp_path / "run").exists()


def test_resume_position_when_the_number_of_processes_changes():
    # (per-rank steps done, processes then, processes now, batch) → (steps to skip now, images seen twice)
    assert resume_position(2, 2, 1, 1) == (4, 0)
    assert resume_position(3, 1, 2, 1) == (1, 1)  # 3 images done; two processes can skip 2, one is repeated
    assert resume_position(5, 4, 3, 2) == (6, 4)  # 40 images done; 6 steps of 3×2 cover 36
    assert resume_position(7, 2, 2, 4) == (7, 0)


def test_a_failed_collective_is_one_clear_line():
    with pytest.raises(PeerLost) as caught, collective_errors():
        raise RuntimeError("[../third_party/gloo/gloo/transport/tcp/pair.cc:537] Read error [127.0.0.1]:25526: "
                           "Connection reset by peer. This is typically caused by a remote worker hanging ...")
    message = str(caught.value)
    assert message.startswith("lost contact with the other training processes (Read error")
    assert "pair.cc" not in message and "typically" not in message and "--resume" in message
    with pytest.raises(ValueError), collective_errors():  # anything else passes through untouched
        raise ValueError("not a collective")
