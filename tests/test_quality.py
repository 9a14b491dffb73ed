"""The per-epoch quality report: cycle errors and eval metrics on a tiny generated paired data set."""

import csv

import pytest
import torch
from conftest import make_image_folder
from torch import nn

from cycletrans.evaluate import PSNR_CAP
from cycletrans.media.images import list_images, read_rgb
from cycletrans.nets import build_generator
from cycletrans.synthetic import make_domains
from cycletrans.train.data import to_tensor
from cycletrans.train.quality import QualityLog, epoch_quality

SIZE = 32


@pytest.fixture(scope="module")
def paired(tmp_path_factory):
    """labels2scenes at 32 px: trainA/trainB unpaired, testA/testB paired, palette.json."""
    root = tmp_path_factory.mktemp("labels2scenes")
    make_domains(root, "labels2scenes", SIZE, train=2, test=5, seed=3)
    return root


class Lookup(nn.Module):
    """A 'generator' that knows the answer: returns the stored output of each stored input (exact match)."""

    def __init__(self, pairs):
        super().__init__()
        self.pairs = pairs

    def forward(self, batch):
        return torch.stack([next(out for inp, out in self.pairs if torch.equal(inp, x)) for x in batch])


def test_random_generators_get_every_metric_in_range(paired):
    torch.manual_seed(0)
    G, F = build_generator("resnet6", 4), build_generator("resnet6", 4)
    row = epoch_quality(G, F, paired / "trainA", paired / "trainB", SIZE, "cpu", limit=4)
    assert row["held_out"] == 1 and row["images"] == 4
    for key in ("cycle_error_X", "cycle_error_Y", "G_l1", "G_ssim", "F_pixel_accuracy", "F_class_accuracy",
                "F_class_iou", "G_fcn_pixel_accuracy", "G_fcn_class_accuracy", "G_fcn_class_iou"):
        assert 0.0 <= row[key] <= 1.0, key
    assert row["cycle_error_X"] > 0.02 and row["cycle_error_Y"] > 0.02  # untrained nets do not reconstruct
    assert 0.0 < row["G_psnr"] < 30.0
    assert "F_psnr" not in row and "G_pixel_accuracy" not in row  # labels are scored as labels, scenes as images
    assert row["F_pixel_accuracy"] < 0.9


def test_identity_generators_have_zero_cycle_error(paired):
    row = epoch_quality(nn.Identity(), nn.Identity(), paired / "trainA", paired / "trainB", SIZE)
    assert row["cycle_error_X"] == 0.0 and row["cycle_error_Y"] == 0.0
    assert row["images"] == 5
    assert row["G_psnr"] < 25.0 and row["F_pixel_accuracy"] < 0.9  # a label map is not its scene


def test_generators_that_know_the_answer_score_perfectly(paired):
    """G(testA/i) = testB/i and F the reverse: the metrics must pair the outputs with the right targets."""
    a = [to_tensor(read_rgb(p)) for p in list_images(paired / "testA")]
    b = [to_tensor(read_rgb(p)) for p in list_images(paired / "testB")]
    G, F = Lookup(list(zip(a, b))), Lookup(list(zip(b, a)))
    row = epoch_quality(G, F, paired / "trainA", paired / "trainB", SIZE, autocast=torch.no_grad)
    assert row["cycle_error_X"] == 0.0 and row["cycle_error_Y"] == 0.0
    assert row["G_psnr"] == PSNR_CAP and row["G_ssim"] == pytest.approx(1.0) and row["G_l1"] == 0.0
    assert row["F_pixel_accuracy"] == row["F_class_accuracy"] == row["F_class_iou"] == 1.0
    assert row["G_fcn_pixel_accuracy"] > 0.8  # the segmenter's own score on true renderings


def test_without_test_folders_only_cycle_errors_on_training_images(tmp_path):
    make_domains(tmp_path, "day2night", SIZE, train=3, test=0, seed=1)
    assert not (tmp_path / "testA").exists()
    row = epoch_quality(nn.Identity(), nn.Identity(), tmp_path / "trainA", tmp_path / "trainB", SIZE)
    assert row == {"held_out": 0, "images": 3, "cycle_error_X": 0.0, "cycle_error_Y": 0.0}


