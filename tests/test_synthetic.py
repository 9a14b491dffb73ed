"""Synthetic paired domains: the files written, determinism in the seed, and that test pairs share a layout."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from cycletrans.errors import InputError
from cycletrans.evaluate import label_metrics, load_palette
from cycletrans.media.images import list_images, read_rgb
from cycletrans.synthetic import SCENE_PALETTE, make_domains, random_layout, sample, scene_segmenter

ROOT = Path(__file__).resolve().parent.parent


def test_make_domains_writes_the_splits_and_the_palette(tmp_path):
    out = tmp_path / "ds"
    summary = make_domains(out, "labels2scenes", size=32, train=5, test=3, seed=1)
    for split, count in {"trainA": 5, "trainB": 5, "testA": 3, "testB": 3}.items():
        files = list_images(out / split)
        assert [f.name for f in files] == [f"{i:05d}.png" for i in range(count)]
        assert all(read_rgb(f).shape == (32, 32, 3) for f in files)
    assert not [p for p in out.rglob(".*")]  # no temporary files left behind
    card = json.loads((out / "palette.json").read_text())
    assert card["kind"] == "labels2scenes" and card["size"] == 32 and card["seed"] == 1 == summary["seed"]
    palette = load_palette(out / "palette.json")
    assert palette.names == SCENE_PALETTE.names
    assert np.array_equal(palette.colours, SCENE_PALETTE.colours)
    labels = read_rgb(out / "testA" / "00000.png")
    assert np.isin(labels.reshape(-1, 3).view([("", np.uint8)] * 3),  # label maps use palette colours only
                   SCENE_PALETTE.colours.view([("", np.uint8)] * 3)).all()


def test_make_domains_refuses_a_non_empty_folder_without_force(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        make_domains(tmp_path, size=32, train=1, test=1)
    make_domains(tmp_path, size=32, train=1, test=1, force=True)
    assert (tmp_path / "keep.txt").read_text() == "mine" and (tmp_path / "testB" / "00000.png").is_file()
    with pytest.raises(InputError, match="unknown kind"):
        make_domains(tmp_path / "other", kind="zebras", size=32, train=1, test=1)


def test_same_seed_same_images_and_different_seed_different_images(tmp_path):
    make_domains(tmp_path / "a", size=32, train=2, test=2, seed=5)
    make_domains(tmp_path / "b", size=32, train=2, test=2, seed=5)
    for split in ("trainA", "trainB", "testA", "testB"):
        for name in ("00000.png", "00001.png"):
            assert (tmp_path / "a" / split / name).read_bytes() == (tmp_path / "b" / split / name).read_bytes()
    assert np.array_equal(read_rgb(tmp_path / "a" / "testB" / "00001.png"), sample("labels2scenes", "testB", 1, 32, 5))
    assert not np.array_equal(sample("labels2scenes", "testB", 1, 32, 5), sample("labels2scenes", "testB", 1, 32, 6))


def test_test_pairs_share_their_layout_and_training_images_do_not():
    """The scene segmenter reads testA[i]'s labels back out of testB[i]; out of trainB[i] it reads something else
    than trainA[i], because the training sets are unpaired."""
    segment = scene_segmenter(64)
    labels = [sample("labels2scenes", "testA", i, 64, 3) for i in range(12)]
    scenes = [sample("labels2scenes", "testB", i, 64, 3) for i in range(12)]
    paired = label_metrics([segment(s) for s in scenes], labels, SCENE_PALETTE)
    assert paired["pixel_accuracy"] > 0.9 and paired["class_iou"] > 0.75
    shuffled = label_metrics([segment(s) for s in scenes[1:] + scenes[:1]], labels, SCENE_PALETTE)
    assert shuffled["class_iou"] < paired["class_iou"] - 0.2
    train_a = [sample("labels2scenes", "trainA", i, 64, 3) for i in range(12)]
    train_b = [sample("labels2scenes", "trainB", i, 64, 3) for i in range(12)]
    unpaired = label_metrics([segment(s) for s in train_b], train_a, SCENE_PALETTE)
    assert unpaired["class_iou"] < paired["class_iou"] - 0.2


def test_layouts_have_the_street_structure():
    rng = np.random.default_rng(0)
    for _ in range(10):
        layout = random_layout(rng, 48)
        classes = layout.classes
        assert classes.shape == (48, 48) and classes.dtype == np.uint8
        assert (classes[0] == 0).mean() > 0.3  # mostly sky along the top row
        assert (classes[-1] == 0).sum() == 0  # never sky along the bottom row
        assert (classes[-1] == 2).any()  # the road reaches the bottom
        assert layout.instances[classes == 3].min() > 0  # every building pixel belongs to an instance


def test_day2night_pairs_are_the_same_scene_darker():
    day, night = sample("day2night", "testA", 4, 64, 0), sample("day2night", "testB", 4, 64, 0)
    assert night.mean() < 0.5 * day.mean()
    segment = scene_segmenter(64)
    assert label_metrics([segment(day)], [sample("labels2scenes", "testA", 4, 64, 0)],
                         SCENE_PALETTE)["pixel_accuracy"] > 0.85  # the same layout as labels2scenes' pair 4


def test_make_domains_tool(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("make_domains", ROOT / "tools" / "make_domains.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / "ds"
    assert tool.main([str(out), "--kind", "day2night", "--size", "32", "--train", "2", "--test", "1", "-q"]) == 0
    assert len(list_images(out / "trainB")) == 2 and len(list_images(out / "testA")) == 1
    assert json.loads((out / "palette.json").read_text())["kind"] == "day2night"
    assert tool.main([str(out), "--size", "32", "-q"]) == 2  # not empty: refused, with one line
    assert "not empty" in capsys.readouterr().err
