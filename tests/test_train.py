"""`cycletrans train`: files written, exact resume, damaged checkpoints, bad input, and that it learns."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_image_folder, synthetic_image
from cycletrans.train import TrainConfig, train
from cycletrans.train import checkpoint as ckpt
from cycletrans.train.losses import cycle_loss, identity_loss, lsgan_loss
from cycletrans.train.loop import Trainer
from cycletrans.train.schedule import lr_factor

TINY = ["--crop-size", "32", "--load-size", "36", "--ngf", "4", "--ndf", "4", "--seed", "1", "--quiet"]


@pytest.fixture
def domains(tmp_path):
    a = make_image_folder(tmp_path / "A", 4, (40, 40), seed=1)
    b = make_image_folder(tmp_path / "B", 3, (40, 40), seed=2, tint=(60, -30, 0))
    return a, b


def tiny_config(a, b, out, **overrides) -> TrainConfig:
    values = dict(out=str(out), crop_size=32, load_size=36, ngf=4, ndf=4, seed=3, quiet=True, epochs=1, epochs_decay=2)
    values.update(overrides)
    return TrainConfig(str(a), str(b), **values)


def folder_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        h.update(str(p.relative_to(folder)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def test_one_epoch_writes_checkpoint_samples_and_losses(cli, domains, tmp_path):
    a, b = domains
    before = folder_digest(a), folder_digest(b)
    result = cli("train", a, b, "--out", tmp_path / "run", "--epochs", "1", "--epochs-decay", "0", *TINY)
    assert result.code == 0, result.err
    run = tmp_path / "run"
    checkpoints = ckpt.list_checkpoints(run)
    assert [p.name for p in checkpoints] == ["step_000000004.pt"]  # max(4, 3) images → 4 steps
    state = ckpt.load_checkpoint_file(checkpoints[0])
    assert state["epoch"] == 1 and state["step"] == 4 and state["config"]["ngf"] == 4
    assert set(state["nets"]) == {"G", "F", "D_X", "D_Y"}
    grid = Image.open(run / "samples" / "epoch_0001.png")
    assert grid.size == (3 * 32, 6 * 32)  # 3 images per domain: real | translated | reconstructed
    lines = (run / "losses.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,step,lr,D_X,D_Y")
    assert lines[-1].split(",")[:2] == ["1", "4"]
    assert (folder_digest(a), folder_digest(b)) == before  # inputs untouched
    assert not list(run.rglob("*.partial-*"))


def test_dataset_folder_with_trainA_trainB(cli, tmp_path):
    make_image_folder(tmp_path / "ds" / "trainA", 2, (36, 36), seed=1)
    make_image_folder(tmp_path / "ds" / "trainB", 2, (36, 36), seed=2)
    make_image_folder(tmp_path / "ds" / "testA", 2, (36, 36), seed=3)
    make_image_folder(tmp_path / "ds" / "testB", 2, (36, 36), seed=4)
    result = cli("train", tmp_path / "ds", "--out", tmp_path / "run", "--epochs", "1", "--epochs-decay", "0", *TINY)
    assert result.code == 0, result.err
    assert ckpt.list_checkpoints(tmp_path / "run")
    # The quality report uses the held-out test images beside trainA/trainB, and scores the paired ones.
    header, row = (tmp_path / "run" / "quality.csv").read_text().splitlines()
    quality = dict(zip(header.split(","), row.split(",")))
    assert quality["held_out"] == "1" and quality["images"] == "2"
    assert 0 < float(quality["cycle_error_X"]) < 1 and "G_psnr" in quality


def test_empty_test_folders_do_not_fail_the_epoch(cli, tmp_path):
    """testA/ and testB/ present but empty: the epoch is reported on the training images and saved."""
    make_image_folder(tmp_path / "ds" / "trainA", 2, (36, 36), seed=1)
    make_image_folder(tmp_path / "ds" / "trainB", 2, (36, 36), seed=2)
    (tmp_path / "ds" / "testA").mkdir()
    (tmp_path / "ds" / "testB").mkdir()
    result = cli("train", tmp_path / "ds", "--out", tmp_path / "run", "--epochs", "1", "--epochs-decay", "0", *TINY)
    assert result.code == 0, result.err
    assert ckpt.list_checkpoints(tmp_path / "run")
    header, row = (tmp_path / "run" / "quality.csv").read_text().splitlines()
    assert dict(zip(header.split(","), row.split(",")))["held_out"] == "0"


def test_resume_continues_exactly(domains, tmp_path):
    """Stopping mid-epoch and resuming gives bit-for-bit the weights of an uninterrupted run."""
    a, b = domains
    straight = train(tiny_config(a, b, tmp_path / "straight"))  # 3 epochs × 4 steps, lr decays in epochs 2-3
    assert straight.step == 12

    first = train(tiny_config(a, b, tmp_path / "resumed", max_steps=6))  # stops in the middle of epoch 2
    assert (first.epoch, first.step, first.epoch_step) == (1, 6, 2)
    resumed = Trainer(tiny_config(a, b, tmp_path / "resumed", max_steps=None), resume=True)
    assert (resumed.epoch, resumed.step, resumed.epoch_step) == (1, 6, 2)
    resumed.run()
    assert resumed.step == 12
    assert resumed.opt_G.param_groups[0]["lr"] == pytest.approx(2e-4 * lr_factor(2, 1, 2))
    for name, net in straight.nets.items():
        for (key, w1), w2 in zip(net.state_dict().items(), resumed.nets[name].state_dict().values()):
            assert torch.equal(w1, w2), f"{name}.{key} differs after resume"
    rows = (tmp_path / "resumed" / "losses.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[1]) for r in rows] == [4, 6, 8, 12]


def test_resume_skips_damaged_and_half_written_checkpoints(domains, tmp_path):
    a, b = domains
    run = tmp_path / "run"
    train(tiny_config(a, b, run, epochs=2, epochs_decay=0))
    good = ckpt.list_checkpoints(run)[-1]
    # A crash mid-write leaves only a temp file; a copy truncated by a full disk has a checkpoint's name.
    (run / "checkpoints" / ".step_000000099.partial-abc.pt").write_bytes(good.read_bytes()[:1000])
    (run / "checkpoints" / "step_000000099.pt").write_bytes(good.read_bytes()[:1000])
    trainer = Trainer(tiny_config(a, b, run, epochs=3, epochs_decay=0), resume=True)
    assert trainer.step == 8 and trainer.epoch == 2


def test_lr_schedule_is_constant_then_linear():
    factors = [lr_factor(e, 100, 100) for e in range(200)]
    assert factors[:100] == [1.0] * 100
    assert factors[100] == pytest.approx(1 - 1 / 101)
    assert factors[199] == pytest.approx(1 / 101)
    assert all(x > y for x, y in zip(factors[100:], factors[101:]))


def test_keeps_last_n_checkpoints(domains, tmp_path):
    a, b = domains
    train(tiny_config(a, b, tmp_path / "run", epochs=4, epochs_decay=0, keep=2))
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "run")] == ["step_000000012.pt", "step_000000016.pt"]


def test_batched_step_equals_the_reference_computation(domains, tmp_path):
    """Our step batches the calls of each network; the losses must be those of the paper's separate terms."""
    a, b = domains
    t = Trainer(tiny_config(a, b, tmp_path / "run", pool_size=0))
    x, y = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        fake_y, fake_x = t.G(x), t.F(y)
        expected = {
            "G_gan": lsgan_loss(t.D_Y(fake_y), True), "F_gan": lsgan_loss(t.D_X(fake_x), True),
            "cycle_X": cycle_loss(t.F(fake_y), x) * 10, "cycle_Y": cycle_loss(t.G(fake_x), y) * 10,
            "idt_Y": identity_loss(t.G(y), y) * 5, "idt_X": identity_loss(t.F(x), x) * 5,
            # As in the reference: D judges the fakes of this step's forward pass (made before G's update; the
            # pool is off here), with the objective halved (appendix 7.1).
            "D_Y": 0.5 * (lsgan_loss(t.D_Y(y), True) + lsgan_loss(t.D_Y(fake_y), False)),
            "D_X": 0.5 * (lsgan_loss(t.D_X(x), True) + lsgan_loss(t.D_X(fake_x), False)),
        }
    losses = t.train_step(x, y)
    for key, value in expected.items():
        assert losses[key] == pytest.approx(float(value), rel=1e-4), key