def test_unpaired_test_folders_get_cycle_errors_only(tmp_path):
    """horse2zebra-like: testA and testB exist but their names do not pair up."""
    for split, seed in (("trainA", 0), ("trainB", 1), ("testA", 2)):
        make_image_folder(tmp_path / split, 2, size=(SIZE, SIZE), seed=seed)
    make_image_folder(tmp_path / "testB", 3, size=(SIZE, SIZE), seed=3, ext=".jpg")
    (tmp_path / "testB" / "img_000.jpg").rename(tmp_path / "testB" / "zebra.jpg")
    row = epoch_quality(nn.Identity(), nn.Identity(), tmp_path / "trainA", tmp_path / "trainB", SIZE)
    assert row == {"held_out": 1, "images": 2, "cycle_error_X": 0.0, "cycle_error_Y": 0.0}


def test_images_are_resized_to_the_crop(paired):
    seen = []

    class Spy(nn.Identity):
        def forward(self, x):
            seen.append(tuple(x.shape))
            return x

    epoch_quality(Spy(), Spy(), paired / "trainA", paired / "trainB", 16, limit=2)
    assert set(seen) == {(2, 3, 16, 16)}


def test_quality_log_writes_rows_and_drops_rows_past_a_resumed_step(tmp_path):
    log = QualityLog(tmp_path)
    log.write({"epoch": 1, "step": 10, "cycle_error_X": 0.25})
    log.write({"epoch": 2, "step": 20, "cycle_error_X": 0.125, "G_psnr": 20.5})
    with open(tmp_path / "quality.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == ["10", "20"]
    assert rows[0]["G_psnr"] == "" and rows[1]["G_psnr"] == "20.5" and rows[1]["cycle_error_X"] == "0.125"

    resumed = QualityLog(tmp_path, resume_step=10)
    resumed.write({"epoch": 2, "step": 20, "cycle_error_X": 0.5})
    with open(tmp_path / "quality.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["step"], r["cycle_error_X"]) for r in rows] == [("10", "0.25"), ("20", "0.5")]

    fresh = QualityLog(tmp_path)  # a new run starts a new file at its first row
    fresh.write({"epoch": 1, "step": 5, "cycle_error_X": 0.75})
    assert (tmp_path / "quality.csv").read_text().splitlines() == ["epoch,step,cycle_error_X", "1,5,0.75"]


def test_empty_test_folders_fall_back_to_training_images(tmp_path):
    """An empty testA/ (or one of only unreadable files) must not fail the epoch after it has been trained."""
    make_domains(tmp_path, "day2night", SIZE, train=3, test=0, seed=1)
    (tmp_path / "testA").mkdir()
    (tmp_path / "testB").mkdir()
    (tmp_path / "testB" / "broken.png").write_bytes(b"not a png")
    row = epoch_quality(nn.Identity(), nn.Identity(), tmp_path / "trainA", tmp_path / "trainB", SIZE)
    assert row == {"held_out": 0, "images": 3, "cycle_error_X": 0.0, "cycle_error_Y": 0.0}


def test_unreadable_files_are_passed_over(tmp_path):
    """More unreadable files than `limit` at the head of a folder: the readable ones after them are used."""
    make_domains(tmp_path, "day2night", SIZE, train=3, test=0, seed=1)
    for i in range(4):
        (tmp_path / "trainA" / f"0000-broken{i}.png").write_bytes(b"not a png")
    row = epoch_quality(nn.Identity(), nn.Identity(), tmp_path / "trainA", tmp_path / "trainB", SIZE, limit=2)
    assert row == {"held_out": 0, "images": 2, "cycle_error_X": 0.0, "cycle_error_Y": 0.0}


def test_an_unreadable_test_file_drops_its_pair_only(paired, tmp_path):
    """testA/00000.png broken: the other pairs stay paired (and scored against the right targets)."""
    import shutil

    root = tmp_path / "data"
    shutil.copytree(paired, root)
    (root / "testA" / list_images(root / "testA")[0].name).write_bytes(b"not a png")
    a = [to_tensor(read_rgb(p)) for p in list_images(root / "testA")[1:]]
    b = [to_tensor(read_rgb(p)) for p in list_images(root / "testB")[1:]]
    G, F = Lookup(list(zip(a, b))), Lookup(list(zip(b, a)))
    row = epoch_quality(G, F, root / "trainA", root / "trainB", SIZE)
    assert row["held_out"] == 1 and row["images"] == 4
    assert row["G_l1"] == 0.0 and row["F_pixel_accuracy"] == 1.0


def test_a_malformed_palette_file_falls_back_to_the_target_colours(paired, tmp_path):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(paired, root)
    (root / "palette.json").write_text('{"classes": [{"name": "sky"}]}')
    row = epoch_quality(nn.Identity(), nn.Identity(), root / "trainA", root / "trainB", SIZE)
    assert row["held_out"] == 1 and 0.0 <= row["F_pixel_accuracy"] < 0.9