def test_ablation_objectives_switch_terms(domains, tmp_path):
    a, b = domains
    x, y = torch.randn(1, 3, 32, 32), torch.randn(1, 3, 32, 32)
    cycle_only = Trainer(tiny_config(a, b, tmp_path / "c", objective="cycle", lambda_identity=0)).train_step(x, y)
    assert set(cycle_only) == {"cycle_X", "cycle_Y", "G_total"}
    forward = Trainer(tiny_config(a, b, tmp_path / "f", objective="gan+forward", lambda_identity=0)).train_step(x, y)
    assert {"G_gan", "F_gan", "cycle_X", "D_X", "D_Y"} <= set(forward) and "cycle_Y" not in forward


def test_learns_a_colour_change(tmp_path):
    """Toy task: B is A with a fixed colour shift. A few hundred steps with the paper's settings must lower the
    cycle loss and move G(A)'s colours along the shift."""
    tint = np.array([70, -50, -30])
    a = make_image_folder(tmp_path / "A", 16, (32, 32), seed=5)
    b = make_image_folder(tmp_path / "B", 16, (32, 32), seed=6, tint=tuple(tint))
    trainer = train(TrainConfig(str(a), str(b), out=str(tmp_path / "run"), crop_size=32, load_size=32, ngf=8, ndf=8,
                                seed=0, quiet=True, epochs=12, epochs_decay=6))
    assert trainer.step == 288
    cycles = [row["cycle_X"] + row["cycle_Y"] for row in trainer.history]
    assert np.mean(cycles[-3:]) < 0.75 * np.mean(cycles[:2]), cycles
    test = np.stack([synthetic_image((32, 32), 999 + i) for i in range(4)])  # unseen images of domain A
    x = torch.from_numpy(test.transpose(0, 3, 1, 2)).float() / 127.5 - 1
    with torch.no_grad():
        out = (trainer.G(x).clamp(-1, 1) + 1) * 127.5
    shift = out.mean(dim=(0, 2, 3)).numpy() - test.mean(axis=(0, 1, 2))
    target = np.clip(test.astype(float) + tint, 0, 255).mean(axis=(0, 1, 2)) - test.mean(axis=(0, 1, 2))
    cosine = shift @ target / (np.linalg.norm(shift) * np.linalg.norm(target))
    assert cosine > 0.8 and np.linalg.norm(shift) > 0.5 * np.linalg.norm(target), (shift, target)


# ---------------------------------------------------------------------------------------------- bad input

def test_missing_folder(cli, tmp_path, domains):
    result = cli("train", tmp_path / "nope", domains[1], *TINY)
    assert result.code == 2
    assert "nope: no such folder" in result.err and "Traceback" not in result.err


def test_empty_folder_and_unreadable_folder(cli, tmp_path, domains):
    (tmp_path / "empty").mkdir()
    result = cli("train", tmp_path / "empty", domains[1], *TINY)
    assert result.code == 2 and "no images found" in result.err
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.png").write_bytes(b"not a png")
    (junk / "b.jpg").write_bytes(b"")
    result = cli("train", junk, domains[1], *TINY)
    assert result.code == 2 and "none of its 2 image files could be read" in result.err


def test_no_data_given(cli):
    result = cli("train", *TINY)
    assert result.code == 2 and "give the training images" in result.err


def test_resume_with_nothing_to_resume_and_no_data(cli, tmp_path):
    result = cli("train", "--resume", "--out", tmp_path / "run", *TINY)
    assert result.code == 2 and "Traceback" not in result.err
    assert "nothing to resume: no checkpoint under" in result.err and "give the training images" in result.err
    assert not (tmp_path / "run").exists()


def test_out_that_is_a_file(cli, domains, tmp_path):
    (tmp_path / "afile").write_text("mine")
    for out in (tmp_path / "afile", tmp_path / "afile" / "run"):
        result = cli("train", *domains, "--out", out, *TINY)
        assert result.code == 2 and "cannot create the run folder" in result.err and "Traceback" not in result.err
    assert (tmp_path / "afile").read_text() == "mine"


def test_run_folder_inside_the_training_images_is_refused(cli, domains, monkeypatch):
    a, b = domains
    before = folder_digest(a)
    result = cli("train", a, b, "--out", a / "run", *TINY)
    assert result.code == 2 and "inside the training images" in result.err
    monkeypatch.chdir(a)  # the default runs/NAME, from inside a data folder
    result = cli("train", ".", b, *TINY)
    assert result.code == 2 and "inside the training images" in result.err
    assert folder_digest(a) == before


def test_missing_dataset_folder(cli, tmp_path):
    result = cli("train", tmp_path / "nope", *TINY)
    assert result.code == 2 and "nope: no such folder" in result.err


def test_bad_option_values(cli, domains, tmp_path):
    result = cli("train", *domains, "--out", tmp_path / "r", *TINY, "--objective", "nope", "--load-size", "16")
    assert result.code == 2
    assert "--objective must be one of" in result.err and "--load-size (16) must be at least --crop-size" in result.err


def test_device_cuda_without_gpu(cli, domains, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = cli("train", *domains, "--out", tmp_path / "r", "--device", "cuda", *TINY)
    assert result.code == 2 and "no CUDA GPU" in result.err


def test_existing_run_needs_resume(cli, domains, tmp_path):
    args = ["train", *domains, "--out", tmp_path / "run", "--epochs", "1", "--epochs-decay", "0", *TINY]
    assert cli(*args).code == 0
    again = cli(*args)
    assert again.code == 2 and "--resume" in again.err


def test_resume_names_the_options_it_ignores(cli, domains, tmp_path):
    run = tmp_path / "run"
    assert cli("train", *domains, "--out", run, "--epochs", "1", "--epochs-decay", "0", *TINY).code == 0
    before = ckpt.list_checkpoints(run)
    # Same options again (as a user retyping the command) plus a longer schedule and another lr.
    result = cli("train", *domains, "--out", run, "--epochs", "3", "--epochs-decay", "0", *TINY[:-1],
                 "--lr", "0.001", "--crop-size", "28", "--resume")
    assert result.code == 0, result.err
    for option in ("--epochs 3", "--lr 0.001", "--crop-size 28"):
        assert f"note: {option} is ignored" in result.err
    assert result.err.count("note:") == 3  # the options that match the saved run are not mentioned
    assert "nothing to do: the run in" in result.err and "epoch 1/1, step 4" in result.err
    assert ckpt.list_checkpoints(run) == before


def test_odd_images_are_converted_and_junk_skipped(cli, tmp_path):
    a = tmp_path / "A"
    a.mkdir()
    rgb = synthetic_image((30, 20), 1)  # smaller than the crop: upscaled
    Image.fromarray(rgb[..., 0]).save(a / "gray.png")
    Image.fromarray(np.dstack([rgb, np.full((30, 20), 128, np.uint8)])).save(a / "rgba.png")
    Image.fromarray((rgb[..., 1].astype(np.uint16) * 257)).save(a / "sixteen.png")
    Image.fromarray(rgb).convert("P").save(a / "palette.png")
    Image.fromarray(rgb).save(a / "photo.jpg")
    (a / "notes.txt").write_text("not an image")
    (a / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    b = make_image_folder(tmp_path / "B", 3, (40, 40), seed=2)
    before = folder_digest(a)
    result = cli("train", a, b, "--out", tmp_path / "run", "--epochs", "1", "--epochs-decay", "0", *TINY[:-1])
    assert result.code == 0, result.err
    assert "skipped 1 files that are not readable images" in result.err
    assert ckpt.load_checkpoint_file(ckpt.list_checkpoints(tmp_path / "run")[-1])["step"] == 5
    assert folder_digest(a) == before


def test_images_that_fail_only_when_decoded(cli, tmp_path, domains):
    """Truncated PNGs pass the header check: the sample grid and the batches use the readable images instead, and
    a folder of nothing else is one clear error."""
    a = make_image_folder(tmp_path / "A", 4, (40, 40), seed=1)
    for path in sorted(a.iterdir())[:3]:
        path.write_bytes(path.read_bytes()[:120])
    result = cli("train", a, domains[1], "--out", tmp_path / "run", "--epochs", "1", "--epochs-decay", "0", *TINY)
    assert result.code == 0, result.err
    assert (tmp_path / "run" / "samples" / "epoch_0001.png").is_file()
    for path in sorted(a.iterdir()):
        path.write_bytes(path.read_bytes()[:120])
    result = cli("train", a, domains[1], "--out", tmp_path / "run2", *TINY)
    assert result.code == 2 and "none of its images could be read" in result.err and "Traceback" not in result.err


def test_sigint_saves_a_checkpoint_that_resumes(domains, tmp_path):
    a, b = domains
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "cycletrans", "train", str(a), str(b), "--out", str(run), "--epochs", "500",
           "--epochs-decay", "0", *TINY[:-1]]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not ckpt.list_checkpoints(run) and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "checkpoint saved" in err and "--resume" in err and "Traceback" not in err
    stopped = ckpt.load_checkpoint_file(ckpt.list_checkpoints(run)[-1])["step"]
    trainer = Trainer(tiny_config(a, b, run, epochs=500, epochs_decay=0, max_steps=stopped + 2), resume=True)
    assert trainer.step == stopped
    trainer.run()
    assert trainer.step == stopped + 2


def test_image_pool_fills_then_swaps_half_the_time():
    from cycletrans.train.pool import ImagePool

    pool = ImagePool(size=3, seed=0)
    first = torch.arange(3.0).view(3, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling up: every image is stored and returned
    swaps, n = 0, 2000
    for i in range(n):
        image = torch.full((1, 1, 1, 1), 100.0 + i)
        returned = pool.query(image)
        swaps += not torch.equal(returned, image)
        assert len(pool.images) == 3
    assert 0.45 < swaps / n < 0.55  # paper 4 / reference: with probability 1/2 an older image is returned
    # A resumed pool (state_dict round trip) continues exactly as the original would.
    clone = ImagePool(size=3)
    clone.load_state_dict(pool.state_dict())
    batch = torch.randn(4, 1, 1, 1)
    assert torch.equal(clone.query(batch), pool.query(batch))
    assert ImagePool(size=0).query(batch) is batch
